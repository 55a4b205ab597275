"""One HTTP endpoint for every product, the console pages and the operator's ``/_sim`` tools.

API requests are ``POST /`` or ``GET /`` carrying ``x-acs-action``/``x-acs-version`` headers
(ACS3 signature) or ``Action``/``Version`` parameters (v1 signature); the version picks the
product. Anything else is a page routed through ``cloudsim.api.page_route``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import ssl
import struct
import sys
import time
import traceback
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from cloudsim import api, wire
from cloudsim.api import ApiContext, PageRequest, PageResponse, request_region
from cloudsim.calllog import CallLog, redact
from cloudsim.errors import (
    ApiError,
    bad_encoding,
    body_too_large,
    error_body,
    internal_error,
    malformed_request,
    method_not_allowed,
    missing_parameter,
    new_request_id,
    not_found,
    query_too_large,
    unknown_action,
    unknown_version,
)
from cloudsim.faults import FaultSet
from cloudsim.signing import NonceCache, authenticate
from cloudsim.store import Store

logger = logging.getLogger("cloudsim")

MAX_BODY_BYTES = 1024 * 1024
MAX_QUERY_BYTES = 64 * 1024
# Bodies up to this size are read and dropped before the 413 (larger ones: answer and close).
DRAIN_LIMIT_BYTES = 16 * 1024 * 1024
DRAIN_SECONDS = 5
# Actions that read a trust document and may be served stale by the "stale" fault.
STALE_READ_ACTIONS = ("GetRole",)
BAD_GATEWAY_BODY = (
    b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
    b"</h1></center><hr><center>Tengine</center></body></html>"
)


class CloudSimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(
        self,
        address: tuple[str, int],
        *,
        store: Store,
        call_log: CallLog,
        faults: FaultSet,
        operator_token: str,
        tls_context: ssl.SSLContext | None = None,
        nonces: NonceCache | None = None,
    ) -> None:
        api.load_handlers()
        self.store = store
        self.call_log = call_log
        self.faults = faults
        self.operator_token = operator_token
        # Shared with the other listener, so a request replayed on the other port is refused.
        self.nonces = nonces or NonceCache()
        self.secure = tls_context is not None
        super().__init__(address, RequestHandler)
        api.run_startup_hooks(self)
        if tls_context is not None:
            # The handshake happens in the connection's own thread (at its first read), so a
            # slow or plain-HTTP client cannot stall the accept loop.
            self.socket = tls_context.wrap_socket(
                self.socket, server_side=True, do_handshake_on_connect=False
            )

    @property
    def endpoint(self) -> str:
        host, port = self.server_address[:2]
        return f"{host}:{port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.secure else 'http'}://{self.endpoint}"

    def handle_error(self, request: object, client_address: tuple) -> None:
        # A client that is not speaking TLS to the TLS port, or hangs up mid-handshake, is the
        # client's problem: one debug line, not a traceback on stderr.
        error = sys.exc_info()[1]
        if isinstance(error, ssl.SSLError | ConnectionError | TimeoutError):
            logger.debug("connection from %s failed: %s", client_address[0], error)
            return
        super().handle_error(request, client_address)


class _Drop(Exception):
    """Close the connection without answering (fault injection)."""


def _decode_params(raw: str | bytes, what: str) -> dict[str, str]:
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise bad_encoding(what) from None
    try:
        pairs = parse_qsl(raw, keep_blank_values=True, encoding="utf-8", errors="strict")
    except UnicodeDecodeError:
        raise bad_encoding(what) from None
    except ValueError as exc:
        raise malformed_request(str(exc)) from None
    params: dict[str, str] = {}
    for key, value in pairs:
        if "\x00" in key or "\x00" in value:
            raise bad_encoding(what)
        params[key] = value
    return params


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cloudsim"
    sys_version = ""
    # Idle keep-alive connections are closed after this many seconds.
    timeout = 120
    # Headers and body leave in separate writes; with Nagle's algorithm the body would wait
    # for the client's delayed ACK (~40 ms per call).
    disable_nagle_algorithm = True
    server: CloudSimServer
    # The answer format of the request being handled (``cloudsim.wire``); JSON until an API
    # request's parameters say otherwise, and for everything that is not an API request.
    _format = wire.JSON

    _date_cache: tuple[int, str] = (0, "")

    def date_time_string(self, timestamp: float | None = None) -> str:
        # Formatting the Date header through the email package costs more than a whole API
        # call's policy check; it changes once a second.
        if timestamp is not None:
            return super().date_time_string(timestamp)
        second = int(time.time())
        cached_second, text = RequestHandler._date_cache
        if cached_second != second:
            text = super().date_time_string(second)
            RequestHandler._date_cache = (second, text)
        return text

    def log_message(self, format: str, *args: object) -> None:
        logger.debug("%s - %s", self.address_string(), format % args)

    # http.server calls this for malformed request lines, oversized headers, unknown methods.
    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        error = ApiError(
            {
                400: "BadRequest",
                408: "RequestTimeout",
                414: "RequestURITooLong",
                431: "RequestHeaderFieldsTooLarge",
                501: "UnsupportedHTTPMethod",
                505: "UnsupportedHTTPVersion",
            }.get(code, "BadRequest"),
            message or "The request is malformed.",
            code,
        )
        self.close_connection = True
        if self.request_version == "HTTP/0.9":
            # An unparsable request line leaves http.server at HTTP/0.9, which would send the
            # body without a status line; answer as HTTP/1.0 so clients see the status.
            self.request_version = "HTTP/1.0"
        with contextlib.suppress(OSError):
            self._send_api_error(error, new_request_id(), "cloudsim")

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    # --- plumbing -------------------------------------------------------------------------
    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]],
        request_id: str,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("x-acs-request-id", request_id)
        for name, value in headers:
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        # end_headers() without its flush, so status, headers and body go out in one write.
        self._headers_buffer.append(b"\r\n")
        if self.command != "HEAD":
            self._headers_buffer.append(body)
        self.flush_headers()

    def _send_api_error(
        self,
        error: ApiError,
        request_id: str,
        host_id: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        body = error_body(error, request_id=request_id, host_id=host_id)
        self._send(
            error.status,
            self._encode("Error", body),
            wire.CONTENT_TYPES[self._format],
            headers or [],
            request_id,
        )

    def _encode(self, root: str, body: dict) -> bytes:
        if self._format == wire.XML:
            return wire.to_xml(root, body)
        return json.dumps(body).encode()

    def _drop_connection(self) -> None:
        """Reset the connection: SO_LINGER 0 makes close() send RST instead of FIN."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return self._read_chunked()
        length_text = headers.get("content-length")
        if length_text is None:
            return b""
        try:
            length = int(length_text)
        except ValueError:
            self.close_connection = True
            raise malformed_request("Content-Length is not a number.") from None
        if length < 0:
            self.close_connection = True
            raise malformed_request("Content-Length is negative.")
        if length > MAX_BODY_BYTES:
            self.close_connection = True  # the unread body must not be parsed as a request
            if length <= DRAIN_LIMIT_BYTES:
                self._discard(length)
            raise body_too_large(MAX_BODY_BYTES)
        body = self.rfile.read(length)
        if len(body) != length:
            self.close_connection = True
            raise malformed_request("The body is shorter than Content-Length.")
        return body

    def _discard(self, length: int) -> None:
        """Read and drop a moderately oversized body so the client, still sending it, gets
        the 413 instead of a broken pipe; give up after a few seconds."""
        self.connection.settimeout(DRAIN_SECONDS)
        try:
            while length > 0:
                chunk = self.rfile.read(min(length, 64 * 1024))
                if not chunk:
                    return
                length -= len(chunk)
        except OSError:
            return

    def _read_chunked(self) -> bytes:
        chunks = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                raise malformed_request("Bad chunk size.") from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self.close_connection = True
                raise body_too_large(MAX_BODY_BYTES)
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    # --- dispatch -------------------------------------------------------------------------
    def _dispatch(self) -> None:
        request_id = new_request_id()
        self._format = wire.JSON
        host_id = "cloudsim"
        started = time.monotonic()
        try:
            try:
                target = self.path.encode("latin-1").decode("utf-8")
            except UnicodeError:
                raise bad_encoding("request URI") from None
            split = urlsplit(target)
            if len(split.query) > MAX_QUERY_BYTES:
                self.close_connection = True
                raise query_too_large(MAX_QUERY_BYTES)
            # raw_items(): the email package's per-header policy processing costs more than a
            # signature check, and would turn undecodable bytes into Header objects.
            headers = {name.lower(): value for name, value in self.headers.raw_items()}
            if not all(value.isascii() or value.isprintable() for value in headers.values()):
                raise bad_encoding("request header")
            body = self._read_body(headers)
            query = _decode_params(split.query, "query string")
            content_type = headers.get("content-type", "").split(";")[0].strip().lower()
            form = (
                _decode_params(body, "form body")
                if body and content_type == "application/x-www-form-urlencoded"
                else {}
            )
            path = split.path or "/"
            action = headers.get("x-acs-action") or query.get("Action") or form.get("Action")
            if action is not None and path == "/":
                version = (
                    headers.get("x-acs-version") or query.get("Version") or form.get("Version")
                )
                product = api.PRODUCTS.get(version or "")
                if product:
                    host_id = api.HOST_IDS[product]
                self._handle_api(
                    request_id=request_id,
                    action=action,
                    version=version,
                    path=path,
                    query=query,
                    form=form,
                    headers=headers,
                    body=body,
                    started=started,
                )
            else:
                self._handle_page(
                    request_id=request_id,
                    path=path,
                    query=query,
                    form=form,
                    headers=headers,
                    body=body,
                )
        except _Drop:
            self._drop_connection()
        except ApiError as error:
            self._send_api_error(error, request_id, host_id)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:
            logger.error("internal error %s\n%s", request_id, traceback.format_exc())
            self._send_api_error(internal_error(), request_id, host_id)

    def _handle_page(
        self,
        *,
        request_id: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> None:
        method = self.command.upper()
        lookup_method = "GET" if method == "HEAD" else method
        handler = api.find_page(lookup_method, path)
        if handler is None:
            if path == "/" and method in ("GET", "POST"):
                raise missing_parameter("Action")
            if api.page_path_exists(path):
                raise method_not_allowed(method)
            raise not_found(path)
        request = PageRequest(
            method=method,
            path=path,
            query=query,
            headers=headers,
            body=body,
            form=form,
            client_ip=self.client_address[0],
            store=self.server.store,
            server=self.server,
            request_id=request_id,
        )
        response: PageResponse = handler(request)
        payload = response.body.encode() if isinstance(response.body, str) else response.body
        self._send(response.status, payload, response.content_type, response.headers, request_id)

    def _handle_api(
        self,
        *,
        request_id: str,
        action: str,
        version: str | None,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        started: float,
    ) -> None:
        method = self.command.upper()
        params = {**query, **form}
        log = {
            "request_id": request_id,
            "account": None,
            "caller_arn": None,
            "product": None,
            "action": action,
            "version": version,
            "parameters": redact({k: v for k, v in params.items() if k not in _V1_PROTOCOL_PARAMS}),
            "mutating": False,
            "source_ip": self.client_address[0],
        }
        fault_kind = None
        answer: Callable[[], None] | None = None
        try:
            self._format = wire.response_format(params, headers)
            if method not in ("GET", "POST"):
                raise method_not_allowed(method)
            if not version:
                raise missing_parameter("Version")
            product = api.PRODUCTS.get(version)
            if product is None:
                raise unknown_version(version)
            log["product"] = product
            registered = api.find_action(version, action)
            if registered is None:
                raise unknown_action(action)
            log["mutating"] = registered.mutating
            auth = authenticate(
                store=self.server.store,
                method=method,
                path=path,
                query=query,
                form=form,
                headers=headers,
                body=body,
                nonces=self.server.nonces,
            )
            log["account"] = auth.identity.account_uid
            log["caller_arn"] = auth.identity.arn
            log["identity"] = auth.identity.log_fields()
            log["signature"] = auth.signature_version

            decision = self.server.faults.decide(action)
            if decision.latency:
                time.sleep(decision.latency)
            fault_kind = decision.kind
            if fault_kind is not None and fault_kind != "lost":
                log.update(outcome="fault", error_code=_FAULT_CODES.get(fault_kind), status=None)
                answer = partial(
                    self._apply_response_fault, decision, request_id, api.HOST_IDS[product]
                )
                return

            ctx = ApiContext(
                identity=auth.identity,
                params=params,
                store=self.server.store,
                request_id=request_id,
                action=action,
                version=version,
                product=product,
                source_ip=self.client_address[0],
                secure_transport=self.server.secure,
                region_id=request_region(self.headers),
                call_log=self.server.call_log,
                faults=self.server.faults,
                stale_read_seconds=(
                    self.server.faults.stale_window(action) if action in STALE_READ_ACTIONS else 0.0
                ),
            )
            result = registered.handler(ctx)
            if ctx.log_extra:
                log.update(ctx.log_extra)
            if fault_kind == "lost":
                # The change is committed; only the answer goes missing.
                log.update(outcome="success", error_code=None, status=None)
                raise _Drop()
            payload = self._encode(f"{action}Response", {"RequestId": request_id, **result})
            answer = partial(
                self._send, 200, payload, wire.CONTENT_TYPES[self._format], [], request_id
            )
            log.update(outcome="success", error_code=None, status=200)
        except ApiError as error:
            log.update(outcome="error", error_code=error.code, status=error.status)
            raise
        except _Drop:
            log.setdefault("outcome", "fault")
            raise
        except Exception:
            log.update(outcome="error", error_code="InternalError", status=500)
            raise
        finally:
            if fault_kind is not None:
                log["fault"] = fault_kind
            log.setdefault("outcome", "error")
            log["duration_ms"] = round((time.monotonic() - started) * 1000, 2)
            # Logged before the answer goes out (errors are answered by the caller, after
            # this): whoever has seen an answer finds its call in the log, in the order the
            # calls took effect.
            self.server.call_log.record(**log)
            if answer is not None:
                answer()

    def _apply_response_fault(self, decision, request_id: str, host_id: str) -> None:
        kind = decision.kind
        if kind == "throttle":
            self._send_api_error(_throttled(), request_id, host_id)
        elif kind == "throttle429":
            error = _throttled()
            error.status = 429
            self._send_api_error(
                error, request_id, host_id, [("x-acs-retry-after", str(decision.retry_after_ms))]
            )
        elif kind == "internal":
            self._send_api_error(internal_error(), request_id, host_id)
        elif kind == "badgateway":
            self._send(502, BAD_GATEWAY_BODY, "text/html", [], request_id)
        elif kind == "drop":
            raise _Drop()
        elif kind == "hang":
            time.sleep(decision.hang_seconds)
            raise _Drop()


_V1_PROTOCOL_PARAMS = frozenset(
    {
        "Action",
        "Version",
        "Format",
        "Timestamp",
        "SignatureNonce",
        "SignatureMethod",
        "SignatureVersion",
        "Signature",
        "SecurityToken",
        "AccessKeyId",
    }
)


_FAULT_CODES = {
    "throttle": "Throttling.User",
    "throttle429": "Throttling.User",
    "internal": "InternalError",
    "badgateway": "BadGateway",
}


def _throttled() -> ApiError:
    return ApiError("Throttling.User", "Request was denied due to user flow control.", 400)


def make_server(
    *,
    host: str,
    port: int,
    store: Store,
    call_log: CallLog,
    faults: FaultSet,
    operator_token: str,
    tls_context: ssl.SSLContext | None = None,
    nonces: NonceCache | None = None,
) -> CloudSimServer:
    return CloudSimServer(
        (host, port),
        store=store,
        call_log=call_log,
        faults=faults,
        operator_token=operator_token,
        tls_context=tls_context,
        nonces=nonces,
    )
