"""`make run`'s cloudsim (`--demo --demo-activity`) holds the demo partner's ActionTrail calls;
after `seed_demo` and the worker, one ingestion gives a newcomer the Activity tab with Alice
(console switch, stopped an instance) and Bob (STS credentials, listed instances, a denied
call), "used" in the access report, the alerts and a right-sizing proposal."""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Iterator
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.utils import timezone

from activity.models import ActivityEvent
from activity.selectors import activity_right_sizing
from activity.services import activity_ingest_account
from auditor.reports import access_report
from delegations.models import CloudAccount, Delegation, OutboxMessage
from delegations.worker.tasks import run_outbox_message
from tests.fixtures.cloudsim import CloudSim

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def demo_sim() -> Iterator[CloudSim]:
    with tempfile.TemporaryDirectory(prefix="cloudsim-demo-activity-") as directory:
        sim = CloudSim(data_dir=Path(directory), extra_args=["--demo-activity"]).start()
        try:
            yield sim
        finally:
            sim.stop()


@pytest.fixture
def seeded(settings, demo_sim: CloudSim, tmp_path: Path) -> Delegation:
    settings.DATA_DIR = tmp_path
    settings.CLOUDSIM_DATA_DIR = demo_sim.data_dir
    settings.ALIBABA_RAM_ENDPOINT = demo_sim.endpoint
    settings.ALIBABA_STS_ENDPOINT = demo_sim.endpoint
    settings.ALIBABA_ACTIONTRAIL_ENDPOINT = demo_sim.endpoint
    settings.ALIBABA_ACTIONTRAIL_QPS = 0
    settings.ALIBABA_CLOUD_PROTOCOL = "http"
    settings.PORTAL_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    out = StringIO()
    call_command("seed_demo", stdout=out)
    assert "linked to their RAM users (Alice, Bob)" in out.getvalue()
    for _ in range(20):  # the worker makes the demo delegation active
        pending = list(
            OutboxMessage.objects.filter(done_at__isnull=True).values_list("id", flat=True)
        )
        if not pending:
            break
        for message_id in pending:
            run_outbox_message.apply(args=[message_id], throw=True)
    delegation = Delegation.objects.get(catalog_role__role_name="ecs-viewer")
    assert delegation.status == Delegation.Status.ACTIVE
    return delegation


def test_the_demo_shows_both_people_used_alerts_and_right_sizing(seeded):
    owner_account = CloudAccount.objects.get(account_uid="11223344", is_active=True)
    report = activity_ingest_account(cloud_account=owner_account)
    assert report.status == "done", report.message
    rows = list(ActivityEvent.objects.filter(delegation=seeded).order_by("event_time"))
    people = {(row.person.email if row.person else None, row.event_name) for row in rows}
    assert people == {
        ("alice@company-b.example", "DescribeInstances"),
        ("alice@company-b.example", "StopInstance"),
        ("bob@company-b.example", "DescribeInstances"),
        ("bob@company-b.example", "ListRoles"),
    }
    alerts = {row.event_name: row.alerts for row in rows if row.alerts}
    assert alerts == {"StopInstance": ["write_read_only"], "ListRoles": ["denied"]}
    sizing = activity_right_sizing(delegation=seeded)
    assert sizing.used_actions == ["ecs:DescribeInstances", "ecs:StopInstance"]
    assert sizing.draft_policy

    now = timezone.now()
    access = access_report(
        organisation=seeded.owner,
        account_uid="11223344",
        catalog_role=None,
        since=now - dt.timedelta(days=7),
        until=now + dt.timedelta(minutes=1),
        now=now,
    )
    used = {(row.kind, row.who): row.used_calls for row in access.rows}
    print(used)
    assert sum(used.values()) == len(rows)
