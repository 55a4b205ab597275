"""Playwright (sync API) driving Debian's Chromium against pytest-django's live server.

Every step saves a screenshot under test-artifacts/browser/<test>/ so a person can look at
what the browser saw.
"""

import re
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.fixtures.browser import save_screenshot

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


@pytest.fixture
def new_page(
    new_browser_context: Callable[..., object], live_server: object
) -> Callable[[], object]:
    """`new_page()` opens a page in a fresh browser context (its own cookies: a separate
    person), on the live server. The contexts are closed after the test (the `chromium`
    plugin, tests/fixtures/browser.py)."""

    def make() -> object:
        context = new_browser_context(
            base_url=live_server.url,  # type: ignore[attr-defined]
            viewport={"width": 1280, "height": 860},
        )
        context.set_default_timeout(15_000)  # type: ignore[attr-defined]
        return context.new_page()  # type: ignore[attr-defined]

    return make


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
        save_screenshot(page, path)  # type: ignore[arg-type]
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
