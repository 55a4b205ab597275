"""The operator's endpoints under ``/_sim``: call log, faults, accounts, and an HTML overview.

Everything except ``/_sim/noop`` needs the operator token: header
``X-Cloudsim-Operator-Token``, or (for the HTML page) ``?token=...`` once, which sets an
HttpOnly cookie and redirects to the clean URL.
"""

from __future__ import annotations

import hmac
import html
import json
import time
from urllib.parse import quote

from cloudsim import admin, sts
from cloudsim.api import PageRequest, PageResponse, page_route
from cloudsim.errors import ApiError
from cloudsim.faults import FaultSpecError, build_rule, parse_spec

COOKIE_NAME = "cloudsim_operator"
TOKEN_HEADER = "x-cloudsim-operator-token"  # noqa: S105 - a header name


def _token_ok(request: PageRequest, candidate: str | None) -> bool:
    expected = request.server.operator_token
    return bool(candidate) and hmac.compare_digest(candidate.encode(), expected.encode())


def _require_operator(request: PageRequest) -> None:
    if _token_ok(request, request.headers.get(TOKEN_HEADER)):
        return
    if _token_ok(request, request.cookies.get(COOKIE_NAME)):
        return
    raise ApiError(
        "Forbidden.OperatorToken",
        "This endpoint needs the operator token (header X-Cloudsim-Operator-Token).",
        403,
    )


def _json_body(request: PageRequest) -> dict:
    if not request.body:
        return {}
    try:
        data = json.loads(request.body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError("InvalidParameter.Body", "The body must be a JSON object.", 400) from None
    if not isinstance(data, dict):
        raise ApiError("InvalidParameter.Body", "The body must be a JSON object.", 400)
    return data


def _admin_call(function, **kwargs) -> PageResponse:
    try:
        return PageResponse.json(function(**kwargs), status=201)
    except admin.AdminError as exc:
        raise ApiError("InvalidParameter", str(exc), 400) from None


@page_route("GET", "/_sim/noop")
def noop(request: PageRequest) -> PageResponse:
    """Unauthenticated and stateless: the benchmark's baseline."""
    return PageResponse(200, b"{}", "application/json;charset=utf-8")


@page_route("GET", "/_sim/calls")
def calls(request: PageRequest) -> PageResponse:
    _require_operator(request)
    try:
        since = int(request.query.get("since", "0") or 0)
        limit = int(request.query.get("limit", "10000") or 10000)
    except ValueError:
        raise ApiError("InvalidParameter", "since and limit must be integers.", 400) from None
    entries = request.server.call_log.since(since, limit=max(1, min(limit, 100_000)))
    return PageResponse.json({"calls": entries, "last_seq": request.server.call_log.last_seq})


def _rules_from(data: dict) -> list:
    items = data.get("faults", [])
    if not isinstance(items, list):
        raise FaultSpecError("faults must be a list")
    rules = []
    for item in items:
        if isinstance(item, str):
            rules.append(parse_spec(item))
        elif isinstance(item, dict):
            rules.append(
                build_rule(
                    action=item.get("action", ""),
                    kind=item.get("kind", ""),
                    probability=item.get("probability"),
                    arg=None if item.get("arg") is None else str(item.get("arg")),
                    count=item.get("count"),
                )
            )
        else:
            raise FaultSpecError("each fault is a spec string or an object")
    return rules


@page_route("GET", "/_sim/faults")
def faults_get(request: PageRequest) -> PageResponse:
    _require_operator(request)
    return PageResponse.json(request.server.faults.to_json())


@page_route("PUT", "/_sim/faults")
@page_route("POST", "/_sim/faults")
def faults_set(request: PageRequest) -> PageResponse:
    """PUT replaces the rules (and seed/latency); POST appends rules."""
    _require_operator(request)
    data = _json_body(request)
    faults = request.server.faults
    try:
        rules = _rules_from(data)
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise FaultSpecError("seed must be an integer")
        latency = data.get("latency_ms")
        if request.method == "PUT":
            faults.replace(rules, seed=seed, latency_ms=None if latency is None else str(latency))
        else:
            faults.add(rules)
    except FaultSpecError as exc:
        raise ApiError("InvalidParameter.Fault", str(exc), 400) from None
    return PageResponse.json(faults.to_json())


@page_route("DELETE", "/_sim/faults")
def faults_clear(request: PageRequest) -> PageResponse:
    _require_operator(request)
    request.server.faults.clear()
    return PageResponse.json(request.server.faults.to_json())


@page_route("POST", "/_sim/accounts")
def accounts_create(request: PageRequest) -> PageResponse:
    _require_operator(request)
    data = _json_body(request)
    return _admin_call(
        admin.account_create,
        store=request.store,
        uid=str(data.get("uid", "")),
        alias=str(data.get("alias", "")),
    )


@page_route("POST", "/_sim/users")
def users_create(request: PageRequest) -> PageResponse:
    _require_operator(request)
    data = _json_body(request)
    password = data.get("password")
    return _admin_call(
        admin.user_create,
        store=request.store,
        uid=str(data.get("uid", "")),
        name=str(data.get("name", "")),
        password=None if password is None else str(password),
    )


@page_route("POST", "/_sim/access-keys")
def access_keys_create(request: PageRequest) -> PageResponse:
    _require_operator(request)
    data = _json_body(request)
    user = data.get("user")
    return _admin_call(
        admin.access_key_create,
        store=request.store,
        uid=str(data.get("uid", "")),
        user=None if user is None else str(user),
    )


# --- the HTML overview -------------------------------------------------------------------------

_PAGE_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
table{border-collapse:collapse;margin-bottom:1.5rem;font-size:.9rem}
th,td{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f3f3f3} pre{margin:0;white-space:pre-wrap;max-width:40rem}
.error{color:#a00}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    if not rows:
        return f"<table><tr>{head}</tr><tr><td colspan='{len(headers)}'>none</td></tr></table>"
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _pretty(document: str) -> str:
    try:
        return json.dumps(json.loads(document), indent=2)
    except ValueError:
        return document


@page_route("GET", "/_sim/")
def overview(request: PageRequest) -> PageResponse:
    token = request.query.get("token")
    if token is not None:
        if not _token_ok(request, token):
            raise ApiError("Forbidden.OperatorToken", "The operator token is wrong.", 403)
        response = PageResponse.redirect("/_sim/", status=303)
        response.headers.append(
            (
                "Set-Cookie",
                f"{COOKIE_NAME}={quote(token, safe='')}; HttpOnly; SameSite=Strict; Path=/_sim",
            )
        )
        return response
    _require_operator(request)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>cloudsim operator</title>",
        f"<style>{_PAGE_STYLE}</style></head><body><h1>cloudsim</h1>",
    ]
    with request.store.read() as tx:
        accounts = tx.account_list()
        parts.append("<h2>Accounts</h2>")
        parts.append(
            _table(
                ["UID", "Alias", "Created"],
                [[_e(a.uid), _e(a.alias), _e(a.created_at)] for a in accounts],
            )
        )
        for account in accounts:
            parts.append(f"<h2>{_e(account.alias)} ({_e(account.uid)})</h2><h3>Roles</h3>")
            role_rows = []
            for _, role in tx.role_list(account.uid, limit=10_000):
                policies = ", ".join(
                    f"{a.policy_name} ({a.policy_type})"
                    for a in tx.attachment_list(account.uid, "Role", role.name)
                )
                role_rows.append(
                    [
                        _e(role.name),
                        _e(role.arn),
                        f"<pre>{_e(_pretty(role.trust_document))}</pre>",
                        _e(policies),
                        _e(role.max_session_duration),
                        _e(role.updated_at),
                    ]
                )
            parts.append(
                _table(
                    ["Name", "ARN", "Trust policy", "Policies", "MaxSessionDuration", "Updated"],
                    role_rows,
                )
            )
            parts.append("<h3>RAM users</h3>")
            user_rows = []
            for user in tx.user_list(account.uid):
                policies = ", ".join(
                    f"{a.policy_name} ({a.policy_type})"
                    for a in tx.attachment_list(account.uid, "User", user.name)
                )
                keys = ", ".join(
                    f"{k.access_key_id} ({k.status})"
                    for k in tx.access_key_list(account.uid, user.name)
                )
                user_rows.append(
                    [
                        _e(user.name),
                        _e(f"{user.name}@{account.alias}.onaliyun.com"),
                        _e(policies),
                        _e(keys),
                        _e("yes" if user.password_hash else "no"),
                    ]
                )
            parts.append(
                _table(
                    ["Name", "Principal name", "Policies", "AccessKeys", "Console login"], user_rows
                )
            )
            # OOS executions started in this account (the newest 20 runs, children counted).
            rows = tx.document_rows(
                "SELECT data FROM oos_executions WHERE account_uid = ? AND parent_id IS NULL "
                "ORDER BY seq DESC LIMIT 20",
                (account.uid,),
            )
            if rows:
                parts.append("<h3>OOS executions</h3>")
                execution_rows = []
                for row in rows:
                    execution = json.loads(row["data"])
                    children = tx.document_rows(
                        "SELECT status, COUNT(*) AS n FROM oos_executions WHERE parent_id = ? "
                        "GROUP BY status",
                        (execution["ExecutionId"],),
                    )
                    execution_rows.append(
                        [
                            _e(execution["ExecutionId"]),
                            _e(execution["TemplateName"]),
                            _e(execution["region_id"]),
                            _e(execution["Status"]),
                            _e(execution["StatusMessage"]),
                            _e(", ".join(f"{c['status']}: {c['n']}" for c in children)),
                            _e(execution["StartDate"]),
                        ]
                    )
                parts.append(
                    _table(
                        ["Id", "Template", "Region", "Status", "Message", "Children", "Started"],
                        execution_rows,
                    )
                )
    parts.append("<h2>Recent calls</h2>")
    call_rows = []
    for entry in reversed(request.server.call_log.recent(200)):
        outcome = _e(entry.get("outcome"))
        if entry.get("error_code"):
            outcome = f"<span class='error'>{outcome}: {_e(entry.get('error_code'))}</span>"
        if entry.get("fault"):
            outcome += f" (fault {_e(entry['fault'])})"
        call_rows.append(
            [
                _e(entry.get("seq")),
                _e(entry.get("time")),
                _e(entry.get("caller_arn")),
                _e(entry.get("product")),
                _e(entry.get("action")),
                f"<pre>{_e(json.dumps(entry.get('parameters', {}), ensure_ascii=False))}</pre>",
                outcome,
                _e(entry.get("request_id")),
            ]
        )
    parts.append(
        _table(
            ["#", "Time", "Caller", "Product", "Action", "Parameters", "Outcome", "Request id"],
            call_rows,
        )
    )
    parts.append("</body></html>")
    return PageResponse(
        200,
        "".join(parts),
        headers=[
            ("Cache-Control", "no-store"),
            ("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'"),
        ],
    )


@page_route("GET", "/_sim")
def overview_redirect(request: PageRequest) -> PageResponse:
    token = request.query.get("token")
    return PageResponse.redirect("/_sim/" + (f"?token={quote(token, safe='')}" if token else ""))


@page_route("POST", "/_sim/service-assume-role")
def service_assume_role(request: PageRequest) -> PageResponse:
    """A cloud service (``{"service": "oos.aliyuncs.com"}``) assumes a role that trusts it:
    ``{"service", "role_arn", "session_name"?, "duration_seconds"?}`` → AssumeRole's body."""
    _require_operator(request)
    data = _json_body(request)
    service = str(data.get("service", ""))
    role_arn = str(data.get("role_arn", ""))
    duration = data.get("duration_seconds", sts.DEFAULT_DURATION)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise ApiError(
            "InvalidParameter.DurationSeconds", "duration_seconds must be an integer.", 400
        )
    log = {
        "request_id": request.request_id,
        "account": None,
        "caller_arn": f"service/{service}",
        "product": "sts",
        "action": "AssumeRole",
        "version": sts.VERSION,
        "parameters": {"RoleArn": role_arn, "Service": service},
        "mutating": True,
        "source_ip": request.client_ip,
        "signature": "operator",
    }
    try:
        body = sts.assume_role_as_service(
            request.store,
            service=service,
            role_arn=role_arn,
            session_name=str(data.get("session_name", "service-session")),
            duration=duration,
        )
    except ApiError as error:
        request.server.call_log.record(
            **log, outcome="error", error_code=error.code, status=error.status
        )
        raise
    request.server.call_log.record(**log, outcome="success", error_code=None, status=200)
    return PageResponse.json({"RequestId": request.request_id, **body})


@page_route("POST", "/_sim/expire-session")
def expire_session(request: PageRequest) -> PageResponse:
    """End an STS session now (``{"access_key_id": "STS.…"}``), as if its time had run out."""
    _require_operator(request)
    access_key_id = str(_json_body(request).get("access_key_id", ""))
    with request.store.write() as tx:
        changed = tx.sts_session_expire(access_key_id=access_key_id, at=time.time() - 1)
    if not changed:
        raise ApiError("EntityNotExist.Session", "No STS session has that AccessKeyId.", 404)
    return PageResponse.json({"access_key_id": access_key_id, "expired": True})
