"""Ingestion: exactly-once rows across overlap, duplicates, a crash between pages and
throttling; a key without permission stops once; malformed events are kept and flagged."""

from __future__ import annotations

import datetime as dt
import gc

import pytest
from django.db import models
from django.utils import timezone, translation

from activity import services as activity_services
from activity.models import ActivityCursor, ActivityDaily, ActivityEvent
from activity.services import activity_ingest_account, activity_purge_expired
from audit.models import AuditEvent
from cloud.errors import CloudError
from delegations.models import Delegation
from notifications.models import Delivery
from tests.activity.conftest import ROLE, FakeTrail, event
from tests.delegations.factories import DelegationFactory

pytestmark = pytest.mark.django_db


def ingest(grant, trail, waits=None, **kwargs):
    return activity_ingest_account(
        cloud_account=grant.cloud_account,
        client=trail,
        sleep=(waits if waits is not None else []).append,
        **kwargs,
    )


def test_events_are_joined_to_the_delegation_and_the_person(grant):
    trail = FakeTrail(pages=[[event(1), event(2, name="StopInstance", rw="Write")]])
    report = ingest(grant, trail)
    assert (report.status, report.stored) == ("done", 2)
    rows = list(ActivityEvent.objects.order_by("event_id"))
    assert [r.event_id for r in rows] == ["evt-1", "evt-2"]
    for row in rows:
        assert row.delegation == grant.delegation
        assert row.person == grant.staff
        assert row.person_label == grant.staff.email
        assert row.via == ActivityEvent.Via.ISSUED
        assert row.partner_account_uid == "12345678"
        assert row.alerts == []
    assert rows[1].action == "ecs:StopInstance"
    cursor = ActivityCursor.objects.get(cloud_account=grant.cloud_account)
    assert cursor.ingested_until is not None
    assert cursor.events_stored == 2


def test_overlap_and_duplicates_store_each_event_once(grant, settings):
    settings.PORTAL_ACTIVITY_OVERLAP_SECONDS = 1800
    first_run = timezone.now()
    trail = FakeTrail(pages=[[event(1), event(2)], [event(2), event(3)]])
    assert ingest(grant, trail, now=first_run).stored == 3
    # The next run re-reads the overlap window: the same events come again, plus a late one.
    again = FakeTrail(pages=[[event(3), event(2), event(4)]])
    report = ingest(grant, again, now=first_run + dt.timedelta(minutes=5))
    assert report.stored == 1
    assert ActivityEvent.objects.count() == 4
    # The daily counts behind the chart count each event once too.
    assert sum(ActivityDaily.objects.values_list("calls", flat=True)) == 4
    start, _end = again.windows[0]
    assert start == first_run - dt.timedelta(seconds=1800)


def test_a_crash_between_pages_loses_and_duplicates_nothing(grant, monkeypatch):
    # One reader: the window read from its newest end only (both ends: see test_reading).
    monkeypatch.setattr(activity_services, "READ_FROM_BOTH_ENDS", False)
    pages = [[event(1), event(2)], [event(3)], [event(4)]]
    broken = FakeTrail(
        pages=pages,
        failures={2: CloudError(code="InvalidParameter", message="boom", action="LookupEvents")},
    )
    report = ingest(grant, broken)
    assert report.status == "failed"
    assert ActivityEvent.objects.count() == 2  # the first page is in
    cursor = ActivityCursor.objects.get(cloud_account=grant.cloud_account)
    assert cursor.ingested_until is None  # the cursor did not move past the gap
    assert cursor.last_error_code == "InvalidParameter"
    assert ingest(grant, FakeTrail(pages=pages)).stored == 2
    assert sum(ActivityDaily.objects.values_list("calls", flat=True)) == 4
    assert sorted(ActivityEvent.objects.values_list("event_id", flat=True)) == [
        "evt-1",
        "evt-2",
        "evt-3",
        "evt-4",
    ]
    cursor.refresh_from_db()
    assert cursor.ingested_until is not None and cursor.last_error_code == ""


def test_the_next_batch_is_read_while_one_is_stored_and_its_failure_keeps_that_one(
    grant, monkeypatch
):
    """Batches of two: the cloud's error comes while the first batch is being written (its
    rows sent, the database taking them in), and that batch still commits."""
    monkeypatch.setattr(activity_services, "STORE_BATCH", 2)
    monkeypatch.setattr(activity_services, "READ_FROM_BOTH_ENDS", False)
    pages = [[event(1)], [event(2)], [event(3)], [event(4)], [event(5)]]
    broken = FakeTrail(
        pages=pages,
        failures={4: CloudError(code="InternalError", message="boom", action="LookupEvents")},
    )
    monkeypatch.setattr(activity_services, "PAGE_ATTEMPTS", 1)
    report = ingest(grant, broken)
    assert (report.status, report.stored, report.pages) == ("failed", 3, 3)
    assert sorted(ActivityEvent.objects.values_list("event_id", flat=True)) == [
        "evt-1",
        "evt-2",
        "evt-3",
    ]
    assert sum(ActivityDaily.objects.values_list("calls", flat=True)) == 3
    whole = ingest(grant, FakeTrail(pages=pages))
    assert (whole.status, whole.stored, whole.pages) == ("done", 2, 5)
    assert ActivityEvent.objects.count() == 5


def test_throttling_and_server_errors_are_retried_with_backoff(grant, monkeypatch):
    monkeypatch.setattr(activity_services, "READ_FROM_BOTH_ENDS", False)
    throttled = CloudError(
        code="Throttling.User", message="slow down", action="LookupEvents", http_status=400
    )
    server = CloudError(code="InternalError", message="oops", action="LookupEvents")
    trail = FakeTrail(pages=[[event(1)], [event(2)]], failures={1: throttled, 3: server})
    waits: list[float] = []
    report = ingest(grant, trail, waits)
    assert (report.status, report.stored) == ("done", 2)
    assert waits == [0.5, 0.5]
    assert trail.calls == 4


def test_a_key_without_permission_stops_ingestion_once_with_a_clear_message(grant):
    refused = CloudError(
        code="NoPermission", message="denied", action="LookupEvents", http_status=403
    )
    trail = FakeTrail(pages=[[event(1)]], failures={1: refused})
    report = ingest(grant, trail)
    assert report.status == "blocked"
    assert "actiontrail:LookupEvents" in report.message
    cursor = ActivityCursor.objects.get(cloud_account=grant.cloud_account)
    assert "actiontrail:LookupEvents" in cursor.last_error_message
    assert AuditEvent.objects.filter(action="activity.ingestion_blocked").count() == 1
    # The next run does not ask again with the same key.
    again = FakeTrail(pages=[[event(1)]])
    assert ingest(grant, again).status == "skipped"
    assert again.calls == 0
    # A new key is tried.
    account = grant.cloud_account
    account.secret_fingerprint = "sha256:another"
    account.save(update_fields=["secret_fingerprint"])
    assert ingest(grant, FakeTrail(pages=[[event(1)]])).status == "done"
    assert AuditEvent.objects.filter(action="activity.ingestion_blocked").count() == 1


def test_malformed_events_are_kept_with_what_is_valid_and_flagged(grant):
    no_identity = event(1)
    del no_identity["userIdentity"]
    odd_type = event(2)
    odd_type["userIdentity"]["type"] = "federated-user"
    huge = event(3, requestParameters={"stsTokenPlayerUid": "12345678", "blob": "x" * 1_000_000})
    missing_name = event(4)
    del missing_name["eventName"]
    no_id = event(5)
    del no_id["eventId"]
    bad_time = event(6, eventTime="yesterday")
    report = ingest(
        grant, FakeTrail(pages=[[no_identity, odd_type, huge, missing_name, no_id, bad_time]])
    )
    assert report.status == "done"
    rows = {row.event_id: row for row in ActivityEvent.objects.all()}
    # Without an identity an event is not a partner session's: not activity. An unknown
    # identity type named like a role session is kept, flagged.
    assert set(rows) == {"evt-2", "evt-3", "evt-4"}
    assert "unknown identity type federated-user" in rows["evt-2"].problems
    assert rows["evt-2"].person == grant.staff
    assert "requestParameters too large: not kept" in rows["evt-3"].problems
    assert rows["evt-3"].raw_event["requestParameters"] == {"_omitted": "too large"}
    assert rows["evt-3"].person == grant.staff
    assert "missing event_name" in rows["evt-4"].problems


def test_alerts_for_denied_after_end_unknown_sessions_and_read_only_writes(grant):
    delegation = grant.delegation
    delegation.catalog_role.policies = [{"type": "System", "name": "AliyunECSReadOnlyAccess"}]
    delegation.catalog_role.save(update_fields=["policies"])
    delegation.ended_at = timezone.now() - dt.timedelta(minutes=30)
    delegation.status = "revoked"
    delegation.save(update_fields=["ended_at", "status"])
    pages = [
        [
            event(60, name="ListRoles", error="NoPermission"),
            event(50, name="StopInstance", rw="Write"),
            event(10, name="DescribeInstances"),
            event(40, session="mallory", key="STS.never-issued"),
        ]
    ]
    ingest(grant, FakeTrail(pages=pages))
    alerts = dict(ActivityEvent.objects.values_list("event_id", "alerts"))
    assert alerts == {
        "evt-60": ["denied"],
        "evt-50": ["write_read_only"],
        "evt-10": ["after_end"],
        "evt-40": ["unknown_session"],
    }
    raised = AuditEvent.objects.filter(action="activity.alert_raised")
    assert raised.count() == 1
    # The lone denied call is flagged on its row, and told only in a burst (see below).
    assert raised.get().metadata["alerts"] == {
        "write_read_only": 1,
        "after_end": 1,
        "unknown_session": 1,
    }
    # The account whose trail recorded the calls, as the notice names it: a fleet's role has
    # one name in each of the owner's accounts.
    assert raised.get().metadata["account_uid"] == grant.cloud_account.account_uid
    # One notice to each owner admin (a security notice: preferences cannot mute it).
    deliveries = Delivery.objects.filter(event="activity.alert")
    admins = {m.user.email for m in grant.owner.memberships.filter(role="admin")}
    assert {d.recipient_email for d in deliveries} == admins
    content = deliveries.first().content
    assert content["link"].endswith(f"/audit/delegations/{delegation.pk}/activity/?alerts=1")
    assert dict(content["facts"]) == {
        "writes under a read-only role": "1",
        "calls after the grant ended": "1",
        "calls from sessions the portal never issued": "1",
    }
    # Ingesting the same events again raises nothing new.
    ingest(grant, FakeTrail(pages=pages))
    assert raised.count() == 1
    assert deliveries.count() == len(admins)


def test_denied_calls_alert_only_in_bursts_counting_earlier_runs(grant, settings):
    settings.PORTAL_ACTIVITY_DENIED_BURST_CALLS = 3
    settings.PORTAL_ACTIVITY_DENIED_BURST_SECONDS = 300
    now = timezone.now()

    def denied(n, minutes_ago):
        return event(n, error="NoPermission", at=now - dt.timedelta(minutes=minutes_ago))

    raised = AuditEvent.objects.filter(action="activity.alert_raised").order_by("pk")
    # Run one: three denied calls ten minutes apart (never three within five minutes), and
    # two close together: no burst yet, nothing told, every row flagged.
    first = [denied(1, 90), denied(2, 80), denied(3, 70), denied(4, 21), denied(5, 20)]
    ingest(grant, FakeTrail(pages=[first]), now=now)
    assert not raised.exists()
    flags = list(ActivityEvent.objects.values_list("alerts", flat=True))
    assert flags == [["denied"]] * 5
    # Run two: one more call joins the two stored by run one (a burst split between runs),
    # and three more an hour earlier make a second burst; both are told, each with its calls.
    second = [denied(6, 19), denied(7, 62), denied(8, 61), denied(9, 60), *first]
    ingest(grant, FakeTrail(pages=[second]), now=now)
    assert raised.count() == 1
    assert raised.get().metadata["alerts"] == {"denied_burst": 6}
    facts = dict(Delivery.objects.filter(event="activity.alert").first().content["facts"])
    assert facts == {"denied calls in a burst": "6"}
    # Run three: a lone call far from both bursts tells nothing; one more in the late burst
    # tells that burst again, with all its calls.
    third = [denied(10, 45), denied(11, 18), *second]
    ingest(grant, FakeTrail(pages=[third]), now=now)
    assert raised.count() == 2
    assert raised.last().metadata["alerts"] == {"denied_burst": 4}


def test_every_denied_call_alerts_when_a_burst_is_one_call(grant, settings):
    settings.PORTAL_ACTIVITY_DENIED_BURST_CALLS = 1
    ingest(grant, FakeTrail(pages=[[event(1, error="Forbidden.RAM")]]))
    raised = AuditEvent.objects.get(action="activity.alert_raised")
    assert raised.metadata["alerts"] == {"denied_burst": 1}


def test_calls_in_other_roles_or_by_the_owner_are_not_activity(grant):
    owner_call = event(1)
    owner_call["userIdentity"] = {"type": "root-account", "accountId": "11223344"}
    other_role = event(2, role="someone-elses-role")
    ingest(grant, FakeTrail(pages=[[owner_call, other_role]]))
    assert ActivityEvent.objects.count() == 0


def test_activity_past_retention_is_purged(grant, settings):
    settings.PORTAL_ACTIVITY_RETENTION_DAYS = 400
    now = timezone.now()
    ingest(grant, FakeTrail(pages=[[event(1, at=now - dt.timedelta(days=401)), event(2)]]))
    assert activity_purge_expired(now=now) == 1
    assert list(ActivityEvent.objects.values_list("event_id", flat=True)) == ["evt-2"]


def test_a_chained_session_is_named_by_its_source_identity(grant):
    chained = event(1, session="chained", key="STS.from-a-chain")
    chained["userIdentity"]["sourceIdentity"] = "staff@company-b"  # the issuance's session name
    stranger = event(2, session="chained", key="STS.other")
    stranger["userIdentity"]["sourceIdentity"] = "someone-else"
    ingest(grant, FakeTrail(pages=[[chained, stranger]]))
    rows = {row.event_id: row for row in ActivityEvent.objects.all()}
    assert rows["evt-1"].person == grant.staff
    assert rows["evt-1"].via == ActivityEvent.Via.ISSUED
    assert rows["evt-1"].source_identity == "staff@company-b"
    assert rows["evt-2"].person is None
    assert rows["evt-2"].alerts == ["unknown_session"]


def same_role_granted_to(grant, partner) -> Delegation:
    """An active delegation of the grant's role (so its managed role too) to `partner`."""
    return DelegationFactory(
        catalog_role=grant.delegation.catalog_role,
        partner=partner,
        status=Delegation.Status.ACTIVE,
        starts_at=timezone.now() - dt.timedelta(days=10),
        activated_at=timezone.now() - dt.timedelta(days=10),
    )


def test_another_partners_session_claiming_a_staff_members_source_identity_is_its_own(
    grant, company_d
):
    """Review finding: partner D, also granted the same role, assumes it with its own key and
    sets SourceIdentity to B's documented session name. Its call is D's, from a session the
    portal never issued: not B's delegation and person."""
    theirs = same_role_granted_to(grant, company_d)
    assert theirs.managed_role_id == grant.delegation.managed_role_id
    spoof = event(
        1,
        name="DeleteInstance",
        rw="Write",
        session="whatever",
        key="STS.never-issued",
        partner_uid=company_d.account_uid,
    )
    spoof["userIdentity"]["sourceIdentity"] = "staff@company-b"
    genuine = event(2, session="chained", key="STS.from-a-chain")
    genuine["userIdentity"]["sourceIdentity"] = "staff@company-b"
    ingest(grant, FakeTrail(pages=[[spoof, genuine]]))
    rows = {row.event_id: row for row in ActivityEvent.objects.all()}
    spoofed = rows["evt-1"]
    assert spoofed.partner_account_uid == company_d.account_uid
    assert (spoofed.delegation, spoofed.person, spoofed.via) == (
        theirs,
        None,
        ActivityEvent.Via.UNKNOWN,
    )
    assert spoofed.alerts == ["unknown_session"]
    # B's own chained session, read in the same page, is still B's person.
    assert (rows["evt-2"].delegation, rows["evt-2"].person) == (grant.delegation, grant.staff)
    assert rows["evt-2"].via == ActivityEvent.Via.ISSUED


def test_a_portal_key_in_an_event_from_another_partner_account_is_not_that_partners_person(
    grant, company_d
):
    """Review finding: the STS key alone named the issuance, whatever partner account the
    event said made the call. An event from partner D (also granted the role) that carries
    the key the portal issued to B's person is not B's person's: the event contradicts the
    issuance, so it is D's call from a session the portal cannot explain, and raises the
    alert. An event naming no partner account still has only the key to go by."""
    theirs = same_role_granted_to(grant, company_d)
    from_d = event(1, name="DeleteInstance", rw="Write", partner_uid=company_d.account_uid)
    from_b = event(2)
    unnamed = event(3)
    del unnamed["requestParameters"]["stsTokenPlayerUid"]
    ingest(grant, FakeTrail(pages=[[from_d, from_b, unnamed]]))
    rows = {row.event_id: row for row in ActivityEvent.objects.all()}
    contradicted = rows["evt-1"]
    assert (contradicted.delegation, contradicted.person, contradicted.via) == (
        theirs,
        None,
        ActivityEvent.Via.UNKNOWN,
    )
    assert contradicted.alerts == ["unknown_session"]
    for genuine in (rows["evt-2"], rows["evt-3"]):
        assert (genuine.delegation, genuine.person) == (grant.delegation, grant.staff)
        assert genuine.via == ActivityEvent.Via.ISSUED


def test_a_call_after_the_grant_ended_is_never_attached_to_a_request_that_was_not_granted(
    grant, partner_admin
):
    """A later request of the same partner for the same role, rejected, withdrawn, still
    waiting or left to expire, was never in force: a call after the real grant ended stays that
    grant's, flagged as after its end."""
    now = timezone.now()
    granted = grant.delegation
    Delegation.objects.filter(pk=granted.pk).update(
        status=Delegation.Status.EXPIRED, ended_at=now - dt.timedelta(days=5)
    )
    for status, ended in (
        (Delegation.Status.REJECTED, now - dt.timedelta(days=2)),
        (Delegation.Status.WITHDRAWN, now - dt.timedelta(days=2)),
        (Delegation.Status.REQUESTED, None),
        # A request nobody decided, ended by its end date.
        (Delegation.Status.EXPIRED, now - dt.timedelta(days=2)),
    ):
        DelegationFactory(
            catalog_role=granted.catalog_role,
            partner=granted.partner,
            status=status,
            starts_at=now - dt.timedelta(days=3),
            ended_at=ended,
        )
    during_a_request = event(
        1, session="Bob", key="STS.unknown", at=now - dt.timedelta(days=2, hours=12)
    )
    after_all = event(2, session="Bob", key="STS.unknown", at=now - dt.timedelta(days=1))
    ingest(grant, FakeTrail(pages=[[after_all, during_a_request]]))
    for row in ActivityEvent.objects.all():
        assert row.delegation_id == granted.pk, row.event_id
        assert row.alerts == ["unknown_session", "after_end"], row.event_id


def test_odd_shapes_never_stop_the_page_or_the_run(grant):
    identity_text = event(1)
    identity_text["userIdentity"] = "assumed-role"  # not an object
    odd_rw = event(2, eventRW="Delete")
    number_name = event(3, eventName=12345)
    nested_ip = event(4, sourceIpAddress={"v4": "203.0.113.7"})
    long_resource = event(5, resourceName="r" * 2000)
    valid_after = event(6)
    # JSON allows any integer; the fast encoder takes 64 bits, the standard one the rest.
    huge_number = event(7, requestParameters={"stsTokenPlayerUid": "12345678", "n": 2**70})
    chinese = event(8, resourceName="生产-实例")
    report = ingest(
        grant,
        FakeTrail(
            pages=[
                [identity_text, odd_rw, number_name],
                [nested_ip, long_resource, valid_after, huge_number, chinese],
            ]
        ),
    )
    assert report.status == "done"
    rows = {row.event_id: row for row in ActivityEvent.objects.all()}
    assert set(rows) == {"evt-2", "evt-3", "evt-4", "evt-5", "evt-6", "evt-7", "evt-8"}
    assert rows["evt-7"].raw_event["requestParameters"]["n"] == 2**70
    assert rows["evt-8"].raw_event["resourceName"] == rows["evt-8"].resource_name == "生产-实例"
    assert "unknown eventRW Delete" in rows["evt-2"].problems and rows["evt-2"].event_rw == ""
    assert rows["evt-3"].event_name == "12345"
    assert "malformed source_ip" in rows["evt-4"].problems and rows["evt-4"].source_ip == ""
    assert "resource_name cut to 512 characters" in rows["evt-5"].problems
    assert len(rows["evt-5"].resource_name) == 512
    assert rows["evt-6"].problems == [] and rows["evt-6"].person == grant.staff
    # What was valid is searchable and counted like any call.
    assert ActivityDaily.objects.filter(delegation=grant.delegation).aggregate(
        total=models.Sum("calls")
    ) == {"total": 7}


@pytest.mark.parametrize("fails", [False, True])
def test_the_collector_is_tuned_for_the_run_and_put_back_after_it(grant, fails):
    """The run freezes the objects that existed before it and collects young ones less often
    (a large run spent a fifth of its time in the collector); after it, even a failed one, the
    process's collector is as it was."""
    during: list[tuple[int, int]] = []

    class Watched(FakeTrail):
        def lookup_events(self, **kwargs):
            during.append((gc.get_threshold()[0], gc.get_freeze_count()))
            return super().lookup_events(**kwargs)

    failures = {1: CloudError(code="InvalidParameter", message="x", action="LookupEvents")}
    before = (gc.get_threshold(), gc.get_freeze_count())
    report = ingest(grant, Watched(pages=[[event(1)]], failures=failures if fails else {}))
    assert report.status == ("failed" if fails else "done")
    assert during and all(
        threshold == activity_services.RUN_GC_THRESHOLD and frozen > 0
        for threshold, frozen in during
    )
    assert (gc.get_threshold(), gc.get_freeze_count()) == before


def test_an_alert_notice_names_the_account_its_calls_were_made_in(grant, settings):
    """A fleet's role has one name in each of the owner's accounts: the alert says which
    account's trail recorded the calls, or two accounts' alerts read the same."""
    settings.PORTAL_ACTIVITY_DENIED_BURST_CALLS = 1
    ingest(grant, FakeTrail(pages=[[event(1, error="Forbidden.RAM")]]))
    title = Delivery.objects.filter(event="activity.alert").first().content["title"]
    assert title == (
        f"Partner activity needs a look: {ROLE} for Company B "
        f"in account {grant.cloud_account.account_uid}"
    )


def test_an_alert_under_no_delegation_names_the_account_in_the_readers_language(grant):
    """Calls in the role from an account no delegation names: the notice names the account
    alone, in the language the notice is written in, like the delegation's."""
    stranger = event(1, partner_uid="99999999", session="mallory", key="STS.never-issued")
    with translation.override("zh-hans"):
        ingest(grant, FakeTrail(pages=[[stranger]]))
    title = Delivery.objects.filter(event="activity.alert").first().content["title"]
    assert title.endswith(f"账号 {grant.cloud_account.account_uid}")
