"""The auditor in Chromium: filter the history → open the delegation's timeline → run the
access report → download it (the file is parsed) → verify the record, then see verification
name the row someone edited in the database.

The history is real: company A's owner offered `ecs-admin` to company B with MFA, the worker
applied it in cloudsim, B's admin assigned Alice who took credentials, and A revoked it.
Screenshots land in `test-artifacts/audit/`.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from accounts.models import User
from audit import verification
from audit.models import AuditEvent
from audit.tasks import audit_verify_chain
from audit.verify_export import verify_export_text
from tests.audit import tampering
from tests.audit.history import History, build_history, record_staff_events
from tests.fixtures.browser import save_screenshot
from tests.fixtures.worker import OwnerWorld

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "audit"
WAIT_MS = 15_000


@pytest.fixture
def browser_context_options() -> dict[str, Any]:
    return {"viewport": {"width": 1360, "height": 900}, "accept_downloads": True}


def shot(page: Any, name: str) -> None:
    save_screenshot(page, ARTIFACTS / f"{name}.png")


@pytest.fixture
def story(owner_world_tx: OwnerWorld) -> History:
    history = build_history(owner_world_tx, end=False)
    record_staff_events(history, person=history.partner_staff)
    history.end()
    return history


def test_the_auditor_answers_who_could_act_and_proves_the_record(
    signed_in_page: Callable[[User], Any],
    live_server: Any,
    story: History,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Verifications are captured instead of published; `work` plays the worker.
    published: list[str] = []
    monkeypatch.setattr(
        verification,
        "verification_publish",
        lambda *, verification_id: published.append(verification_id) or True,
    )
    page = signed_in_page(story.auditor)
    page.set_default_timeout(WAIT_MS)

    # 1. The history, then only company B's delegation events.
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="History", exact=True).first.click()
    page.wait_for_selector('[data-testid="events"]')
    shot(page, "01-history")
    page.select_option("#id_partner", label="Company B")
    page.fill("#id_action", "delegation.")
    page.get_by_test_id("apply-filters").click()
    page.wait_for_url("**/audit/?*partner=*")
    actions = page.locator('[data-testid="events"] .action-name').all_inner_texts()
    assert actions and all(a.startswith("delegation.") for a in actions)
    assert any(a.startswith("delegation.offered ") for a in actions)
    shot(page, "02-history-filtered")

    # A cloud call reads as one row: its result, with when it was sent and answered.
    page.goto(f"{live_server.url}/audit/?action=cloud.call_")
    page.wait_for_selector('[data-testid="call-times"]')
    actions = page.locator('[data-testid="events"] .action-name').all_inner_texts()
    assert actions and not [a for a in actions if a.startswith("cloud.call_intent")]
    create = page.locator('[data-testid="call-times"]').first.inner_text()
    assert "Sent" in create and "answered" in create and "outcome ok" in create
    shot(page, "02-history-calls")
    page.go_back()
    page.wait_for_url("**/audit/?*partner=*")

    # 2. One event, then its delegation's timeline.
    offered = AuditEvent.objects.get(
        action="delegation.offered", target_id=str(story.delegation.pk)
    )
    page.locator(f'tr[data-sequence="{offered.sequence}"] a').first.click()
    page.get_by_role("link", name="Open this delegation's timeline →").click()
    page.wait_for_selector('[data-testid="timeline"]')
    approved = page.get_by_test_id("approved-by").inner_text()
    assert story.owner_admin.email in approved and "with two-factor authentication" in approved
    assert "Revoked" in page.get_by_test_id("ended").inner_text()
    residual = page.get_by_test_id("residual").inner_text()
    assert "credential" in residual
    timeline = page.get_by_test_id("timeline").inner_text()
    assert "Credentials issued to alice@b.example" in timeline
    assert "UpdateRole" in timeline or "CreateRole" in timeline
    shot(page, "03-timeline")

    # 3. Who could act in company A's account last week.
    page.get_by_role("link", name="Access report").click()
    page.select_option("#id_account", value=story.owner.account_uid)
    today = dt.datetime.now(dt.UTC).date()
    page.fill("#id_since", (today - dt.timedelta(days=7)).isoformat())
    page.fill("#id_until", today.isoformat())
    page.get_by_test_id("run-report").click()
    page.wait_for_selector('[data-testid="access-rows"]')
    rows = page.locator('[data-testid="access-rows"] tbody tr')
    assert rows.count() == 2
    assert "Company B (account 12345678)" in rows.nth(0).inner_text()
    assert "alice@b.example" in rows.nth(1).inner_text()
    assert page.locator(".tbar-access").count() >= 2
    # The last partner left, so the worker detached the role's policy and deleted it: Alice's
    # credential (valid for an hour) stopped working then, and nobody is "still able".
    assert "still able" not in page.get_by_test_id("access-rows").inner_text()
    assert "stopped working" in rows.nth(1).inner_text()
    shot(page, "04-access-report")

    # 4. The evidence, downloaded and read back.
    with page.expect_download() as csv_download:
        page.get_by_test_id("report-csv").click()
    path = ARTIFACTS / csv_download.value.suggested_filename
    csv_download.value.save_as(path)
    report = list(csv.DictReader(io.StringIO(path.read_text("utf-8-sig"))))
    assert [r["kind"] for r in report] == ["account", "person"]
    assert report[0]["approved_with_mfa"] == "yes"
    assert report[1]["who"] == "alice@b.example"
    assert report[1]["access_from"] < report[1]["stopped_at"] <= report[1]["access_until"]
    assert [r["still_able"] for r in report] == ["no", "no"]
    page.get_by_role("link", name="Events", exact=True).click()
    with page.expect_download() as json_download:
        page.get_by_test_id("export-json").click()
    exported = Path(json_download.value.path()).read_text("utf-8")
    events = json.loads(exported)
    # Every event the owner sees, but the export's own record, written after the last line.
    visible = AuditEvent.objects.visible_to(story.owner.pk).order_by("-sequence")
    assert len(events["events"]) == visible.count() - 1
    assert visible[0].action == "audit.exported"
    # The download checks out offline, by the stdlib-only verifier, as the auditor would, and
    # names that record as the one event to compare with the portal.
    summary = verify_export_text(exported)
    assert summary.events == len(events["events"])
    assert summary.recorded_sequence == visible[0].sequence

    # 5. The record verifies (in the worker, while the page refreshes itself); after a
    # direct edit, verification names the row.
    page.get_by_role("link", name="Verify the record").first.click()
    page.get_by_test_id("run-verify").click()
    page.wait_for_selector('[data-testid="verification-progress"][data-status="queued"]')
    shot(page, "05-verify-queued")
    work(published)
    page.wait_for_selector('[data-testid="verdict"]')
    assert page.get_by_test_id("verdict").get_attribute("data-ok") == "true"
    shot(page, "05-verify-intact")
    tampering.edit_column(offered.sequence, "actor_label", "Someone Else <x@example.com>")
    page.get_by_test_id("run-verify").click()
    page.wait_for_selector('[data-testid="verification-progress"]')
    work(published)
    page.wait_for_selector('[data-testid="verdict"][data-ok="false"]')
    assert page.get_by_test_id("verdict").get_attribute("data-first-bad") == str(offered.sequence)
    assert f"altered at sequence {offered.sequence}" in page.get_by_test_id("verdict").inner_text()
    runs = page.locator('[data-testid="verification-run"]')
    assert [runs.nth(i).get_attribute("data-status") for i in range(runs.count())] == [
        "broken",
        "intact",
    ]
    shot(page, "06-verify-tampered")


def work(published: list[str]) -> None:
    """The worker: run the verification the web server published, through Celery."""
    assert len(published) == 1, published
    audit_verify_chain.apply(args=[published.pop()], throw=True)
