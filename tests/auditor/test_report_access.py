"""The access report: who could act in account X (optionally role R) between two dates."""

import datetime as dt
import re
from types import SimpleNamespace

import pytest

from auditor.reports import AccessFold, DelegationFacts, report_rows
from delegations.lifecycle.drift import drift_record
from delegations.models import DriftFinding
from tests.audit.history import (  # noqa: F401
    History,
    active_history_fixture,
    history_fixture,
    record_staff_events,
)

pytestmark = pytest.mark.django_db

URL = "/audit/access/"
T0 = dt.datetime(2026, 3, 1, 9, 0, tzinfo=dt.UTC)
B = "acs:ram::12345678:root"


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


FACTS = DelegationFacts(
    delegation_id="d1",
    partner_name="Company B",
    partner_account_uid="12345678",
    principal=B,
    role_name="ecs-admin",
    account_uid="11223344",
    max_session_seconds=3600,
)


def ev(hours: float, action: str, *, actor: str = "", outcome: str = "success", **data):
    return SimpleNamespace(
        occurred_at=at(hours),
        action=action,
        outcome=outcome,
        actor_id=None,
        actor_label=actor,
        actor_organisation_label="",
        target_type="delegations.delegation",
        target_id="d1",
        target_label="ecs-admin for Company B",
        before=None,
        after=data.pop("after", None),
        metadata=data,
    )


def fold(*events):
    folding = AccessFold([FACTS])
    for event in events:
        folding.feed(event, ["d1"])
    return folding.states.values()


LIFECYCLE = [
    ev(0, "delegation.approved", actor="Ada <ada@a.example>", with_mfa=True),
    ev(0.1, "cloud.call_result", cloud_action="UpdateRole", request={"principals_added": [B]}),
    ev(0.2, "delegation.activated"),
    ev(10, "delegation.revoke_requested", actor="Ada <ada@a.example>"),
    ev(10.1, "cloud.call_result", cloud_action="UpdateRole", request={"principals_removed": [B]}),
    ev(10.2, "delegation.revoked"),
]


# --- the fold --------------------------------------------------------------------------------


def test_a_partner_account_could_act_from_the_cloud_change_to_its_removal():
    [row] = report_rows(fold(*LIFECYCLE), since=at(-24), until=at(24), now=at(30))
    assert row.kind == "account"
    assert (row.access_from, row.access_until) == (at(0.1), at(10.1))
    assert row.approved_by == "Ada <ada@a.example>" and row.approved_with_mfa is True
    assert row.ended_how == "revoked by Ada <ada@a.example>"
    assert row.worst_case_until == at(11.1)  # plus the role's maximum session
    assert [s.kind for s in row.segments] == ["access", "residual"]


def test_still_active_access_has_no_end_and_runs_until_the_report_ran():
    [row] = report_rows(fold(*LIFECYCLE[:3]), since=at(0), until=at(10), now=at(5))
    assert row.access_until is None and row.worst_case_until is None
    [segment] = row.segments
    assert (segment.start, segment.end, segment.left, segment.width) == (at(0.1), at(5), 1.0, 49.0)


def test_a_deleted_role_ends_the_trust():
    events = [*LIFECYCLE[:3], ev(5, "cloud.call_result", cloud_action="DeleteRole")]
    [row] = report_rows(fold(*events), since=at(0), until=at(24), now=at(24))
    assert row.access_until == at(5)


def test_failed_calls_and_refused_attempts_grant_nothing():
    events = [
        ev(1, "cloud.call_result", outcome="failure", request={"principals_added": [B]}),
        ev(2, "delegation.approve_denied", outcome="denied", actor="Mallory"),
    ]
    assert report_rows(fold(*events), since=at(0), until=at(24), now=at(24)) == []


def test_access_outside_the_window_is_not_listed_but_the_residual_window_counts():
    assert report_rows(fold(*LIFECYCLE), since=at(12), until=at(24), now=at(30)) == []
    [row] = report_rows(fold(*LIFECYCLE), since=at(10.5), until=at(24), now=at(30))
    assert [s.kind for s in row.segments] == ["residual"]


def test_a_revoked_principal_back_in_the_trust_policy_reopens_access():
    events = [
        *LIFECYCLE,
        ev(20, "drift.detected", kind=DriftFinding.Kind.REVOKED_PRINCIPAL_BACK, subject=B),
    ]
    [row] = report_rows(fold(*events), since=at(19), until=at(24), now=at(30))
    assert row.access_until is None
    assert "found back in the trust policy" in row.notes[0]


def test_people_could_act_while_assigned_and_until_their_credentials_expired():
    events = [
        *LIFECYCLE[:3],
        ev(
            1,
            "staff.assigned",
            actor="Bea <admin@b.example>",
            person="alice",
            person_id=7,
        ),
        ev(
            2,
            "credentials.issued",
            actor="Alice",
            person="alice",
            person_id=7,
            session_name="alice@company-b",
            expiration=at(9.5).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
        ev(3, "staff.assigned", person="bob", person_id=8),
        ev(4, "staff.unassigned", person="bob", person_id=8),
        ev(
            9,
            "credentials.issued",
            person="alice",
            person_id=7,
            expiration=at(12).strftime("%Y-%m-%dT%H:%M:%SZ"),
        ),
        *LIFECYCLE[3:],
    ]
    rows = report_rows(fold(*events), since=at(0), until=at(24), now=at(30))
    assert [r.kind for r in rows] == ["account", "person", "person"]
    account, alice, bob = rows
    assert account.residual_until == at(12) and account.worst_case_until == at(12)
    assert (alice.who, alice.access_from, alice.access_until) == ("alice", at(1), at(10.1))
    assert alice.residual_until == at(12) and alice.credentials == 2
    assert "sessions alice@company-b" in alice.detail and "assigned by Bea" in alice.detail
    assert (bob.access_from, bob.access_until, bob.credentials) == (at(3), at(4), 0)


def test_a_credential_issued_without_assignment_still_counts():
    events = [
        *LIFECYCLE[:3],
        ev(
            2, "credentials.issued", person="carol", expiration=at(3).strftime("%Y-%m-%dT%H:%M:%SZ")
        ),
    ]
    rows = report_rows(fold(*events), since=at(0), until=at(24), now=at(5))
    carol = rows[1]
    assert (carol.who, carol.access_from, carol.access_until, carol.residual_until) == (
        "carol",
        at(2),
        None,
        at(3),
    )


# --- the page --------------------------------------------------------------------------------


def report_params(history: History, **extra) -> dict:
    today = dt.datetime.now(dt.UTC).date()
    return {
        "account": history.owner.account_uid,
        "since": (today - dt.timedelta(days=7)).isoformat(),
        "until": today.isoformat(),
        **extra,
    }


def test_the_auditor_finds_who_could_act_in_the_account_last_week(history: History):
    client = history.client(history.auditor)
    form = client.get(URL)
    assert form.status_code == 200 and 'data-testid="report"' not in form.content.decode()
    response = client.get(URL, report_params(history))
    assert response.status_code == 200
    body = response.content.decode()
    assert "Company B (account 12345678)" in body
    assert history.owner_admin.email in body and "MFA" in body
    assert 'data-testid="no-person-data"' in body
    assert re.search(r'class="tbar tbar-access" style="left: [0-9.]+%; width: [0-9.]+%"', body)
    assert f"/audit/delegations/{history.delegation.pk}/" in body
    assert "Delta Foreign" not in body


def test_people_appear_once_their_assignment_and_credentials_are_recorded(active_history):
    record_staff_events(active_history, person=active_history.partner_staff)
    active_history.end()
    body = active_history.client(active_history.auditor).get(URL, report_params(active_history))
    text = body.content.decode()
    assert 'data-kind="person"' in text and "alice@b.example" in text
    assert "alice@company-b" in text and 'data-testid="no-person-data"' not in text


def test_a_role_narrows_the_report(history: History):
    from tests.delegations.factories import CatalogRoleFactory

    other = CatalogRoleFactory(
        cloud_account=history.delegation.catalog_role.cloud_account, role_name="ecs-viewer"
    )
    client = history.client(history.auditor)
    narrowed = client.get(URL, report_params(history, role=other.pk)).content.decode()
    assert 'data-testid="nobody"' in narrowed
    same = client.get(URL, report_params(history, role=history.delegation.catalog_role_id))
    assert "Company B (account 12345678)" in same.content.decode()


def test_a_window_before_anything_happened_lists_nobody(history: History):
    response = history.client(history.auditor).get(
        URL, report_params(history, since="2020-01-01", until="2020-01-31")
    )
    assert 'data-testid="nobody"' in response.content.decode()


@pytest.mark.parametrize(
    "override, message",
    [
        ({"account": "5566778899001122"}, "Select a valid choice"),
        ({"account": "'; DROP TABLE audit_auditevent; --"}, "Select a valid choice"),
        ({"since": "last week"}, "Use a date like"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "The end must be after the beginning"),
        ({"since": "1900-01-01", "until": "2026-01-01"}, "at most ten years"),
        ({"role": "not-a-role"}, "Select a valid choice"),
        ({"until": "9" * 10_000_000}, "longer than 500 characters"),
    ],
)
def test_bad_report_input_gets_a_clear_message(history: History, override, message):
    response = history.client(history.auditor).get(URL, report_params(history, **override))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert "Cobalt" not in response.content.decode()


def test_a_role_of_another_account_is_refused(history: History):
    from tests.delegations.factories import CatalogRoleFactory, CloudAccountFactory

    second = CloudAccountFactory(
        organisation=history.owner, account_uid="31415926", is_active=False
    )
    elsewhere = CatalogRoleFactory(cloud_account=second, role_name="other-account-role")
    response = history.client(history.auditor).get(URL, report_params(history, role=elsewhere.pk))
    assert response.status_code == 400
    assert "This role is not in the chosen account" in response.content.decode()


def test_the_accounts_are_offered_primary_first_by_their_names(history: History):
    """As the owner's other pages list them: a second account, whatever its UID or name,
    comes after the primary, which is the report's default."""
    from tests.delegations.factories import CloudAccountFactory

    primary = history.delegation.managed_role.cloud_account
    CloudAccountFactory(
        organisation=history.owner,
        account_uid="10000001",
        alias="",
        name="staging",
        is_primary=False,
    )
    form = history.client(history.auditor).get(URL).context["form"]
    assert list(form.fields["account"].choices) == [
        (primary.account_uid, primary.label),
        ("10000001", "staging (10000001)"),
    ]
    assert form.initial["account"] == primary.account_uid


def test_the_partner_admin_reports_on_the_owners_account_it_holds_access_in(history: History):
    client = history.client(history.partner_admin)
    response = client.get(URL, report_params(history))
    assert response.status_code == 200
    assert "Company B (account 12345678)" in response.content.decode()
    foreign = client.get(URL, report_params(history, account=history.foreign_owner.account_uid))
    assert foreign.status_code == 400


def test_roles_and_methods(history: History):
    assert history.client(history.partner_staff).get(URL).status_code == 403
    assert history.client(history.owner_admin).post(URL).status_code == 405
    assert history.client(history.auditor).post(URL).status_code == 403


def test_drift_that_brings_a_revoked_partner_back_shows_in_the_report(history: History):
    drift_record(
        managed_role=history.delegation.managed_role,
        kind=DriftFinding.Kind.REVOKED_PRINCIPAL_BACK,
        subject=history.delegation.principal_arn,
    )
    body = history.client(history.auditor).get(URL, report_params(history)).content.decode()
    assert "found back in the trust policy" in body
    assert "still able" in body


def test_the_bars_name_their_kind_in_the_readers_language(history: History):
    client = history.client(history.auditor)
    english = client.get(URL, report_params(history)).content.decode()
    assert re.search(r'class="tbar tbar-access"[^>]*title="could act: ', english)
    chinese = client.get(URL, report_params(history), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert re.search(r'class="tbar tbar-access"[^>]*title="可操作: ', chinese.content.decode())
