"""How pap talks to the portal, against scripted loopback servers: the token goes only over
https (plain http only to this computer), never along a redirect, and every answer that is not
what the portal sends (a proxy's page, a 429, a broken connection) is one line, no traceback."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pap.client import Portal
from pap.errors import PapError

from tests.cli.conftest import PapHome, StubServer, json_answer

TOKEN = "pap_0123abcd_" + "s" * 43
FAILED = 1


def one_clear_line(result: object) -> str:
    err = result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in err
    assert err.startswith("pap: ") and err.count("\n") == 1, err
    return err


# --- https only, except on this computer ------------------------------------------------------


@pytest.mark.parametrize(
    "portal",
    [
        "http://127.0.0.1:8000/",
        "http://localhost:8000",
        "http://LOCALHOST/",
        "http://127.8.9.10/",
        "http://[::1]:8000/",
        "https://portal.example.test/",
        "https://10.0.0.5:8443",
    ],
)
def test_https_or_a_portal_on_this_computer_is_accepted(portal: str) -> None:
    Portal(portal, TOKEN)


@pytest.mark.parametrize(
    "portal",
    [
        "http://portal.example.test/",
        "http://10.0.0.5:8000",
        "http://localhost.example.test/",
        "http://127.0.0.1.nip.io/",
        "http://localhost@portal.example.test/",
        "http://0.0.0.0:8000/",
    ],
)
def test_plain_http_elsewhere_is_refused(portal: str) -> None:
    with pytest.raises(PapError, match="https://"):
        Portal(portal, TOKEN)


@pytest.mark.parametrize(
    "command",
    [("access",), ("login", "--no-browser", "--portal", "http://portal.example.test/")],
)
def test_plain_http_is_refused_before_anything_is_sent(
    stub_server: Callable[[], StubServer], tmp_path: Path, command: tuple[str, ...]
) -> None:
    # Everything pap sends to a remote http:// portal goes through this proxy: whatever it
    # receives, anyone on the network path could have read.
    proxy = stub_server()
    pap = PapHome(portal="http://portal.example.test/", home=tmp_path, token=TOKEN)
    pap.sign_in()
    result = pap.run(*command, http_proxy=proxy.url, no_proxy="", NO_PROXY="")
    assert result.returncode == FAILED
    err = one_clear_line(result)
    assert "http://portal.example.test" in err and "https://" in err
    assert proxy.received == []


# --- redirects: never followed with the token -------------------------------------------------


@pytest.mark.parametrize(
    ("status", "where"),
    [
        *[(status, "another server") for status in (301, 302, 303, 307, 308)],
        (302, "the same server"),
        (307, "a relative path"),
    ],
)
def test_a_redirect_is_not_followed(
    stub_server: Callable[[], StubServer], tmp_path: Path, status: int, where: str
) -> None:
    portal, elsewhere = stub_server(), stub_server()
    elsewhere.answer("/api/v1/me/", json_answer({"role": "staff"}))
    target = elsewhere if where == "another server" else portal
    location = f"{target.url}/api/v1/me/"
    sent = "/api/v1/me/" if where == "a relative path" else location
    portal.answer("/api/v1/me/", (status, {"Location": sent}, b""))
    pap = PapHome(portal=portal.url, home=tmp_path, token=TOKEN)
    pap.sign_in()

    result = pap.run("access")

    assert result.returncode == FAILED
    err = one_clear_line(result)
    assert "redirect" in err and location in err
    assert elsewhere.received == []
    assert len(portal.received) == 1
    assert portal.received[0].headers["Authorization"] == f"Bearer {TOKEN}"
