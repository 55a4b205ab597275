"""Registries that product modules fill in: API actions by (version, name), pages by (method, path).

A product module (``ram.py``, ``sts.py``, ``ecs.py``, ``console.py``) decorates its functions;
``cloudsim.server`` imports every module listed in ``HANDLER_MODULES`` once at start-up and
dispatches to what they registered.

API handler contract::

    @api_action(version="2015-05-01", name="GetRole")
    def get_role(ctx: ApiContext) -> dict: ...

The handler reads ``ctx.params`` (query and form merged, all ``str``), checks permissions with
``ctx.authorize(action, resource)``, changes state through ``ctx.store`` and returns the JSON
body without ``RequestId`` (the server adds it). Failures are raised as ``ApiError``.

Page handler contract::

    @page_route("GET", "/switchRole.htm")
    def switch_role(request: PageRequest) -> PageResponse: ...
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import TYPE_CHECKING, Any

from cloudsim.errors import ApiError, invalid_parameter, missing_parameter

if TYPE_CHECKING:
    from cloudsim.identity import Identity
    from cloudsim.store import Store

# API version → product. One endpoint serves all three; the version picks the product.
PRODUCTS: dict[str, str] = {
    "2015-05-01": "ram",
    "2015-04-01": "sts",
    "2014-05-26": "ecs",
    "2020-07-06": "actiontrail",
    "2019-06-01": "oos",
}
HOST_IDS: dict[str, str] = {
    "ram": "ram.aliyuncs.com",
    "sts": "sts.aliyuncs.com",
    "ecs": "ecs.aliyuncs.com",
    "actiontrail": "actiontrail.cn-hangzhou.aliyuncs.com",
    "oos": "oos.cn-hangzhou.aliyuncs.com",
}

# Imported by the server at start-up; a missing optional module is skipped (see load_handlers).
HANDLER_MODULES = (
    "cloudsim.ram",
    "cloudsim.sts",
    "cloudsim.ecs",
    "cloudsim.console",
    "cloudsim.federation",
    "cloudsim.operator",
    "cloudsim.actiontrail",
    "cloudsim.trail_seed",
    "cloudsim.cloud_assistant",
    "cloudsim.oos",
)


@dataclass(frozen=True)
class ApiAction:
    version: str
    name: str
    product: str
    handler: Callable[[ApiContext], dict]
    mutating: bool


_ACTIONS: dict[tuple[str, str], ApiAction] = {}
# Run once per data directory when a server starts (e.g. OOS settling executions that a
# restart interrupted); each gets the server (store, call log, faults).
_STARTUP_HOOKS: list[Callable[[Any], None]] = []
_STARTED: set[str] = set()
_PAGES: dict[tuple[str, str], Callable[[PageRequest], PageResponse]] = {}
_PAGE_PREFIXES: list[tuple[str, str, Callable[[PageRequest], PageResponse]]] = []


def api_action(*, version: str, name: str, mutating: bool = False) -> Callable:
    """Register an API action handler. ``mutating`` marks calls that change state."""
    product = PRODUCTS[version]

    def register(handler: Callable[[ApiContext], dict]) -> Callable[[ApiContext], dict]:
        _ACTIONS[(version, name)] = ApiAction(version, name, product, handler, mutating)
        return handler

    return register


def page_route(method: str, path: str, *, prefix: bool = False) -> Callable:
    """Register a non-API page. With ``prefix=True`` every path under ``path`` matches."""

    def register(handler: Callable[[PageRequest], PageResponse]) -> Callable:
        if prefix:
            _PAGE_PREFIXES.append((method.upper(), path, handler))
            _PAGE_PREFIXES.sort(key=lambda item: len(item[1]), reverse=True)
        else:
            _PAGES[(method.upper(), path)] = handler
        return handler

    return register


def on_startup(hook: Callable[[Any], None]) -> Callable[[Any], None]:
    """Register ``hook(server)`` to run once per data directory when a server starts."""
    _STARTUP_HOOKS.append(hook)
    return hook


def run_startup_hooks(server: Any) -> None:
    # Two listeners (HTTP and HTTPS) share one store: the hooks run for the first only.
    if server.store.path in _STARTED:
        return
    _STARTED.add(server.store.path)
    for hook in _STARTUP_HOOKS:
        hook(server)


def find_action(version: str, name: str) -> ApiAction | None:
    return _ACTIONS.get((version, name))


def find_page(method: str, path: str) -> Callable[[PageRequest], PageResponse] | None:
    handler = _PAGES.get((method, path))
    if handler is not None:
        return handler
    for route_method, route_path, route_handler in _PAGE_PREFIXES:
        if route_method == method and path.startswith(route_path):
            return route_handler
    return None


def page_path_exists(path: str) -> bool:
    """Whether any method is routed at ``path`` (so a wrong method can answer 405)."""
    if any(route_path == path for _, route_path in _PAGES):
        return True
    return any(path.startswith(route_path) for _, route_path, _ in _PAGE_PREFIXES)


def registered_actions() -> list[ApiAction]:
    return sorted(_ACTIONS.values(), key=lambda a: (a.product, a.name))


def load_handlers() -> None:
    """Import every product module so its decorators run (idempotent)."""
    for module in HANDLER_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            # A product module another engineer has not delivered yet is optional; a missing
            # dependency *inside* an existing module is a real error.
            if exc.name != module:
                raise


_REGIONAL_HOST = re.compile(r"^[a-z0-9-]+\.([a-z]{2,4}-[a-z0-9-]+)\.aliyuncs\.com(:\d+)?$")


def request_region(headers: Any) -> str:
    """The region a request names: `x-acs-region-id`, else a regional endpoint's host."""
    explicit = (headers.get("x-acs-region-id") or "").strip()
    if explicit:
        return explicit
    match = _REGIONAL_HOST.match((headers.get("host") or "").lower())
    return match.group(1) if match else ""


@dataclass
class ApiContext:
    """Everything an API handler needs about one verified request."""

    identity: Identity
    params: dict[str, str]
    store: Store
    request_id: str
    action: str
    version: str
    product: str
    source_ip: str
    secure_transport: bool = False
    # The region the request was sent to: its `x-acs-region-id` header, else the region in a
    # regional endpoint's host (`actiontrail.cn-shanghai.aliyuncs.com`); "" when neither says.
    region_id: str = ""
    # The server's call log, for APIs that answer from it (ActionTrail's LookupEvents).
    call_log: Any = None
    # The server's fault rules, for services that make calls of their own (OOS).
    faults: Any = None
    # Set by the server from the fault configuration: seconds during which GetRole serves the
    # previous trust document after a write (0 = consistent reads).
    stale_read_seconds: float = 0.0
    # Filled by handlers for the call log: the resource the call was about.
    log_extra: dict[str, Any] = field(default_factory=dict)

    # --- parameters -------------------------------------------------------------------
    def param(self, name: str, default: str | None = None) -> str | None:
        value = self.params.get(name)
        if value is None or value == "":
            return default
        return value

    def require(self, name: str) -> str:
        value = self.params.get(name)
        if value is None or value == "":
            raise missing_parameter(name)
        return value

    def int_param(
        self,
        name: str,
        default: int | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        error: ApiError | None = None,
    ) -> int | None:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            raise error or invalid_parameter(name, "It must be an integer.") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise error or invalid_parameter(name, f"It must be between {minimum} and {maximum}.")
        return value

    def bool_param(self, name: str, default: bool | None = None) -> bool | None:
        raw = self.params.get(name)
        if raw is None or raw == "":
            return default
        lowered = raw.strip().lower()
        # The SDK sends str(True) == "True"; hand-written clients send "true".
        if lowered == "true":
            return True
        if lowered == "false":
            return False
        raise invalid_parameter(name, "It must be true or false.")

    # --- authorisation ------------------------------------------------------------------
    def authorize(self, action: str, resource: str) -> None:
        """Raise NoPermission unless the caller may do ``action`` on ``resource`` right now."""
        from cloudsim.authz import authorize

        authorize(
            store=self.store,
            identity=self.identity,
            action=action,
            resource=resource,
            source_ip=self.source_ip,
            secure_transport=self.secure_transport,
        )


@dataclass
class PageRequest:
    """A non-API HTTP request (console pages and the operator's ``/_sim`` endpoints)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes
    form: dict[str, str]
    client_ip: str
    store: Store
    server: Any  # cloudsim.server.CloudSimServer: faults, call log, operator token
    request_id: str

    @property
    def cookies(self) -> dict[str, str]:
        jar = SimpleCookie()
        try:
            jar.load(self.headers.get("cookie", ""))
        except Exception:
            return {}
        return {name: morsel.value for name, morsel in jar.items()}


@dataclass
class PageResponse:
    status: int = 200
    body: bytes | str = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> PageResponse:
        import json

        return cls(status, json.dumps(data), "application/json;charset=utf-8")

    @classmethod
    def redirect(cls, location: str, status: int = 302) -> PageResponse:
        return cls(status, b"", "text/plain; charset=utf-8", [("Location", location)])
