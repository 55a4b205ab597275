"""A delegation's Activity page and its exports: who may read it, filters, paging, bad input."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from activity.services import activity_ingest_account
from auditor import activity_views
from cloud.errors import CloudError
from delegations.models import CredentialIssuance
from tests.activity.conftest import FakeTrail, event, grant  # noqa: F401
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def ingested(grant):  # noqa: F811
    other = UserFactory(email="bob@company-b.example")
    issuance = CredentialIssuance.objects.get(access_key_id="STS.issued-alice")
    CredentialIssuance.objects.create(
        delegation=grant.delegation,
        assignment=issuance.assignment,
        user=other,
        partner=issuance.partner,
        session_name="bob@company-b",
        access_key_id="STS.issued-bob",
        expiration=issuance.expiration,
        duration_seconds=3600,
    )
    pages = [
        [
            event(1, name="DescribeInstances"),
            event(2, name="StopInstance", rw="Write"),
            event(3, name="ListRoles", error="NoPermission"),
            event(4, name="DescribeInstances", session="bob@company-b", key="STS.issued-bob"),
        ]
    ]
    activity_ingest_account(cloud_account=grant.cloud_account, client=FakeTrail(pages=pages))
    return grant


def url(world, suffix=""):
    return f"/audit/delegations/{world.delegation.pk}/activity/{suffix}"


def shown_ids(response) -> list[str]:
    return re.findall(r'data-event-id="([^"]+)"', response.content.decode())


def test_owner_admin_and_auditor_see_every_call_newest_first(ingested, login, owner_admin, auditor):
    for reader in (owner_admin, auditor):
        response = login(reader).get(url(ingested))
        assert response.status_code == 200
        assert shown_ids(response) == ["evt-1", "evt-2", "evt-3", "evt-4"]
        body = response.content.decode()
        assert ingested.staff.email in body and "bob@company-b.example" in body
        assert 'data-testid="activity-chart"' in body
        assert "ecs:StopInstance" in body


def test_partner_and_foreign_organisations_get_404(
    ingested, login, partner_admin, foreign_owner_admin
):
    for outsider in (partner_admin, foreign_owner_admin):
        client = login(outsider)
        for suffix in ("", "export.csv", "export.json"):
            assert client.get(url(ingested, suffix)).status_code == 404


def test_partner_staff_is_refused(ingested, login, partner_staff):
    assert login(partner_staff).get(url(ingested)).status_code == 403


def test_only_get(ingested, login, owner_admin):
    assert login(owner_admin).post(url(ingested)).status_code == 405


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rw=Write", ["evt-2"]),
        ("outcome=denied", ["evt-3"]),
        ("action=DescribeInstances", ["evt-1", "evt-4"]),
        ("person=bob%40company-b.example", ["evt-4"]),
        ("q=ListRoles", ["evt-3"]),
        ("alerts=1", ["evt-3"]),
        ("since=2000-01-01&until=2001-01-01", []),
    ],
)
def test_filters(ingested, login, owner_admin, query, expected):
    response = login(owner_admin).get(url(ingested) + "?" + query)
    assert response.status_code == 200
    assert shown_ids(response) == expected


@pytest.mark.parametrize(
    "query",
    [
        "rw=Delete",
        "since=yesterday",
        "person=nobody",
        "after=garbage",
        "after=2026-12-01T00:00:00%2B00:00|%C2%B2",
        "q=" + "x" * 600,
    ],
)
def test_bad_filters_are_a_400_with_a_message(ingested, login, owner_admin, query):
    response = login(owner_admin).get(url(ingested) + "?" + query)
    assert response.status_code == 400
    assert 'data-event-id="' not in response.content.decode()


def test_paging_walks_every_call_once(ingested, login, owner_admin, monkeypatch):
    monkeypatch.setattr(activity_views, "PAGE_SIZE", 3)
    client = login(owner_admin)
    first = client.get(url(ingested))
    assert shown_ids(first) == ["evt-1", "evt-2", "evt-3"]
    older = re.search(r'href="\?(after=[^"]+)" rel="next"', first.content.decode()).group(1)
    second = client.get(url(ingested) + "?" + older.replace("&amp;", "&"))
    assert shown_ids(second) == ["evt-4"]


def test_exports_follow_the_filters(ingested, login, owner_admin):
    client = login(owner_admin)
    response = client.get(url(ingested, "export.csv") + "?action=DescribeInstances")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(
        csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig")))
    )
    assert [r["event_id"] for r in rows] == ["evt-1", "evt-4"]
    assert rows[1]["person"] == "bob@company-b.example"
    assert "event" not in rows[0]
    response = client.get(url(ingested, "export.json"))
    document = json.loads(b"".join(response.streaming_content))
    assert document["export"]["delegation_id"] == str(ingested.delegation.pk)
    # The filters are named as the audit log's export names them: an object, not a query.
    assert document["export"]["filters"] == {}
    filtered = client.get(url(ingested, "export.json") + "?action=DescribeInstances")
    assert json.loads(b"".join(filtered.streaming_content))["export"]["filters"] == {
        "action": "DescribeInstances"
    }
    assert [e["event_id"] for e in document["events"]] == ["evt-1", "evt-2", "evt-3", "evt-4"]
    assert document["events"][2]["outcome"] == "denied"
    # The JSON export carries each whole event too, as ActionTrail reported it.
    denied = document["events"][2]["event"]
    assert denied["eventId"] == "evt-3" and denied["errorCode"] == "NoPermission"
    assert denied["userIdentity"]["accessKeyId"] == "STS.issued-alice"


def test_exports_name_the_owners_account_the_calls_were_made_in(ingested, login, owner_admin):
    """A fleet's role has one name in each of the owner's accounts: a file read away from the
    portal says which account's calls it holds."""
    client = login(owner_admin)
    uid = ingested.delegation.managed_role.cloud_account.account_uid
    for suffix in ("export.csv", "export.json"):
        response = client.get(url(ingested, suffix))
        assert f"-{uid}-" in response["Content-Disposition"]
    document = json.loads(b"".join(client.get(url(ingested, "export.json")).streaming_content))
    assert document["export"]["account_uid"] == uid


def test_right_sizing_lists_the_used_actions_and_a_narrower_policy(ingested, login, owner_admin):
    body = login(owner_admin).get(url(ingested)).content.decode()
    used = re.findall(r'data-testid="used-action">([^<]+)<', body)
    assert used == ["ecs:DescribeInstances", "ecs:StopInstance"]  # not the denied ListRoles
    assert "AliyunECSFullAccess" in body


def test_the_page_says_when_ingestion_is_blocked(grant, login, owner_admin):  # noqa: F811
    refused = CloudError(code="NoPermission", message="no", action="LookupEvents", http_status=403)
    activity_ingest_account(
        cloud_account=grant.cloud_account, client=FakeTrail(pages=[[]], failures={1: refused})
    )
    body = login(owner_admin).get(url(grant)).content.decode()
    assert "actiontrail:LookupEvents" in body


def test_the_delegation_pages_link_to_activity_for_the_owner_only(
    ingested, login, owner_admin, partner_admin
):
    link = f'href="/audit/delegations/{ingested.delegation.pk}/activity/"'
    detail = f"/delegations/{ingested.delegation.pk}/"
    timeline = f"/audit/delegations/{ingested.delegation.pk}/"
    for page in (detail, timeline):
        assert link in login(owner_admin).get(page).content.decode()
        assert link not in login(partner_admin).get(page).content.decode()


def test_proposing_a_narrower_role_is_for_the_owner_admin_only(
    ingested, login, auditor, partner_admin, partner_staff, foreign_owner_admin
):
    propose = url(ingested, "propose/")
    assert login(auditor).post(propose).status_code == 403
    assert login(partner_staff).post(propose).status_code == 403
    assert login(partner_admin).post(propose).status_code == 404
    assert login(foreign_owner_admin).post(propose).status_code == 404


def test_nothing_used_means_nothing_to_propose(grant, login, owner_admin):  # noqa: F811
    response = login(owner_admin).post(url(grant, "propose/"), follow=True)
    assert response.status_code == 200
    assert "nothing to narrow to" in response.content.decode()
