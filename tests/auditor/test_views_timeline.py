"""A delegation's timeline: the whole story from the events, with the summary an auditor
looks for first (who approved, with MFA or not, when it ended, the residual window)."""

import datetime as dt
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audit.actions import AuditAction
from audit.models import AuditEvent
from auditor import views
from delegations.lifecycle.drift import drift_record
from delegations.lifecycle.starting import delegation_offer
from delegations.models import DriftFinding
from tests.audit.conftest import record
from tests.audit.history import (  # noqa: F401
    History,
    active_history_fixture,
    history_fixture,
    record_staff_events,
)

pytestmark = pytest.mark.django_db


def url(history: History, delegation=None) -> str:
    return f"/audit/delegations/{(delegation or history.delegation).pk}/"


def actions(response) -> list[str]:
    return re.findall(r'data-action="([a-z0-9_.]+)"', response.content.decode())


def section(body: str, testid: str) -> str:
    return re.split(r'<div class="card"|<section', body.split(f'data-testid="{testid}"')[1])[0]


def test_the_timeline_tells_the_whole_story_in_order(history: History):
    response = history.client(history.auditor).get(url(history))
    assert response.status_code == 200
    story = actions(response)
    lifecycle = [a for a in story if a.startswith("delegation.")]
    assert lifecycle == [
        "delegation.offered",
        "delegation.applying",
        "delegation.activated",
        "delegation.revoke_requested",
        "delegation.revoked",
    ]
    # A cloud call is one row: its result, with the intent's time and link.
    assert "cloud.call_intent" not in story and "cloud.call_result" in story
    body = response.content.decode()
    for intent in AuditEvent.objects.filter(action="cloud.call_intent", organisation=history.owner):
        assert f'/audit/events/{intent.sequence}/">#{intent.sequence}</a>) · <b>answered' in body
    shown = [int(s) for s in re.findall(r'data-sequence="(\d+)"', response.content.decode())]
    assert shown == sorted(shown)
    body = response.content.decode()
    for call in AuditEvent.objects.filter(
        action="cloud.call_result", target_type="delegations.cloudcall"
    ):
        if call.after["request_id"]:
            assert call.after["request_id"] in body
    assert "Foreign secret reason" not in body


def test_the_summary_names_the_approver_mfa_end_and_worst_case_residual(history: History):
    body = history.client(history.auditor).get(url(history)).content.decode()
    approved = section(body, "approved-by")
    assert history.owner_admin.email in approved
    assert "with two-factor authentication" in approved
    ended = section(body, "ended")
    assert "Revoked" in ended and history.owner_admin.email in ended
    revoked = AuditEvent.objects.get(
        action="delegation.revoked", target_id=str(history.delegation.pk)
    )
    assert revoked  # the last partner left, so the worker deleted the role first:
    stopped = AuditEvent.objects.get(
        action="cloud.call_result", metadata__cloud_action="DetachPolicyFromRole"
    )
    residual = section(body, "residual")
    instant = f'<time datetime="{stopped.occurred_at:%Y-%m-%dT%H:%M:%S}Z"'
    assert f"At worst until {instant}" in residual
    assert f"stopped working at {instant}" in residual
    assert f"{stopped.occurred_at:%Y-%m-%d %H:%M:%S}</time>" in residual
    assert "no portal credentials" in residual


def test_an_approval_without_mfa_says_so(active_history: History, settings):
    settings.PORTAL_REQUIRE_MFA = False
    partner = active_history.world.partner(name="Company E")
    delegation = delegation_offer(
        owner=active_history.owner,
        offered_by=active_history.owner_admin,
        partner=partner,
        catalog_role=active_history.delegation.catalog_role,
        reason="No MFA this time",
        ends_at=None,
        with_mfa=False,
    )
    body = active_history.client(active_history.auditor).get(url(active_history, delegation))
    assert "without two-factor authentication" in section(body.content.decode(), "approved-by")


def test_staff_assignments_and_credentials_appear_with_the_residual_window(active_history):
    record_staff_events(
        active_history,
        person=active_history.partner_staff,
        credential_lifetime=dt.timedelta(hours=3),
    )
    active_history.end()
    response = active_history.client(active_history.auditor).get(url(active_history))
    body = response.content.decode()
    assert "staff.assigned" in actions(response)
    assert "alice@b.example assigned to this access by" in body
    assert "Credentials issued to alice@b.example" in body
    assert "alice@company-b" in body and "STS.NTESTACCESSKEYID" in body
    issued = AuditEvent.objects.get(action="credentials.issued")
    residual = section(body, "residual")
    # The credential would last three hours, but the last partner left, so the worker
    # deleted the role: nothing of it works after that.
    stopped = AuditEvent.objects.get(
        action="cloud.call_result", metadata__cloud_action="DetachPolicyFromRole"
    )
    assert issued.metadata["expiration"][:16] > f"{stopped.occurred_at:%Y-%m-%dT%H:%M}"
    assert f'until <time datetime="{stopped.occurred_at:%Y-%m-%dT%H:%M:%S}Z"' in residual
    assert f"{stopped.occurred_at:%Y-%m-%d %H:%M}</time>" in residual
    assert "when the role stopped working; 1 credential issued through the portal" in residual
    assert "detached, then it was deleted" in residual


def test_events_of_objects_pointing_at_the_delegation_join_its_timeline(active_history):
    call = active_history.delegation.cloud_calls.order_by("id").first()
    event = record(
        action=AuditAction.CLOUD_CALL_RESULT,
        organisation=active_history.owner,
        target=call,
        metadata={"request_id": "LINKED-BY-CALL"},
    )
    body = active_history.client(active_history.auditor).get(url(active_history)).content.decode()
    assert f'data-sequence="{event.sequence}"' in body and "LINKED-BY-CALL" in body


def test_drift_on_the_delegations_principal_is_part_of_its_story(history: History):
    finding = drift_record(
        managed_role=history.delegation.managed_role,
        kind=DriftFinding.Kind.REVOKED_PRINCIPAL_BACK,
        subject=history.delegation.principal_arn,
    )
    other = drift_record(
        managed_role=history.delegation.managed_role,
        kind=DriftFinding.Kind.MANAGED_PRINCIPAL_MISSING,
        subject="acs:ram::99999999:root",
    )
    response = history.client(history.auditor).get(url(history))
    story = actions(response)
    assert "drift.detected" in story
    body = response.content.decode()
    assert f'data-sequence="{_event_of(finding).sequence}"' in body
    assert f'data-sequence="{_event_of(other).sequence}"' not in body


def _event_of(finding) -> AuditEvent:
    return AuditEvent.objects.get(target_type="delegations.driftfinding", target_id=str(finding.pk))


def test_long_timelines_page_forward_with_constant_queries(
    history: History, monkeypatch, django_assert_max_num_queries
):
    monkeypatch.setattr(views, "TIMELINE_PAGE_SIZE", 5)
    client = history.client(history.auditor)
    client.get(url(history))
    with CaptureQueriesContext(connection) as first:
        response = client.get(url(history))
    seen = [int(s) for s in re.findall(r'data-sequence="(\d+)"', response.content.decode())]
    while True:
        match = re.search(r'\?after=(\d+)" data-testid="later"', response.content.decode())
        if not match:
            break
        with django_assert_max_num_queries(len(first.captured_queries)):
            response = client.get(url(history), {"after": match.group(1)})
        seen += [int(s) for s in re.findall(r'data-sequence="(\d+)"', response.content.decode())]
    everything = history.client(history.auditor).get(
        "/audit/events/export.json", {"delegation": history.delegation.pk}
    )
    assert len(seen) == len(set(seen)) > 10
    assert everything.status_code == 200


@pytest.mark.parametrize("after", ["abc", "-1", str(2**64), "1e3"])
def test_a_bad_cursor_is_a_400_with_a_way_back(history: History, after):
    response = history.client(history.auditor).get(url(history), {"after": after})
    assert response.status_code == 400
    assert "This page link is not valid" in response.content.decode()


def test_the_partner_admin_sees_the_partners_side(history: History):
    response = history.client(history.partner_admin).get(url(history))
    assert response.status_code == 200
    story = actions(response)
    assert "delegation.offered" in story and "delegation.revoked" in story
    partner_visible = set(
        AuditEvent.objects.visible_to(history.partner.pk).values_list("sequence", flat=True)
    )
    shown = {int(s) for s in re.findall(r'data-sequence="(\d+)"', response.content.decode())}
    assert shown <= partner_visible


def test_another_organisations_delegation_is_404(history: History):
    client = history.client(history.auditor)
    assert client.get(url(history, history.foreign_delegation)).status_code == 404
    assert client.get("/audit/delegations/00000000-0000-0000-0000-000000000000/").status_code == 404
    foreign_admin = history.client(history.foreign_admin)
    assert foreign_admin.get(url(history)).status_code == 404


def test_roles_and_methods(history: History):
    assert history.client(history.partner_staff).get(url(history)).status_code == 403
    assert history.client(history.owner_admin).get(url(history)).status_code == 200
    assert history.client(history.owner_admin).post(url(history)).status_code == 405
    assert history.client(history.auditor).post(url(history)).status_code == 403


def test_the_delegation_page_links_to_its_timeline(history: History):
    body = history.client(history.auditor).get(f"/delegations/{history.delegation.pk}/")
    assert url(history) in body.content.decode()
