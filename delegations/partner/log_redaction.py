"""A log filter that removes credentials-URI keys from log lines.

The aliyun CLI's CredentialsURI mode and the SDKs' URI provider send a plain GET to a URL, so
a person's key has to be part of that URL; request logs (runserver, a 404 warning) would
otherwise repeat it.
"""

from __future__ import annotations

import logging
import re

# Every credentials-URI key starts with this (imported by the services; this module must
# stay importable before Django's apps are ready, since the logging config loads it).
URI_KEY_PREFIX = "pcu_"

_KEY = re.compile(re.escape(URI_KEY_PREFIX) + r"[A-Za-z0-9_\-]+")
REDACTED = URI_KEY_PREFIX + "[redacted]"


def redact_uri_keys(text: str) -> str:
    return _KEY.sub(REDACTED, text)


class RedactCredentialsUriKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        if URI_KEY_PREFIX in message:
            record.msg = redact_uri_keys(message)
            record.args = ()
        return True
