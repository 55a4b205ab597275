"""Verify the two request signatures the official SDKs send (``alibaba-api.md`` §4, §5).

- ACS3-HMAC-SHA256 (tea-openapi's default): ``Authorization`` header, ``x-acs-*`` headers.
- v1 HMAC-SHA1 (``signature_algorithm='v2'``, ``aliyun-python-sdk-core``, the credentials
  library's ram_role_arn provider): ``Signature`` and friends in the query or form body.

Both are recomputed exactly and compared with ``hmac.compare_digest``. The 15-minute clock
window and the nonce replay check, and their error codes, are [UNVERIFIED] choices.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import threading
import time
from calendar import timegm
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import quote

from cloudsim.errors import ApiError
from cloudsim.identity import Identity, ResolvedKey, resolve_access_key
from cloudsim.store import Store

CLOCK_SKEW_SECONDS = 15 * 60
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
V3_ALGORITHM = "ACS3-HMAC-SHA256"
# Headers a V3 signature must cover, or an attacker could change them without breaking it.
V3_REQUIRED_SIGNED = (
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
)
V1_RESERVED = ("Signature",)


def _incomplete(detail: str) -> ApiError:
    return ApiError(
        "IncompleteSignature",
        f"The request signature does not conform to Aliyun standards. {detail}",
        400,
    )


def _mismatch(detail: str = "", *, string_to_sign: str | None = None) -> ApiError:
    message = "Specified signature is not matched with our calculation."
    if detail:
        message = f"{message} {detail}"
    if string_to_sign is not None:
        # Alibaba's wording; aliyun-python-sdk-core compares the part after ':' with its own
        # string to sign and, when equal, reports InvalidAccessKeySecret instead.
        message = f"{message} server string to sign is:{string_to_sign}"
    return ApiError("SignatureDoesNotMatch", message, 400)


def _pe(value: str) -> str:
    return quote(value, safe="~", encoding="utf-8")


class NonceCache:
    """Nonces of accepted requests, per AccessKey, kept while their signed time is still inside
    the clock window (a replay after that fails the clock check anyway). In memory only."""

    def __init__(self, window: float = CLOCK_SKEW_SECONDS) -> None:
        self.window = window
        self._expires: dict[str, float] = {}
        self._lock = threading.Lock()
        self._next_purge = 0.0

    def check_and_add(
        self, access_key_id: str, nonce: str, *, now: float, signed_at: float
    ) -> None:
        key = f"{access_key_id}\n{nonce}"
        with self._lock:
            if now >= self._next_purge:
                self._expires = {k: t for k, t in self._expires.items() if t >= now}
                self._next_purge = now + 60
            if self._expires.get(key, -1.0) >= now:
                raise ApiError(
                    "SignatureNonceUsed", "Specified signature nonce was used already.", 400
                )
            self._expires[key] = signed_at + self.window


_TIMESTAMP_RE = re.compile(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)Z$")


def parse_timestamp(value: str, name: str) -> float:
    """``YYYY-MM-DDThh:mm:ssZ`` (UTC) to epoch seconds."""
    match = _TIMESTAMP_RE.match(value or "")
    try:
        if match is None:
            raise ValueError(value)
        fields = [int(part) for part in match.groups()]
        datetime(*fields)  # rejects impossible dates such as 2024-02-30
    except ValueError:
        raise ApiError(
            "InvalidTimeStamp.Format",
            f"Specified {name} is not valid; expected UTC yyyy-MM-ddTHH:mm:ssZ.",
            400,
        ) from None
    return float(timegm((*fields, 0, 0, 0)))


def check_clock(value: str, name: str, now: float) -> float:
    """The signed time, if it is within the clock window of ``now``."""
    moment = parse_timestamp(value, name)
    if abs(now - moment) > CLOCK_SKEW_SECONDS:
        raise ApiError(
            "InvalidTimeStamp.Expired",
            f"Specified {name} or date header is expired (allowed skew is 15 minutes).",
            400,
        )
    return moment


@dataclass(frozen=True)
class Authenticated:
    identity: Identity
    signature_version: str  # "v3" | "v1"


def _resolve(store: Store, access_key_id: str, token: str | None, now: float) -> ResolvedKey:
    if not access_key_id:
        raise ApiError("MissingAccessKeyId", "AccessKeyId is mandatory for this action.", 400)
    resolved = resolve_access_key(store, access_key_id)
    if resolved is None:
        raise ApiError("InvalidAccessKeyId.NotFound", "Specified access key is not found.", 404)
    if resolved.status != "Active":
        raise ApiError("InvalidAccessKeyId.Inactive", "Specified access key is disabled.", 403)
    if resolved.security_token is not None:
        if not token:
            raise ApiError(
                "MissingSecurityToken", "SecurityToken is mandatory for this action.", 400
            )
        if not hmac.compare_digest(token.encode(), resolved.security_token.encode()):
            raise ApiError(
                "InvalidSecurityToken.Mismatch",
                "Specified SecurityToken is not matched with the AccessKeyId.",
                400,
            )
        if resolved.expires_at is not None and now >= resolved.expires_at:
            raise ApiError(
                "InvalidSecurityToken.Expired", "Specified SecurityToken is expired.", 400
            )
    elif token:
        # A long-term key presented together with a token: the token belongs to nothing.
        raise ApiError(
            "InvalidSecurityToken.Mismatch",
            "Specified SecurityToken is not matched with the AccessKeyId.",
            400,
        )
    return resolved


def _parse_v3_authorization(value: str) -> tuple[str, str, list[str], str]:
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != V3_ALGORITHM:
        raise _incomplete(f"Unsupported signature algorithm {algorithm!r}.")
    fields: dict[str, str] = {}
    for part in rest.split(","):
        name, sep, field_value = part.strip().partition("=")
        if not sep:
            raise _incomplete("Malformed Authorization header.")
        fields[name] = field_value
    try:
        credential = fields["Credential"]
        signed_headers = fields["SignedHeaders"]
        signature = fields["Signature"]
    except KeyError as missing:
        raise _incomplete(f"Authorization lacks {missing.args[0]}.") from None
    names = signed_headers.split(";") if signed_headers else []
    return algorithm, credential, names, signature


def verify_v3(
    *,
    store: Store,
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    nonces: NonceCache,
    now: float,
) -> Authenticated:
    algorithm, access_key_id, signed_names, signature = _parse_v3_authorization(
        headers["authorization"]
    )
    if signed_names != sorted(signed_names) or any(n != n.lower() for n in signed_names):
        raise _incomplete("SignedHeaders must be lower-case and sorted.")
    for required in V3_REQUIRED_SIGNED:
        if required not in signed_names:
            raise _incomplete(f"Header {required} must be signed.")
    if "x-acs-security-token" in headers and "x-acs-security-token" not in signed_names:
        raise _incomplete("Header x-acs-security-token must be signed.")
    for name in signed_names:
        if name not in headers:
            raise _mismatch(f"Signed header {name} is missing.")
    payload_hash = EMPTY_SHA256 if not body else hashlib.sha256(body).hexdigest()
    if not hmac.compare_digest(headers["x-acs-content-sha256"].strip(), payload_hash):
        raise _mismatch("The x-acs-content-sha256 header does not match the request body.")
    signed_at = check_clock(headers["x-acs-date"].strip(), "x-acs-date", now)

    resolved = _resolve(store, access_key_id, headers.get("x-acs-security-token"), now)

    canonical_query = "&".join(f"{k}={_pe(query[k])}" for k in sorted(query))
    canonical_headers = "".join(f"{n}:{headers[n].strip()}\n" for n in signed_names)
    canonical_request = "\n".join(
        (method, path, canonical_query, canonical_headers, ";".join(signed_names), payload_hash)
    )
    string_to_sign = f"{algorithm}\n{hashlib.sha256(canonical_request.encode()).hexdigest()}"
    expected = hmac.new(
        resolved.secret.encode(), string_to_sign.encode(), hashlib.sha256
    ).hexdigest()
    if not hmac.compare_digest(expected, signature.strip().lower()):
        raise _mismatch(string_to_sign=string_to_sign)
    nonces.check_and_add(
        access_key_id, headers["x-acs-signature-nonce"].strip(), now=now, signed_at=signed_at
    )
    return Authenticated(resolved.identity, "v3")


def verify_v1(
    *, store: Store, method: str, params: dict[str, str], nonces: NonceCache, now: float
) -> Authenticated:
    signature = params.get("Signature", "")
    method_name = params.get("SignatureMethod", "")
    if method_name != "HMAC-SHA1":
        raise _incomplete(f"Unsupported SignatureMethod {method_name!r}.")
    if params.get("SignatureVersion", "") != "1.0":
        raise _incomplete("SignatureVersion must be 1.0.")
    nonce = params.get("SignatureNonce", "")
    if not nonce:
        raise _incomplete("SignatureNonce is mandatory.")
    timestamp = params.get("Timestamp", "")
    if not timestamp:
        raise _incomplete("Timestamp is mandatory.")
    signed_at = check_clock(timestamp, "Timestamp", now)

    resolved = _resolve(store, params.get("AccessKeyId", ""), params.get("SecurityToken"), now)

    canonical = "&".join(
        f"{_pe(k)}={_pe(params[k])}" for k in sorted(params) if k not in V1_RESERVED
    )
    string_to_sign = f"{method}&%2F&{_pe(canonical)}"
    digest = hmac.new(
        (resolved.secret + "&").encode(), string_to_sign.encode(), hashlib.sha1
    ).digest()
    expected = base64.b64encode(digest).decode()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise _mismatch(string_to_sign=string_to_sign)
    nonces.check_and_add(resolved.identity.access_key_id, nonce, now=now, signed_at=signed_at)
    return Authenticated(resolved.identity, "v1")


def authenticate(
    *,
    store: Store,
    method: str,
    path: str,
    query: dict[str, str],
    form: dict[str, str],
    headers: dict[str, str],
    body: bytes,
    nonces: NonceCache,
    now: float | None = None,
) -> Authenticated:
    """Verify the request's signature and return the caller, or raise the Alibaba error."""
    now = time.time() if now is None else now
    if "authorization" in headers:
        return verify_v3(
            store=store,
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            nonces=nonces,
            now=now,
        )
    params = {**query, **form}
    if "Signature" in params:
        if path != "/":
            raise _incomplete("v1 signatures are only accepted on /.")
        return verify_v1(store=store, method=method, params=params, nonces=nonces, now=now)
    raise ApiError(
        "MissingAuthorization" if "AccessKeyId" not in params else "IncompleteSignature",
        "The request is not signed: send an ACS3-HMAC-SHA256 Authorization header or a v1 "
        "Signature parameter.",
        400,
    )
