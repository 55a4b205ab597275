"""`pap login` end to end: the CLI starts the device flow, a person confirms the code in a real
browser (re-entering their password, as the portal asks before letting a token act for
them), and the CLI stores a working token in a 0600 file."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
import time
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from api.models import ApiToken
from tests.cli.conftest import Pap
from tests.factories import DEFAULT_PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
CODE = re.compile(r"enter the code ([A-Z]{4}-[A-Z]{4})")


def _read_code(process: subprocess.Popen) -> str:
    deadline = time.monotonic() + 30
    seen = ""
    while time.monotonic() < deadline:
        line = process.stderr.readline()  # type: ignore[union-attr]
        seen += line
        match = CODE.search(seen)
        if match:
            return match.group(1)
    raise AssertionError(f"pap printed no code: {seen!r}")


def test_login_through_the_browser(pap: Pap, signed_in_page: Callable[[User], Page]) -> None:
    (pap.home / "pap" / "config.json").unlink()
    process = subprocess.Popen(
        [sys.executable, "-m", "pap", "login", "--no-browser", "--portal", pap.portal],
        env=pap.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        code = _read_code(process)
        page = signed_in_page(pap.world.alice)
        page.goto(pap.portal + "/account/device/")
        page.get_by_label("Code shown by pap").fill(code)
        page.get_by_role("button", name="Allow").click()
        # The portal asks the person to confirm who they are, then replays the approval.
        page.get_by_label("Password").fill(DEFAULT_PASSWORD)
        page.get_by_label("Password").press("Enter")
        expect(page.locator("[data-device-done='approved']")).to_be_visible()
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "Signed in" in out and "company-b" in out
    config = pap.home / "pap" / "config.json"
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    token = ApiToken.objects.get(user=pap.world.alice, created_via="device")
    assert sorted(token.scopes) == ["credentials", "read", "request"]
    access = pap.run("access", "--json")
    assert access.returncode == 0, access.stderr
    assert str(pap.delegation.pk) in access.stdout
