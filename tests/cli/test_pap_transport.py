"""How pap talks to the portal, against scripted loopback servers: the token goes only over
https (plain http only to this computer), never along a redirect, and every answer that is not
what the portal sends (a proxy's page, a 429, a broken connection) is one line, no traceback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
from pap.client import Portal, retry_after_seconds
from pap.errors import PapError

from tests.cli.conftest import Answer, PapHome, StubServer, json_answer

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
    "portal", ["ftp://portal.example.test/", "http://127.0.0.1:port/", "http://[::1/", "https://"]
)
def test_a_url_that_is_not_http_is_refused(portal: str) -> None:
    with pytest.raises(PapError, match="not an http"):
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


# --- answers that are not the portal's: one line, never a traceback ----------------------------

NO_ACCESS, FORBIDDEN, UNREACHABLE = 4, 5, 6
PROXY_PAGE = b"<html><body>Sign in to the corporate proxy</body></html>"


@pytest.fixture
def stubbed(stub_server: Callable[[], StubServer], tmp_path: Path) -> tuple[StubServer, PapHome]:
    """A scripted portal and a pap signed in to it."""
    portal = stub_server()
    pap = PapHome(portal=portal.url, home=tmp_path, token=TOKEN)
    pap.sign_in()
    return portal, pap


@pytest.mark.parametrize(
    ("answer", "status", "said"),
    [
        pytest.param(
            (200, {"Content-Type": "text/html"}, PROXY_PAGE),
            UNREACHABLE,
            "answered with text/html, not JSON",
            id="a proxy's page",
        ),
        pytest.param(
            (200, {"Content-Type": "application/json", "Content-Length": "100"}, b'{"role": "st'),
            UNREACHABLE,
            "broke off its answer",
            id="an answer broken off midway",
        ),
        pytest.param(
            (502, {"Content-Type": "text/html"}, PROXY_PAGE),
            FAILED,
            "answered HTTP 502 (Bad Gateway)",
            id="a proxy's error page",
        ),
        pytest.param(
            (429, {"Retry-After": "45"}, PROXY_PAGE),
            FAILED,
            "try again in 45 seconds",
            id="a proxy's 429",
        ),
        pytest.param(
            json_answer({"detail": "No.\npap: a second line\x1b[2J"}, 403),
            FORBIDDEN,
            "No. pap: a second line [2J",
            id="a message with a newline and an escape sequence",
        ),
    ],
)
def test_an_answer_unlike_the_portal_s_is_one_clear_line(
    stubbed: tuple[StubServer, PapHome], answer: Answer, status: int, said: str
) -> None:
    portal, pap = stubbed
    portal.answer("/api/v1/me/", answer)
    result = pap.run("access")
    assert result.returncode == status
    assert said in one_clear_line(result)
    assert len(portal.received) == 1


@pytest.mark.parametrize(
    "me", [[], {"role": "auditor"}], ids=["a list for an object", "a page without results"]
)
def test_json_of_another_shape_is_one_clear_line(
    stubbed: tuple[StubServer, PapHome], me: object
) -> None:
    portal, pap = stubbed
    portal.answer("/api/v1/me/", json_answer(me))
    portal.answer("/api/v1/delegations/", json_answer({"count": 0}))
    result = pap.run("access")
    assert result.returncode == FAILED
    assert "PAP_DEBUG=1" in one_clear_line(result)
    # Asked for, the traceback is there to report.
    assert "Traceback" in pap.run("access", PAP_DEBUG="1").stderr


# --- 429: when to try again; a short wait is waited once ---------------------------------------


def test_a_429_from_the_portal_says_when_to_try_again(
    stubbed: tuple[StubServer, PapHome],
) -> None:
    portal, pap = stubbed
    problem = {
        "type": "/api/v1/problems/rate-limited",
        "title": "Too many requests",
        "status": 429,
        "detail": "Too many sign-ins started from here.",
    }
    portal.answer("/api/v1/device/code/", json_answer(problem, 429, **{"Retry-After": "120"}))
    result = pap.run("login", "--no-browser", "--portal", portal.url)
    assert result.returncode == FAILED
    err = one_clear_line(result)
    assert "Too many sign-ins started from here" in err and "try again in 2 minutes" in err
    assert len(portal.received) == 1


def test_a_short_retry_after_is_waited_once(stubbed: tuple[StubServer, PapHome]) -> None:
    portal, pap = stubbed
    throttled = json_answer({"detail": "Slow down."}, 429, **{"Retry-After": "1"})
    portal.answer("/api/v1/me/", throttled, json_answer({"role": "staff"}))
    portal.answer("/api/v1/access/", json_answer([]))
    result = pap.run("access")
    assert result.returncode == NO_ACCESS, result.stderr
    assert "no access assigned" in result.stdout
    asked = [request for request in portal.received if request.path == "/api/v1/me/"]
    assert len(asked) == 2
    assert asked[1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_second_429_is_not_waited_for(stubbed: tuple[StubServer, PapHome]) -> None:
    portal, pap = stubbed
    portal.answer("/api/v1/me/", json_answer({"detail": "Slow down."}, 429, **{"Retry-After": "1"}))
    result = pap.run("access")
    assert result.returncode == FAILED
    assert "try again in 1 second" in one_clear_line(result)
    assert len(portal.received) == 2


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("30", 30),
        (" 7 ", 7),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 30),
        ("Wed, 21 Oct 2015 07:00:00 GMT", 0),
        ("soon", None),
        ("-5", None),
        (None, None),
    ],
)
def test_retry_after_in_seconds_or_as_a_date(header: str | None, seconds: int | None) -> None:
    now = dt.datetime(2015, 10, 21, 7, 27, 30, tzinfo=dt.UTC)
    assert retry_after_seconds(header, now=now) == seconds
