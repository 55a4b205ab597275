"""Links into the Alibaba Cloud console (or cloudsim's console in the embedded setup).

`switch_role_url` is the plain switch-role link (no secret). `federation_login_url` is the
one-click console: STS credentials of an assumed role are exchanged for a sign-in token at the
federation endpoint (POST, so the secret stays out of URLs and logs) and turned into the
`Action=Login` URL the browser is sent to. That URL is a secret while the token lives (about
30 s, single use): never log it, never cache it.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import requests

from cloud.errors import CloudError, ErrorCategory
from cloud.policies import PolicyError, validate_role_name
from cloud.values import IssuedCredentials

FEDERATION_ACTION = "GetSigninToken"

_ALIAS_DOMAIN = ".onaliyun.com"


def _parent_alias(parent_alias_or_uid: str) -> str:
    """An enterprise alias is used as is; a bare account UID becomes `<uid>.onaliyun.com`."""
    value = (parent_alias_or_uid or "").strip()
    if not value:
        raise PolicyError("The owner account needs an alias or a UID for the switch-role link.")
    if value.isascii() and value.isdigit():
        return f"{value}{_ALIAS_DOMAIN}"
    if any(ch.isspace() or not ch.isprintable() for ch in value) or len(value) > 128:
        raise PolicyError(f"{value!r} is not an account alias.")
    return value


def switch_role_url(*, signin_base_url: str, parent_alias_or_uid: str, role_name: str) -> str:
    """`<base>/switchRole.htm?parentAlias=<alias | uid.onaliyun.com>&roleName=<name>`."""
    base = _base(signin_base_url)
    query = urlencode(
        {
            "parentAlias": _parent_alias(parent_alias_or_uid),
            "roleName": validate_role_name(role_name),
        }
    )
    return f"{base}/switchRole.htm?{query}"


def _base(signin_base_url: str) -> str:
    parts = urlsplit(signin_base_url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PolicyError(
            f"The console sign-in URL must be http(s)://host; got {signin_base_url!r}."
        )
    return signin_base_url.split("?", 1)[0].split("#", 1)[0].rstrip("/")


def federation_signin_token(
    *,
    signin_base_url: str,
    credentials: IssuedCredentials,
    ticket_type: str,
    timeout_seconds: float,
) -> str:
    """GetSigninToken at `<base>/federation`: a single-use token for these STS credentials.
    Every failure (refusal, timeout, unreadable answer) is a CloudError without the secret."""
    url = f"{_base(signin_base_url)}/federation"
    form = {
        "Action": FEDERATION_ACTION,
        "AccessKeyId": credentials.access_key_id,
        "AccessKeySecret": credentials.access_key_secret,
        "SecurityToken": credentials.security_token,
        "TicketType": ticket_type,
    }
    try:
        response = requests.post(url, data=form, timeout=timeout_seconds, allow_redirects=False)
    except requests.RequestException as error:
        raise CloudError(
            code=None,
            message=f"The federation endpoint did not answer ({type(error).__name__}).",
            action=FEDERATION_ACTION,
            transport=True,
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = None
    request_id = body.get("RequestId") if isinstance(body, dict) else None
    if response.status_code != 200 or not isinstance(body, dict):
        raise CloudError(
            code=(body or {}).get("Code") if isinstance(body, dict) else None,
            message=str((body or {}).get("Message", "")) if isinstance(body, dict) else "",
            action=FEDERATION_ACTION,
            request_id=request_id,
            http_status=response.status_code,
        )
    token = body.get("SigninToken")
    if not isinstance(token, str) or not token:
        raise CloudError(
            code=None,
            message="The federation endpoint answered without a SigninToken.",
            action=FEDERATION_ACTION,
            request_id=request_id,
            category=ErrorCategory.INVALID_RESPONSE,
        )
    return token


def federation_login_url(
    *, signin_base_url: str, signin_token: str, login_url: str, destination: str
) -> str:
    """`<base>/federation?Action=Login&LoginUrl=…&Destination=…&SigninToken=…` (a secret)."""
    query = urlencode(
        {
            "Action": "Login",
            "LoginUrl": login_url,
            "Destination": destination,
            "SigninToken": signin_token,
        }
    )
    return f"{_base(signin_base_url)}/federation?{query}"
