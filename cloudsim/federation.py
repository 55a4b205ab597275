"""Console federation on the console host (``alibaba-api.md`` §16): one-click sign-in.

- ``GetSigninToken`` (GET or POST ``/federation``): ``AccessKeyId``, ``AccessKeySecret``,
  ``SecurityToken`` of an assumed-role session (long-term keys are refused) and
  ``TicketType``; answers ``{"RequestId", "SigninToken"}``. The token lives 30 s and works
  once; the store keeps only its SHA-256.
- ``Login`` (GET ``/federation``): ``LoginUrl``, ``Destination``, ``SigninToken``; consumes
  the token, opens a console session *as the role session* (shown as ``role/session``) and
  answers 302 to the destination (cloudsim's own console for any destination it does not
  serve). The session ends with the STS credentials.

Errors use Alibaba's codes: 400 ``InvalidAction``, ``MissingParameter.*``; 401
``InvalidCredential.AuthenticateFail`` (unknown, wrong, expired or long-term credentials,
and a used or expired token).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlsplit

from cloudsim import console
from cloudsim.api import PageRequest, PageResponse, page_route
from cloudsim.identity import ASSUMED_ROLE, resolve_access_key

TOKEN_SECONDS = 30
_TICKET_PREFIX = "signin-token:"


def _error(request: PageRequest, code: str, message: str, status: int) -> PageResponse:
    response = PageResponse.json(
        {"RequestId": request.request_id, "Code": code, "Message": message}, status
    )
    response.headers.append(("Cache-Control", "no-store"))
    return response


def _params(request: PageRequest) -> dict[str, str]:
    return {**request.query, **request.form}


def _token_key(token: str) -> str:
    return _TICKET_PREFIX + hashlib.sha256(token.encode()).hexdigest()


def _get_signin_token(request: PageRequest, params: dict[str, str]) -> PageResponse:
    for name in ("AccessKeyId", "AccessKeySecret", "SecurityToken"):
        if not params.get(name):
            return _error(request, f"MissingParameter.{name}", f"{name} is mandatory.", 400)
    resolved = resolve_access_key(request.store, params["AccessKeyId"])
    if (
        resolved is None
        or resolved.identity.kind != ASSUMED_ROLE
        or not hmac.compare_digest(resolved.secret, params["AccessKeySecret"])
        or not hmac.compare_digest(resolved.security_token or "", params["SecurityToken"])
        or (resolved.expires_at is not None and resolved.expires_at <= time.time())
    ):
        return _error(
            request,
            "InvalidCredential.AuthenticateFail",
            "Only valid STS credentials of an assumed role can sign in.",
            401,
        )
    token = secrets.token_urlsafe(32)
    with request.store.write() as tx:
        tx.console_session_put(
            token=_token_key(token),
            data={
                "access_key_id": params["AccessKeyId"],
                "ticket_type": params.get("TicketType", ""),
            },
            expires_at=time.time() + TOKEN_SECONDS,
        )
    response = PageResponse.json({"RequestId": request.request_id, "SigninToken": token})
    response.headers.append(("Cache-Control", "no-store"))
    return response


def _login(request: PageRequest, params: dict[str, str]) -> PageResponse:
    for name in ("LoginUrl", "SigninToken"):
        if not params.get(name):
            return _error(request, f"MissingParameter.{name}", f"{name} is mandatory.", 400)
    key = _token_key(params["SigninToken"])
    with request.store.write() as tx:
        ticket = tx.console_session_get(key)
        tx.console_session_delete(key)  # single use, whatever happens next
    resolved = resolve_access_key(request.store, ticket["access_key_id"]) if ticket else None
    if resolved is None or resolved.expires_at is None or resolved.expires_at <= time.time():
        return _error(
            request,
            "InvalidCredential.AuthenticateFail",
            "The sign-in token is invalid, used or expired.",
            401,
        )
    identity = resolved.identity
    with request.store.read() as tx:
        account = tx.account_get(identity.account_uid)
    alias = account.alias if account is not None else identity.account_uid
    session_token = secrets.token_urlsafe(32)
    expires_at = resolved.expires_at
    session = console.Session(
        session_token,
        {
            "account_uid": identity.account_uid,
            "alias": alias,
            "user_name": f"{identity.role_name}/{identity.session_name}",
            "user_id": None,
            "federated": True,
            "login_url": params["LoginUrl"],
            "source_identity": identity.source_identity,
            "csrf": secrets.token_urlsafe(24),
            "signed_in_at": time.time(),
            "expires_at": expires_at,
            "role": {
                "access_key_id": identity.access_key_id,
                "account_uid": identity.account_uid,
                "alias": alias,
                "role_name": identity.role_name,
                "arn": identity.arn,
            },
            "flash": None,
        },
    )
    console._save_session(request.store, session)
    destination = params.get("Destination", "")
    target = urlsplit(destination)
    host = request.headers.get("host", "")
    location = (
        destination if target.netloc == host and target.path.startswith("/console") else "/console"
    )
    response = PageResponse.redirect(location, 302)
    response.headers.append(
        console._session_cookie(session_token, max(int(expires_at - time.time()), 1))
    )
    response.headers.append(("Cache-Control", "no-store"))
    return response


def _federation(request: PageRequest) -> PageResponse:
    params = _params(request)
    action = params.get("Action", "")
    if action == "GetSigninToken":
        return _get_signin_token(request, params)
    if action == "Login" and request.method == "GET":
        return _login(request, params)
    return _error(request, "InvalidAction", f"The action {action!r} is not supported.", 400)


page_route("GET", "/federation")(_federation)
page_route("POST", "/federation")(_federation)
