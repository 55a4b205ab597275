"""The access report, the timeline and their exports after a revoke or an emergency cut-off,
in a real owner + partner world: the worker's calls against cloudsim, credentials issued
through the portal, and the cloud itself asked whether those credentials still work.

The residual window ends at the first of: the credentials' expiry, the role's deletion, the
detach of its permission policies; "still able" only while that is true.
"""

import csv
import datetime as dt
import io
import json

import pytest
from django.test import Client
from django.utils import timezone

from audit.models import AuditEvent
from auditor.presentation import DETACHED_THEN_DELETED, POLICIES_DETACHED
from auditor.reports import access_report
from delegations.models import Delegation
from delegations.partner.credentials import credentials_issue
from delegations.partner.services import role_cut_off
from tests.fixtures.partner import PartnerWorld, ecs_client, ecs_instance_names

pytestmark = pytest.mark.django_db

HOUR = 3600


def works(world: PartnerWorld, issued) -> bool:
    """Whether the credentials can still do what the role allows, as the cloud answers."""
    credentials = issued.credentials
    client = ecs_client(
        world.sim,
        credentials.access_key_id,
        credentials.access_key_secret,
        credentials.security_token,
    )
    try:
        ecs_instance_names(client)
    except Exception as error:  # the SDK's ClientException; its code is what matters
        assert "Forbidden" in str(error) or "NoPermission" in str(error), error
        return False
    return True


def cloud_result(cloud_action: str) -> AuditEvent:
    return AuditEvent.objects.get(action="cloud.call_result", metadata__cloud_action=cloud_action)


def report(world: PartnerWorld, organisation):
    now = timezone.now()
    return access_report(
        organisation=organisation,
        account_uid=world.owner_account.account_uid,
        catalog_role=None,
        since=now - dt.timedelta(hours=1),
        until=now + dt.timedelta(hours=3),
        now=now,
    )


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def report_params(world: PartnerWorld) -> dict[str, str]:
    today = dt.datetime.now(dt.UTC).date()
    return {
        "account": world.owner_account.account_uid,
        "since": today.isoformat(),
        "until": (today + dt.timedelta(days=1)).isoformat(),
    }


def download(user, url: str, world: PartnerWorld) -> str:
    response = client_for(user).get(url, report_params(world))
    return b"".join(response.streaming_content).decode().removeprefix("\ufeff")


def issue_for_alice(world: PartnerWorld, delegation: Delegation):
    assignment = world.assign(delegation, world.alice)
    issued = credentials_issue(assignment=assignment, user=world.alice, duration_seconds=HOUR)
    assert works(world, issued)
    return issued


def end(world: PartnerWorld, delegation: Delegation, how: str) -> None:
    if how == "revoke":
        world.revoke(delegation)
    else:
        role_cut_off(
            delegation=delegation, cut_off_by=world.owner_admin, reason="Leaked key", with_mfa=True
        )
    world.drain()
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.REVOKED


@pytest.mark.parametrize("how", ["revoke", "cut-off"])
def test_after_the_role_is_deleted_nobody_is_still_able_and_the_window_ends_there(
    partner_world: PartnerWorld, how: str
):
    world = partner_world
    delegation = world.active_delegation()
    issued = issue_for_alice(world, delegation)
    end(world, delegation, how)

    # The last partner left, so the worker detached the role's policies and deleted it: the
    # credentials, valid for another hour, answer Forbidden from the detach on.
    assert not works(world, issued)
    stopped = cloud_result("DetachPolicyFromRole").occurred_at
    deleted = cloud_result("DeleteRole").occurred_at
    assert issued.credentials.expiration > deleted + dt.timedelta(minutes=50)

    for organisation in (world.owner, world.partner):
        rows = report(world, organisation).rows
        # One row for the account and one for Alice: her assignment and her credentials are
        # the same person.
        assert [r.kind for r in rows] == ["account", "person"], rows
        account, alice = rows
        assert alice.who == world.alice.email and alice.credentials == 1
        for row in rows:
            assert not row.still_able, row
            assert (row.stopped_at, row.stopped_by) == (stopped, DETACHED_THEN_DELETED)
            assert row.access_until == deleted  # the deletion removed the trust
            assert row.residual_until is None  # nothing after the end: the role was gone
            assert max(s.end for s in row.segments) <= deleted
        assert account.worst_case_until == deleted

    body = client_for(world.owner_admin).get("/audit/access/", report_params(world))
    text = body.content.decode()
    assert body.status_code == 200 and "still able" not in text
    # The moment in the reader's zone (UTC for this admin), the UTC instant on the <time>.
    assert (
        f'stopped working <time datetime="{stopped:%Y-%m-%dT%H:%M:%S}Z"' in text
        and f"{stopped:%Y-%m-%d %H:%M:%S}</time>: {DETACHED_THEN_DELETED}" in text
    )

    rows = list(
        csv.DictReader(io.StringIO(download(world.owner_admin, "/audit/access/export.csv", world)))
    )
    assert [r["still_able"] for r in rows] == ["no", "no"]
    assert {r["worst_case_until"] for r in rows} <= {f"{deleted:%Y-%m-%dT%H:%M:%S.%fZ}", ""}
    document = json.loads(download(world.partner_admin, "/audit/access/export.json", world))
    assert [r["still_able"] for r in document["rows"]] == [False, False]
    assert {r["stopped_by"] for r in document["rows"]} == {DETACHED_THEN_DELETED}

    timeline = client_for(world.owner_admin).get(f"/audit/delegations/{delegation.pk}/")
    residual = (
        timeline.content.decode().split('data-testid="residual"')[1].split("</div>\n</div>")[0]
    )
    # Times in the reader's zone (UTC for this admin), the UTC instant on each <time>.
    instant = f'<time datetime="{stopped:%Y-%m-%dT%H:%M:%S}Z"'
    assert f"until {instant}" in residual and f"{stopped:%Y-%m-%d %H:%M}</time>" in residual
    assert f"At worst until {instant}" in residual
    assert f"stopped working at {instant}" in residual
    assert f"{stopped:%Y-%m-%d %H:%M:%S}</time>" in residual
    assert " UTC" not in residual.replace(' UTC">', "")
    assert f"{issued.credentials.expiration:%Y-%m-%d %H:%M}" not in residual


def test_a_kept_role_leaves_credentials_working_until_the_cut_off_detaches_its_policies(
    partner_world: PartnerWorld,
):
    world = partner_world
    world.catalog_role.keep_role_when_empty = True
    world.catalog_role.save(update_fields=["keep_role_when_empty"])
    delegation = world.active_delegation()
    issued = issue_for_alice(world, delegation)
    end(world, delegation, "revoke")

    # Revoked, but the role stays with its policies: Alice's credentials still work, and the
    # report says so.
    assert works(world, issued)
    alice = next(r for r in report(world, world.owner).rows if r.kind == "person")
    assert alice.still_able and alice.stopped_at is None
    assert alice.residual_until == issued.credentials.expiration
    page = client_for(world.owner_admin).get("/audit/access/", report_params(world))
    assert "still able: credentials issued before the end still work" in page.content.decode()

    # The owner cuts the role off: its policies are detached, the credentials stop.
    role_cut_off(
        delegation=delegation, cut_off_by=world.owner_admin, reason="Leaked key", with_mfa=True
    )
    world.drain()
    assert not works(world, issued)
    detached = cloud_result("DetachPolicyFromRole").occurred_at
    for organisation in (world.owner, world.partner):
        rows = report(world, organisation).rows
        assert [r.kind for r in rows] == ["account", "person"]
        for row in rows:
            assert not row.still_able, row
            assert (row.stopped_at, row.stopped_by) == (detached, POLICIES_DETACHED)
            assert max(s.end for s in row.segments) == detached
        assert rows[1].residual_until == detached
    page = client_for(world.owner_admin).get("/audit/access/", report_params(world))
    assert "still able" not in page.content.decode()
    document = json.loads(download(world.owner_admin, "/audit/access/export.json", world))
    assert [r["still_able"] for r in document["rows"]] == [False, False]
    assert {r["residual_until"] for r in document["rows"]} <= {
        None,
        f"{detached:%Y-%m-%dT%H:%M:%S.%fZ}",
    }
