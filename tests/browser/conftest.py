"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Every step saves a screenshot under test-artifacts/browser/<test>/ so a person can look at
what the browser saw.
"""

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture(scope="package")
def chromium(django_db_setup: None, live_server: object) -> Iterator[object]:
    """One headless Chromium for the browser tests.

    Depends on the test database and the live server so both exist before Playwright starts
    its event loop in this thread. While that loop runs, the tests (and pytest-django's
    flushes) use the ORM in the same thread, which Django allows only with
    DJANGO_ALLOW_ASYNC_UNSAFE; it is set for this package only, so it never leaks into later
    subprocesses such as the deploy check, which rightly refuses it.
    """
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Chromium is missing at {CHROMIUM}")
        pytest.skip(f"Chromium is not installed at {CHROMIUM}")
    from playwright.sync_api import sync_playwright

    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS
            )
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def new_page(chromium: object, live_server: object) -> Iterator[Callable[[], object]]:
    """`new_page()` opens a page in a fresh browser context (its own cookies: a separate
    person). All contexts are closed after the test."""
    contexts = []

    def make() -> object:
        context = chromium.new_context(  # type: ignore[attr-defined]
            base_url=live_server.url,  # type: ignore[attr-defined]
            viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[object, str], Path]:
    """`shot(page, "step name")` saves a full-page screenshot, numbered in step order."""
    folder = ARTIFACTS / re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    counter = {"n": 0}

    def take(page: object, step: str) -> Path:
        counter["n"] += 1
        path = folder / f"{counter['n']:02d}-{re.sub(r'[^a-z0-9]+', '-', step.lower())}.png"
        page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
        return path

    return take


def totp_code(secret: str) -> str:
    """The current RFC 6238 code, computed with allauth's own HOTP helpers. Waits out the last
    two seconds of a 30-second period so the code cannot expire between typing and checking."""
    from allauth.mfa.totp.internal.auth import (
        format_hotp_value,
        hotp_value,
        yield_hotp_counters_from_time,
    )

    if 30 - time.time() % 30 < 2:
        time.sleep(30 - time.time() % 30 + 0.1)
    counter = next(iter(yield_hotp_counters_from_time()))
    return format_hotp_value(hotp_value(secret, counter))
