"""The console's switch-role flow, in plain server-rendered HTML.

Pages (``alibaba-api.md`` §12 names the real ones):

- ``GET/POST /login.htm``: RAM user sign-in with ``<user>@<alias>.onaliyun.com`` (or
  ``<user>@<uid>.onaliyun.com``), or an account alias/UID and a user name, plus the password.
- ``GET/POST /switchRole.htm?parentAlias=...&roleName=...``: the switch-role form, pre-filled
  from the query. Switching runs STS AssumeRole itself (``cloudsim.sts.assume_role``) with the
  signed-in user's identity, so it succeeds exactly when the API would.
- ``GET /console``: who is signed in ("Alice @ company-b as ecs-admin @ company-a") and the
  current account's ECS instances in every region with Start/Stop/Reboot buttons.
- ``POST /console/ecs/power``, ``POST /console/switchRole/back``, ``POST /logout.htm``.

Every ECS read and button press goes through ``cloudsim.ecs`` with the role session's own
identity at the moment of the click, so detaching a policy from the role shows up at once.

Sessions: a random token in an HttpOnly, SameSite=Lax cookie; the store keeps only its SHA-256.
Every POST form carries a CSRF token (the session's, or a double-submit cookie on the sign-in
form). Every value written into a page goes through ``html.escape``.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from cloudsim import ecs, sts
from cloudsim.api import ApiContext, PageRequest, PageResponse, page_route
from cloudsim.errors import ApiError
from cloudsim.identity import Identity, console_identity, resolve_access_key
from cloudsim.store import Account, Store, verify_password

SESSION_COOKIE = "cloudsim_console"
LOGIN_CSRF_COOKIE = "cloudsim_login_csrf"
# Alibaba's default console logon session is 6 hours.
SESSION_SECONDS = 6 * 3600
SWITCH_DURATION_SECONDS = sts.DEFAULT_DURATION
DEFAULT_DOMAIN_SUFFIX = ".onaliyun.com"
NOT_AUTHORIZED = "You are not authorized to do this action."

_POWER_LABELS = {ecs.START: "Start", ecs.STOP: "Stop", ecs.REBOOT: "Restart"}
_SAFE_NEXT = re.compile(r"^/(?!/)[^\s\\]*$")


# --- sessions --------------------------------------------------------------------------------


def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass
class Session:
    token: str
    data: dict[str, Any]

    @property
    def user_identity(self) -> Identity:
        return console_identity(
            account_uid=self.data["account_uid"],
            user_name=self.data["user_name"],
            user_id=self.data.get("user_id"),
            mfa_present=False,
        )

    @property
    def role(self) -> dict[str, Any] | None:
        return self.data.get("role")


def _load_session(request: PageRequest) -> Session | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    with request.store.read() as tx:
        data = tx.console_session_get(_token_key(token))
    return Session(token, data) if data else None


def _save_session(store: Store, session: Session) -> None:
    with store.write() as tx:
        tx.console_session_put(
            token=_token_key(session.token),
            data=session.data,
            expires_at=session.data["expires_at"],
        )


def _session_cookie(token: str, max_age: int) -> tuple[str, str]:
    return (
        "Set-Cookie",
        f"{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}",
    )


def _flash(session: Session, kind: str, text: str) -> None:
    session.data["flash"] = {"kind": kind, "text": text}


def _csrf_ok(expected: str | None, given: str | None) -> bool:
    return bool(expected) and bool(given) and hmac.compare_digest(expected, given)  # type: ignore[arg-type]


# --- rendering -------------------------------------------------------------------------------

_CSS = """
*{box-sizing:border-box}
body{margin:0;color:#333;background:#f2f3f5;
 font:14px/1.5 -apple-system,"Segoe UI","PingFang SC",Roboto,Helvetica,Arial,sans-serif}
.topbar{height:50px;background:#fff;border-bottom:1px solid #e3e4e6;display:flex;align-items:center;
 padding:0 20px;gap:16px;box-shadow:0 1px 4px rgba(0,0,0,.06)}
.brand{display:flex;align-items:center;gap:8px;color:#333;text-decoration:none;font-weight:600}
.logo{color:#ff6a00;font-weight:800;font-size:20px;letter-spacing:-1px}
.brand small{color:#888;font-weight:400;border-left:1px solid #ddd;padding-left:8px}
.spacer{flex:1}
.who{font-size:13px;color:#555;text-align:right}
.who strong{color:#333}
.who .as{color:#ff6a00;font-weight:600}
.topbar form{margin:0}
main{max-width:1100px;margin:24px auto;padding:0 20px}
.card{background:#fff;border:1px solid #e3e4e6;border-radius:4px;padding:24px;margin-bottom:20px}
.narrow{max-width:440px;margin:60px auto}
h1{font-size:20px;margin:0 0 16px}
h2{font-size:16px;margin:0 0 12px}
label{display:block;margin:12px 0 4px;color:#555}
input[type=text],input[type=password]{width:100%;height:34px;border:1px solid #c4c6cf;
 border-radius:2px;padding:0 10px;font-size:14px}
input:focus{outline:none;border-color:#ff6a00}
.hint{color:#888;font-size:12px;margin-top:4px}
button,.button{display:inline-block;height:32px;padding:0 16px;border-radius:2px;
 border:1px solid #c4c6cf;background:#fff;color:#333;font-size:13px;cursor:pointer;
 text-decoration:none;line-height:30px}
button.primary,.button.primary{background:#ff6a00;border-color:#ff6a00;color:#fff}
button.link{border:none;background:none;color:#0064c8;padding:0 4px;height:auto;line-height:inherit}
button:disabled{color:#bbb;border-color:#e3e4e6;cursor:not-allowed}
.actions{margin-top:20px;display:flex;gap:10px;align-items:center}
.message{padding:10px 14px;border-radius:2px;margin-bottom:16px;border:1px solid}
.message.error{background:#fff1f0;border-color:#ffccc7;color:#a8071a}
.message.success{background:#f6ffed;border-color:#b7eb8f;color:#237804}
.message.info{background:#e6f4ff;border-color:#91caff;color:#0958d9}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:10px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f7f8fa;color:#666;font-weight:500;font-size:13px}
td small{color:#888}
.status{display:inline-flex;align-items:center;gap:6px}
.dot{width:8px;height:8px;border-radius:50%;background:#aaa}
.Running .dot{background:#52c41a}.Stopped .dot{background:#999}
.Starting .dot,.Stopping .dot,.Pending .dot{background:#faad14}
.inline{display:inline}
details{margin-top:12px}
summary{cursor:pointer;color:#0064c8}
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _page(title: str, body: str, *, session: Session | None = None) -> str:
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width,initial-scale=1'>"
        f"<title>{_e(title)} - Alibaba Cloud (cloudsim)</title><style>{_CSS}</style></head>"
        f"<body>{_topbar(session)}<main>{body}</main></body></html>"
    )


def _identity_line(session: Session) -> str:
    data = session.data
    if data.get("federated"):
        # A federation sign-in is the role session itself: `role/session` @ the role's account.
        return f"<strong>{_e(data['user_name'])}</strong> @ <strong>{_e(data['alias'])}</strong>"
    own = f"<strong>{_e(data['user_name'])}</strong> @ {_e(data['alias'])}"
    role = session.role
    if role is None:
        return own
    return (
        f"{own} as <span class='as'>{_e(role['role_name'])}</span> @ "
        f"<strong>{_e(role['alias'])}</strong>"
    )


def _identity_text(session: Session) -> str:
    data = session.data
    if data.get("federated"):
        return f"{data['user_name']} @ {data['alias']}"
    text = f"{data['user_name']} @ {data['alias']}"
    role = session.role
    if role is not None:
        text += f" as {role['role_name']} @ {role['alias']}"
    return text


def _topbar(session: Session | None) -> str:
    right = ""
    if session is not None:
        csrf = _e(session.data["csrf"])
        back = ""
        federated = bool(session.data.get("federated"))
        if session.role is not None and not federated:
            back = (
                "<form method='post' action='/console/switchRole/back' class='inline'>"
                f"<input type='hidden' name='csrf' value='{csrf}'>"
                "<button class='link' type='submit'>Back to my identity</button></form>"
            )
        right = (
            f"<div class='who' id='identity'>{_identity_line(session)}</div>{back}"
            + ("" if federated else "<a class='button' href='/switchRole.htm'>Switch role</a>")
            + "<form method='post' action='/logout.htm' class='inline'>"
            f"<input type='hidden' name='csrf' value='{csrf}'>"
            "<button type='submit'>Sign out</button></form>"
        )
    return (
        "<header class='topbar'><a class='brand' href='/console'>"
        "<span class='logo'>[-]</span> Alibaba Cloud <small>cloudsim console</small></a>"
        f"<div class='spacer'></div>{right}</header>"
    )


def _message(kind: str, text: str) -> str:
    return f"<div class='message {_e(kind)}' role='alert'>{_e(text)}</div>"


def _html(
    body: str, status: int = 200, headers: list[tuple[str, str]] | None = None
) -> PageResponse:
    security = [
        ("Cache-Control", "no-store"),
        (
            "Content-Security-Policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
            "frame-ancestors 'none'; base-uri 'none'",
        ),
        ("X-Frame-Options", "DENY"),
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "same-origin"),
    ]
    return PageResponse(status, body, "text/html; charset=utf-8", security + (headers or []))


def _redirect(location: str, headers: list[tuple[str, str]] | None = None) -> PageResponse:
    response = PageResponse.redirect(location, 303)
    response.headers.extend(headers or [])
    response.headers.append(("Cache-Control", "no-store"))
    return response


def _safe_next(value: str | None) -> str:
    """Only local paths: an attacker's ``next`` must not send a user elsewhere."""
    if value and _SAFE_NEXT.match(value):
        return value
    return "/console"


def _login_redirect(request: PageRequest) -> PageResponse:
    here = request.path + ("?" + urlencode(request.query) if request.query else "")
    return _redirect("/login.htm?" + urlencode({"next": here}))


# --- accounts and sign-in --------------------------------------------------------------------


def resolve_account(store: Store, text: str) -> Account | None:
    """An account from an alias, ``<alias or uid>.onaliyun.com`` or a UID."""
    name = text.strip().lower()
    if name.endswith(DEFAULT_DOMAIN_SUFFIX):
        name = name[: -len(DEFAULT_DOMAIN_SUFFIX)]
    if not name:
        return None
    with store.read() as tx:
        if name.isdigit():
            found = tx.account_get(name)
            if found is not None:
                return found
        return tx.account_by_alias(name)


def split_logon_name(logon_name: str, account: str) -> tuple[str, str] | None:
    """(user name, account text) from ``user@alias.onaliyun.com`` or the two form fields."""
    logon_name = logon_name.strip()
    if "@" in logon_name:
        user, _, domain = logon_name.rpartition("@")
        return (user, domain) if user and domain else None
    if logon_name and account.strip():
        return logon_name, account.strip()
    return None


def _login_form(
    *, csrf: str, next_url: str, logon_name: str = "", account: str = "", error: str = ""
) -> str:
    return (
        "<div class='card narrow'><h1>RAM User Logon</h1>"
        + (_message("error", error) if error else "")
        + "<form method='post' action='/login.htm'>"
        f"<input type='hidden' name='csrf' value='{_e(csrf)}'>"
        f"<input type='hidden' name='next' value='{_e(next_url)}'>"
        "<label for='logon_name'>Logon name</label>"
        f"<input type='text' id='logon_name' name='logon_name' value='{_e(logon_name)}' "
        "placeholder='username@company-alias.onaliyun.com' autocomplete='username' autofocus>"
        "<div class='hint'>Your RAM user name, @, and your account's alias or default domain, "
        "e.g. Alice@company-b.onaliyun.com.</div>"
        "<details><summary>Sign in with account alias and user name instead</summary>"
        "<label for='account'>Account alias, default domain or UID</label>"
        f"<input type='text' id='account' name='account' value='{_e(account)}' "
        "placeholder='company-b'></details>"
        "<label for='password'>Password</label>"
        "<input type='password' id='password' name='password' autocomplete='current-password'>"
        "<div class='actions'><button class='primary' type='submit' id='sign-in'>Log On"
        "</button></div></form></div>"
    )


@page_route("GET", "/login.htm")
def login_page(request: PageRequest) -> PageResponse:
    next_url = _safe_next(request.query.get("next"))
    if _load_session(request) is not None:
        return _redirect(next_url)
    csrf = secrets.token_urlsafe(24)
    cookie = (
        "Set-Cookie",
        f"{LOGIN_CSRF_COOKIE}={csrf}; Path=/login.htm; HttpOnly; SameSite=Lax; Max-Age=3600",
    )
    return _html(_page("Sign in", _login_form(csrf=csrf, next_url=next_url)), headers=[cookie])


@page_route("GET", "/")
def root_page(request: PageRequest) -> PageResponse:
    """The address people are given is the endpoint itself: a browser there gets the sign-in
    page (or its console when signed in). API calls to ``/`` carry an Action and never get
    here; a POST without one is still answered ``MissingParameter``."""
    return login_page(request)


@page_route("POST", "/login.htm")
def login_submit(request: PageRequest) -> PageResponse:
    form = request.form
    next_url = _safe_next(form.get("next"))
    logon_name = form.get("logon_name", "")
    account_text = form.get("account", "")
    csrf = request.cookies.get(LOGIN_CSRF_COOKIE, "")

    def fail(message: str, status: int) -> PageResponse:
        body = _login_form(
            csrf=csrf,
            next_url=next_url,
            logon_name=logon_name,
            account=account_text,
            error=message,
        )
        return _html(_page("Sign in", body), status=status)

    if not _csrf_ok(csrf, form.get("csrf")):
        csrf = secrets.token_urlsafe(24)
        response = fail("Your sign-in form expired. Please try again.", 403)
        response.headers.append(
            (
                "Set-Cookie",
                f"{LOGIN_CSRF_COOKIE}={csrf}; Path=/login.htm; HttpOnly; SameSite=Lax; "
                "Max-Age=3600",
            )
        )
        return response
    parts = split_logon_name(logon_name, account_text)
    if parts is None:
        return fail(
            "Enter your logon name as username@company-alias.onaliyun.com, or a user name "
            "and an account alias.",
            400,
        )
    user_name, domain = parts
    account = resolve_account(request.store, domain)
    user = None
    if account is not None:
        with request.store.read() as tx:
            user = tx.user_get(account.uid, user_name)
    # One message for every failure: the page must not reveal which users exist.
    if (
        account is None
        or user is None
        or not verify_password(user.password_hash, form.get("password", ""))
    ):
        return fail("The logon name or password is incorrect.", 401)
    with request.store.write() as tx:
        tx.user_touch_login(account_uid=account.uid, name=user.name)
    token = secrets.token_urlsafe(32)
    session = Session(
        token,
        {
            "account_uid": account.uid,
            "alias": account.alias,
            "user_name": user.name,
            "user_id": user.user_id,
            "csrf": secrets.token_urlsafe(24),
            "signed_in_at": time.time(),
            "expires_at": time.time() + SESSION_SECONDS,
            "role": None,
            "flash": None,
        },
    )
    _save_session(request.store, session)
    clear_login_csrf = (
        "Set-Cookie",
        f"{LOGIN_CSRF_COOKIE}=; Path=/login.htm; HttpOnly; SameSite=Lax; Max-Age=0",
    )
    return _redirect(next_url, [_session_cookie(token, SESSION_SECONDS), clear_login_csrf])


@page_route("POST", "/logout.htm")
def logout(request: PageRequest) -> PageResponse:
    session = _load_session(request)
    if session is not None:
        if not _csrf_ok(session.data["csrf"], request.form.get("csrf")):
            return _forbidden_form(session)
        with request.store.write() as tx:
            tx.console_session_delete(_token_key(session.token))
    return _redirect("/login.htm", [_session_cookie("", 0)])


def _forbidden_form(session: Session) -> PageResponse:
    body = _message(
        "error", "This form expired or did not come from this console. Reload and try again."
    )
    return _html(_page("Forbidden", body, session=session), status=403)


# --- switch role -----------------------------------------------------------------------------


def _switch_form(*, session: Session, parent_alias: str, role_name: str, error: str = "") -> str:
    current = _e(_identity_text(session))
    return (
        "<div class='card narrow'><h1>Switch Role</h1>"
        + (_message("error", error) if error else "")
        + f"<p class='hint'>Signed in as {current}. The role's trust policy must name your "
        "account or RAM user, and your own permissions must allow sts:AssumeRole on it.</p>"
        "<form method='post' action='/switchRole.htm'>"
        f"<input type='hidden' name='csrf' value='{_e(session.data['csrf'])}'>"
        "<label for='parentAlias'>Enterprise alias, default domain name or account ID</label>"
        f"<input type='text' id='parentAlias' name='parentAlias' value='{_e(parent_alias)}' "
        "placeholder='company-a or 11223344.onaliyun.com'>"
        "<label for='roleName'>Role name</label>"
        f"<input type='text' id='roleName' name='roleName' value='{_e(role_name)}' "
        "placeholder='ecs-admin'>"
        "<div class='actions'><button class='primary' type='submit' id='switch'>Submit</button>"
        "<a class='button' href='/console'>Back</a></div></form></div>"
    )


@page_route("GET", "/switchRole.htm")
def switch_role_page(request: PageRequest) -> PageResponse:
    session = _load_session(request)
    if session is None:
        return _login_redirect(request)
    if session.data.get("federated"):
        return _federated_cannot_switch(session)
    body = _switch_form(
        session=session,
        parent_alias=request.query.get("parentAlias", ""),
        role_name=request.query.get("roleName", ""),
    )
    return _html(_page("Switch role", body, session=session))


def _federated_cannot_switch(session: Session) -> PageResponse:
    body = _message(
        "error",
        "This console session is a role session opened through federation; it cannot switch "
        "role. Sign out and sign in as a RAM user to switch.",
    )
    return _html(_page("Switch role", body, session=session), status=403)


def _session_name(user_name: str) -> str:
    """The console names role sessions after the RAM user (STS wants 2-64 safe characters)."""
    if sts.SESSION_NAME_RE.match(user_name):
        return user_name
    cleaned = re.sub(r"[^A-Za-z0-9.@_-]", "-", user_name)
    return f"console-{cleaned}"[:64]


def _switch_failure(error: ApiError, *, role_arn: str) -> str:
    if error.status == 403:
        return (
            f"You cannot switch to this role: {error.message} Check that the role's trust "
            "policy names your account or RAM user, and that your own permissions allow "
            f"sts:AssumeRole on {role_arn}. (Error code: {error.code})"
        )
    if error.code == "EntityNotExist.Role":
        return f"The role {role_arn} does not exist. ({error.code})"
    return f"Switching roles failed: {error.message} ({error.code})"


@page_route("POST", "/switchRole.htm")
def switch_role_submit(request: PageRequest) -> PageResponse:
    session = _load_session(request)
    if session is None:
        return _redirect("/login.htm?" + urlencode({"next": "/switchRole.htm"}))
    form = request.form
    if not _csrf_ok(session.data["csrf"], form.get("csrf")):
        return _forbidden_form(session)
    if session.data.get("federated"):
        return _federated_cannot_switch(session)
    parent_alias = form.get("parentAlias", "").strip()
    role_name = form.get("roleName", "").strip()

    def fail(message: str, status: int) -> PageResponse:
        body = _switch_form(
            session=session, parent_alias=parent_alias, role_name=role_name, error=message
        )
        return _html(_page("Switch role", body, session=session), status=status)

    if not parent_alias or not role_name:
        return fail("Enter the account and the role name.", 400)
    account = resolve_account(request.store, parent_alias)
    if account is None:
        return fail(f"No account is called {parent_alias}.", 404)
    role_arn = f"acs:ram::{account.uid}:role/{role_name}"
    # Always from the signed-in user, never from a role session: the console does not chain.
    caller = session.user_identity
    params = {
        "RoleArn": role_arn,
        "RoleSessionName": _session_name(caller.user_name or ""),
        "DurationSeconds": str(SWITCH_DURATION_SECONDS),
    }
    context = ApiContext(
        identity=caller,
        params=params,
        store=request.store,
        request_id=request.request_id,
        action="AssumeRole",
        version=sts.VERSION,
        product="sts",
        source_ip=request.client_ip,
    )
    started = time.monotonic()
    try:
        issued = sts.assume_role(context)
    except ApiError as error:
        _log_call(request, caller, "sts", "AssumeRole", params, started, error=error)
        return fail(_switch_failure(error, role_arn=role_arn), error.status)
    _log_call(request, caller, "sts", "AssumeRole", params, started, extra=context.log_extra)
    session.data["role"] = {
        "access_key_id": issued["Credentials"]["AccessKeyId"],
        "account_uid": account.uid,
        "alias": account.alias,
        "role_name": role_name,
        "arn": issued["AssumedRoleUser"]["Arn"],
    }
    _flash(session, "success", f"You are now {_identity_text(session)}.")
    _save_session(request.store, session)
    return _redirect("/console")


@page_route("POST", "/console/switchRole/back")
def switch_back(request: PageRequest) -> PageResponse:
    session = _load_session(request)
    if session is None:
        return _redirect("/login.htm")
    if not _csrf_ok(session.data["csrf"], request.form.get("csrf")):
        return _forbidden_form(session)
    if session.data.get("federated"):
        return _federated_cannot_switch(session)
    session.data["role"] = None
    _flash(session, "info", f"You are back to your own identity, {_identity_text(session)}.")
    _save_session(request.store, session)
    return _redirect("/console")


def _acting_identity(request: PageRequest, session: Session) -> Identity | None:
    """The role session's identity (None once it has expired), else the signed-in user's."""
    role = session.role
    if role is None:
        return session.user_identity
    resolved = resolve_access_key(request.store, role["access_key_id"])
    if resolved is None or (resolved.expires_at is not None and resolved.expires_at <= time.time()):
        return None
    return resolved.identity


def _expired_role(request: PageRequest, session: Session) -> PageResponse:
    if session.data.get("federated"):
        # Nothing to fall back to: the session was the role session. Back to the LoginUrl.
        with request.store.write() as tx:
            tx.console_session_delete(_token_key(session.token))
        login_url = str(session.data.get("login_url") or "")
        target = login_url if login_url.startswith(("https://", "http://")) else "/login.htm"
        return _redirect(target, [_session_cookie("", 0)])
    role = session.role or {}
    session.data["role"] = None
    _flash(
        session,
        "error",
        f"Your session as {role.get('role_name')} @ {role.get('alias')} has expired; you are "
        "back to your own identity. Switch role again to continue.",
    )
    _save_session(request.store, session)
    return _redirect("/console")


# --- console home and ECS --------------------------------------------------------------------


def _denied_text(error: ApiError, session: Session) -> str:
    who = (
        f"the role {session.role['role_name']} in {session.role['alias']}"
        if session.role
        else f"the RAM user {session.data['user_name']} in {session.data['alias']}"
    )
    if isinstance(error, ecs.PermissionDenied):
        return (
            f"{NOT_AUTHORIZED} Action: {error.action}. Resource: {error.resource}. "
            f"Ask the account's administrator to grant this permission to {who}."
        )
    return f"{error.message} ({error.code})"


def _instances_table(rows: list[tuple[Any, str]], csrf: str) -> str:
    if not rows:
        return "<p class='hint' id='no-instances'>No ECS instances in this account.</p>"
    cells = []
    for instance, status in rows:
        buttons = []
        for operation, label in _POWER_LABELS.items():
            required, _ = ecs.POWER_TRANSITIONS[operation]
            disabled = "" if status == required else " disabled"
            buttons.append(
                "<form method='post' action='/console/ecs/power' class='inline'>"
                f"<input type='hidden' name='csrf' value='{_e(csrf)}'>"
                f"<input type='hidden' name='instance_id' value='{_e(instance.instance_id)}'>"
                f"<input type='hidden' name='operation' value='{_e(operation)}'>"
                f"<button type='submit' data-action='{_e(label.lower())}'"
                f" data-instance='{_e(instance.instance_id)}'{disabled}>{_e(label)}</button></form>"
            )
        cells.append(
            f"<tr data-instance='{_e(instance.instance_id)}'>"
            f"<td>{_e(instance.instance_name)}<br><small>{_e(instance.instance_id)}</small></td>"
            f"<td>{_e(instance.region_id)}<br><small>{_e(instance.zone_id)}</small></td>"
            f"<td><span class='status {_e(status)}' data-status='{_e(status)}'>"
            f"<span class='dot'></span>{_e(status)}</span></td>"
            f"<td>{_e(instance.instance_type)}<br><small>{_e(instance.private_ip)}</small></td>"
            f"<td>{' '.join(buttons)}</td></tr>"
        )
    return (
        "<table id='instances'><thead><tr><th>Instance</th><th>Region / zone</th>"
        "<th>Status</th><th>Type / private IP</th><th>Actions</th></tr></thead>"
        f"<tbody>{''.join(cells)}</tbody></table>"
    )


@page_route("GET", "/console")
def console_home(request: PageRequest) -> PageResponse:
    session = _load_session(request)
    if session is None:
        return _login_redirect(request)
    identity = _acting_identity(request, session)
    if identity is None:
        return _expired_role(request, session)
    flash = session.data.get("flash")
    if flash:
        session.data["flash"] = None
        _save_session(request.store, session)
    regions = ecs.account_regions_in_use(store=request.store, account_uid=identity.account_uid)
    rows: list[tuple[Any, str]] = []
    denials: list[str] = []
    # An account without instances still gets one permission check, so a missing grant shows.
    for region_id in regions or ["cn-hangzhou"]:
        try:
            rows.extend(
                ecs.describe_instances(
                    store=request.store,
                    identity=identity,
                    region_id=region_id,
                    source_ip=request.client_ip,
                )
            )
        except ApiError as error:
            denials.append(_denied_text(error, session))
    region_order = {region.region_id: index for index, region in enumerate(ecs.REGIONS)}
    rows.sort(key=lambda row: (region_order[row[0].region_id], row[0].instance_name))
    account_alias = session.role["alias"] if session.role else session.data["alias"]
    parts = [
        _message(flash["kind"], flash["text"]) if flash else "",
        "<div class='card'><h2>Current identity</h2>"
        f"<p id='identity-summary'>{_identity_line(session)}</p>",
    ]
    if session.role:
        parts.append(f"<p class='hint'>Role session ARN: {_e(session.role['arn'])}</p>")
    parts.append("</div>")
    parts.append(f"<div class='card'><h2>ECS instances in {_e(account_alias)}</h2>")
    parts.extend(_message("error", text) for text in dict.fromkeys(denials))
    if rows or not denials:
        parts.append(_instances_table(rows, session.data["csrf"]))
    parts.append("</div>")
    return _html(_page("Console", "".join(parts), session=session))


@page_route("POST", "/console/ecs/power")
def console_power(request: PageRequest) -> PageResponse:
    session = _load_session(request)
    if session is None:
        return _redirect("/login.htm")
    form = request.form
    if not _csrf_ok(session.data["csrf"], form.get("csrf")):
        return _forbidden_form(session)
    operation = form.get("operation", "")
    instance_id = form.get("instance_id", "")
    if operation not in _POWER_LABELS or not instance_id:
        _flash(session, "error", "Choose an instance and an operation.")
        _save_session(request.store, session)
        return _redirect("/console")
    identity = _acting_identity(request, session)
    if identity is None:
        return _expired_role(request, session)
    params = {"InstanceId": instance_id}
    started = time.monotonic()
    try:
        instance = ecs.change_power_state(
            store=request.store,
            identity=identity,
            instance_id=instance_id,
            operation=operation,
            source_ip=request.client_ip,
        )
    except ApiError as error:
        _log_call(request, identity, "ecs", operation, params, started, error=error)
        if error.code == "IncorrectInstanceStatus":
            text = f"{error.message} ({error.code}) Reload to see the instance's current status."
        else:
            text = _denied_text(error, session)
        _flash(session, "error", text)
    else:
        _log_call(
            request,
            identity,
            "ecs",
            operation,
            params,
            started,
            extra={"resource": ecs.instance_arn(instance)},
        )
        _flash(
            session,
            "success",
            f"{_POWER_LABELS[operation]} requested for {instance.instance_name} "
            f"({instance.instance_id}); it is now {instance.status}.",
        )
    _save_session(request.store, session)
    return _redirect("/console")


def _log_call(
    request: PageRequest,
    identity: Identity,
    product: str,
    action: str,
    params: dict[str, str],
    started: float,
    *,
    error: ApiError | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """Console actions appear in the call log like API calls, marked ``via: console``."""
    entry: dict[str, Any] = {
        "request_id": request.request_id,
        "account": identity.account_uid,
        "caller_arn": identity.arn,
        "identity": identity.log_fields(),
        "product": product,
        "action": action,
        "version": {"ecs": ecs.VERSION, "sts": sts.VERSION}[product],
        "parameters": dict(params),
        "mutating": True,
        "source_ip": request.client_ip,
        "via": "console",
        "outcome": "error" if error else "success",
        "error_code": error.code if error else None,
        "status": error.status if error else 200,
        "duration_ms": round((time.monotonic() - started) * 1000, 2),
    }
    if extra:
        entry.update(extra)
    request.server.call_log.record(**entry)
