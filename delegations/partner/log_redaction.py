"""A log filter that removes credentials-URI keys from log lines, wherever they appear.

The aliyun CLI's CredentialsURI mode and the SDKs' URI provider send a plain GET to a URL, so
a person's key has to be part of that URL. `core.log_redaction` removes it from request paths;
the key's own prefix also finds it in an exception's message or a query string.
"""

from __future__ import annotations

import re

from core.log_redaction import RedactingFilter

# Every credentials-URI key starts with this (imported by the services; this module must
# stay importable before Django's apps are ready, since the logging config loads it).
URI_KEY_PREFIX = "pcu_"

_KEY = re.compile(re.escape(URI_KEY_PREFIX) + r"(?!\[redacted\])[A-Za-z0-9_\-]+")
REDACTED = URI_KEY_PREFIX + "[redacted]"


def redact_uri_keys(text: str) -> str:
    return _KEY.sub(REDACTED, text) if URI_KEY_PREFIX in text else text


class RedactCredentialsUriKeys(RedactingFilter):
    def redact(self, text: str) -> str:
        return redact_uri_keys(text)
