"""Bad webhook URLs and secrets are refused with a clear message; in production only public
https addresses pass, checked after DNS resolution (the SSRF guard), and a post connects to a
checked address while TLS still checks the host's name."""

import select
import socket
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.exceptions import ValidationError

from cloudsim.tls import ensure_certificate, server_context
from notifications import webhook_urls
from notifications.webhook_urls import validate_signing_secret, validate_webhook_url


@pytest.fixture
def production(settings: Any) -> None:
    settings.DEBUG = False
    settings.PORTAL_EMBEDDED = False


def _resolves_to(
    monkeypatch: pytest.MonkeyPatch, *addresses: str, only_host: str | None = None
) -> None:
    """Every name resolves to `addresses`; with `only_host`, only that name does and the rest
    resolve as they really do (a local proxy's own address, say)."""
    real = socket.getaddrinfo

    def fake(host: str, port: int, *args: Any, **kwargs: Any) -> list[Any]:
        if only_host is not None and host != only_host:
            return real(host, port, *args, **kwargs)
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port)) for address in addresses
        ]

    monkeypatch.setattr(webhook_urls.socket, "getaddrinfo", fake)


@pytest.mark.parametrize(
    "url",
    [
        "",
        "not a url",
        "ftp://example.com/hook",
        "https://",
        "https://user:pw@example.com/hook",
        "https://exa mple.com/hook",
        "https://example.com:99999/hook",
        "https://example.com/" + "a" * 2048,
    ],
)
def test_malformed_urls_are_refused(production: None, url: str) -> None:
    with pytest.raises(ValidationError):
        validate_webhook_url(url)


def test_plain_http_is_refused_in_production(production: None) -> None:
    with pytest.raises(ValidationError, match="https"):
        validate_webhook_url("http://hooks.example.com/x")


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.1.2.3",
        "192.168.1.10",
        "172.16.0.1",
        "169.254.169.254",
        "::1",
        "fe80::1",
        "::ffff:10.0.0.1",
        "100.64.0.1",
        "0.0.0.0",  # noqa: S104 (an address to refuse, nothing binds to it)
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused_after_resolution(
    production: None, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    _resolves_to(monkeypatch, address)
    with pytest.raises(ValidationError) as refused:
        validate_webhook_url("https://innocent-looking.example.com/hook")
    assert refused.value.code == "private_address"


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254 (cloud metadata)
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::a00:1",  # the local-use NAT64 prefix: a private translator
        "2002:7f00:1::1",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::7f00:1",  # IPv4-compatible 127.0.0.1
        "::a9fe:a9fe",  # IPv4-compatible 169.254.169.254
        "::ffff:0:7f00:1",  # IPv4-translated 127.0.0.1
        "::ffff:127.0.0.1",  # IPv4-mapped
        "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
    ],
)
def test_ipv6_forms_that_carry_an_internal_ipv4_address_are_refused(
    production: None, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    _resolves_to(monkeypatch, address)
    with pytest.raises(ValidationError) as refused:
        validate_webhook_url("https://nat64.attacker.example/hook")
    assert refused.value.code == "private_address"


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "2002:808:808::1"])
def test_ipv6_forms_of_a_public_ipv4_address_pass(
    production: None, monkeypatch: pytest.MonkeyPatch, address: str
) -> None:
    """What DNS64 answers for an IPv4-only chat service to a worker on an IPv6-only network."""
    _resolves_to(monkeypatch, address)
    assert validate_webhook_url("https://hooks.example.com/hook")


def test_one_private_address_among_public_ones_is_enough_to_refuse(
    production: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    _resolves_to(monkeypatch, "8.8.8.8", "10.0.0.5")
    with pytest.raises(ValidationError):
        validate_webhook_url("https://mixed.example.com/hook")


def test_a_public_https_url_passes(production: None, monkeypatch: pytest.MonkeyPatch) -> None:
    _resolves_to(monkeypatch, "203.0.114.7", "8.8.4.4")
    url = "https://oapi.dingtalk.com/robot/send?access_token=abc"
    assert validate_webhook_url(f"  {url} ") == url


def test_an_unresolvable_host_is_refused(production: None, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise OSError("no such host")

    monkeypatch.setattr(webhook_urls.socket, "getaddrinfo", fail)
    with pytest.raises(ValidationError, match="cannot be resolved"):
        validate_webhook_url("https://nowhere.invalid/hook")


def test_a_resolver_that_does_not_answer_now_is_a_refusal_worth_trying_again(
    production: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(webhook_urls.socket, "getaddrinfo", fail)
    with pytest.raises(ValidationError, match="try again") as refused:
        validate_webhook_url("https://hooks.example.com/hook")
    assert refused.value.code == webhook_urls.RESOLVER_UNANSWERED


def test_a_name_that_does_not_exist_is_unresolvable(
    production: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(webhook_urls.socket, "getaddrinfo", fail)
    with pytest.raises(ValidationError, match="cannot be resolved") as refused:
        validate_webhook_url("https://nowhere.example.com/hook")
    assert refused.value.code == "unresolvable"


def test_loopback_http_is_allowed_only_when_embedded_or_debug(settings: Any) -> None:
    settings.DEBUG = False
    settings.PORTAL_EMBEDDED = True
    assert validate_webhook_url("http://127.0.0.1:8000/dev/webhooks/receive/x/")


@pytest.mark.parametrize(
    "secret", ["short", "has space inside", "tab\tinside", "é" * 10, "x" * 257]
)
def test_signing_secrets_with_bad_characters_are_refused(secret: str) -> None:
    with pytest.raises(ValidationError):
        validate_signing_secret(secret)


def test_a_printable_secret_passes_and_none_is_fine() -> None:
    assert validate_signing_secret("SEC0123456789abcdef") == "SEC0123456789abcdef"
    assert validate_signing_secret("") == ""


def test_the_hint_keeps_scheme_and_host_only() -> None:
    hint = webhook_urls.url_hint("https://hooks.slack.com/services/T000/B000/XXXXSECRET")
    assert hint == "https://hooks.slack.com/…" and "XXXX" not in hint


@pytest.fixture
def tls_receiver(tmp_path: Path) -> Iterator[tuple[int, Path, list[str]]]:
    """An HTTPS receiver on 127.0.0.2 whose certificate names hooks.example.com (and loopback,
    but not 127.0.0.2): its port, the certificate to trust, and the server names clients sent."""
    certificate, key = ensure_certificate(tmp_path, "hooks.example.com")
    context = server_context(certificate, key)
    server_names: list[str] = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(str(name))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.2", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_port, certificate, server_names
    finally:
        server.shutdown()
        server.server_close()


def test_a_pinned_connection_checks_the_certificate_for_the_host_name_not_the_address(
    tls_receiver: tuple[int, Path, list[str]],
) -> None:
    port, certificate, server_names = tls_receiver
    request = requests.Request("POST", f"https://hooks.example.com:{port}/hook", data=b"{}")
    prepared = request.prepare()
    adapter = webhook_urls._PinnedAdapter(host="hooks.example.com", address="127.0.0.2")
    try:
        answer = adapter.send(prepared, verify=str(certificate), timeout=5)
    finally:
        adapter.close()
    assert answer.status_code == 200
    assert server_names == ["hooks.example.com"]

    impostor = webhook_urls._PinnedAdapter(host="other.example.com", address="127.0.0.2")
    prepared = requests.Request("POST", f"https://other.example.com:{port}/hook").prepare()
    try:
        with pytest.raises(requests.exceptions.SSLError):
            impostor.send(prepared, verify=str(certificate), timeout=5)
    finally:
        impostor.close()


@pytest.fixture
def connect_proxy() -> Iterator[tuple[int, list[str]]]:
    """An egress proxy on 127.0.0.1 that tunnels CONNECT requests: its port, and the request
    line and Proxy-Authorization of each tunnel it opened."""
    seen: list[str] = []

    class Tunnel(socketserver.BaseRequestHandler):
        def handle(self) -> None:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = self.request.recv(4096)
                if not chunk:
                    return
                head += chunk
            lines = head.split(b"\r\n\r\n", 1)[0].decode().split("\r\n")
            seen.append(lines[0])
            seen.extend(
                line for line in lines[1:] if line.lower().startswith("proxy-authorization")
            )
            host, _, port = lines[0].split()[1].rpartition(":")
            with socket.create_connection((host, int(port)), timeout=5) as upstream:
                self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                sockets = [self.request, upstream]
                while True:
                    readable, _w, _x = select.select(sockets, [], [], 5)
                    if not readable:
                        return
                    for source in readable:
                        data = source.recv(65536)
                        if not data:
                            return
                        (upstream if source is self.request else self.request).sendall(data)

    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_with_an_egress_proxy_a_post_tunnels_to_the_checked_address_not_the_name(
    tls_receiver: tuple[int, Path, list[str]],
    connect_proxy: tuple[int, list[str]],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, certificate, server_names = tls_receiver
    proxy_port, seen = connect_proxy
    settings.PORTAL_EMBEDDED = True  # the receiver is on loopback
    settings.PORTAL_WEBHOOK_PROXY = f"http://relay:s3cret@127.0.0.1:{proxy_port}"
    _resolves_to(monkeypatch, "127.0.0.2", only_host="hooks.example.com")
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", str(certificate))

    answer = webhook_urls.webhook_post(
        url=f"https://hooks.example.com:{port}/hook", body=b"{}", headers={}, timeout=(5, 5)
    )

    assert answer.status_code == 200 and answer.content == b"ok"
    # The proxy was asked for the address the guard checked, so it resolved nothing itself;
    # TLS inside the tunnel still named (and verified) the host.
    assert seen[0].startswith(f"CONNECT 127.0.0.2:{port} HTTP/")
    assert seen[1].lower().startswith("proxy-authorization: basic ")
    assert server_names == ["hooks.example.com"]


def test_without_the_setting_a_post_ignores_https_proxy_from_the_environment(
    tls_receiver: tuple[int, Path, list[str]],
    connect_proxy: tuple[int, list[str]],
    settings: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    port, certificate, _names = tls_receiver
    proxy_port, seen = connect_proxy
    settings.PORTAL_EMBEDDED = True  # the receiver is on loopback
    settings.PORTAL_WEBHOOK_PROXY = ""
    monkeypatch.setenv("HTTPS_PROXY", f"http://127.0.0.1:{proxy_port}")
    _resolves_to(monkeypatch, "127.0.0.2", only_host="hooks.example.com")
    monkeypatch.setattr(requests.adapters, "DEFAULT_CA_BUNDLE_PATH", str(certificate))

    answer = webhook_urls.webhook_post(
        url=f"https://hooks.example.com:{port}/hook", body=b"{}", headers={}, timeout=(5, 5)
    )

    assert answer.status_code == 200
    assert seen == []
