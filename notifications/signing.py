"""The signatures chat services and webhook receivers check, exactly as they publish them.

- DingTalk custom robot: `timestamp` (ms) and `sign` = URL-encoded
  Base64(HMAC-SHA256(key=secret, message="<timestamp>\\n<secret>")), added to the URL.
- Lark / Feishu custom bot: `timestamp` (s) and `sign` =
  Base64(HMAC-SHA256(key="<timestamp>\\n<secret>", message=b"")), added to the JSON body.
- The portal's generic webhook: `X-Portal-Signature: sha256=<hex HMAC-SHA256(secret, body)>`
  over the exact body bytes, which carry the timestamp also sent as `X-Portal-Timestamp`.
"""

import base64
import hashlib
import hmac
from urllib.parse import quote_plus

SIGNATURE_HEADER = "X-Portal-Signature"
TIMESTAMP_HEADER = "X-Portal-Timestamp"
DELIVERY_HEADER = "X-Portal-Delivery"
EVENT_HEADER = "X-Portal-Event"


def dingtalk_sign(*, secret: str, timestamp_ms: int) -> str:
    """The URL-encoded `sign` query parameter of a signed DingTalk robot call."""
    message = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest).decode("ascii"))


def lark_sign(*, secret: str, timestamp_s: int) -> str:
    """The `sign` body field of a signed Lark/Feishu custom bot call."""
    key = f"{timestamp_s}\n{secret}".encode()
    digest = hmac.new(key, b"", hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def webhook_signature(*, secret: str, body: bytes) -> str:
    """The `X-Portal-Signature` header value for `body`."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def webhook_signature_valid(*, secret: str, body: bytes, header: str) -> bool:
    """What a receiver does: recompute and compare in constant time."""
    return hmac.compare_digest(webhook_signature(secret=secret, body=body), header or "")
