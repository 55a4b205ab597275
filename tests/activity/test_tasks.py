"""Beat's tasks are thin: one ingestion per connected owner account, by id."""

from __future__ import annotations

import pytest

from activity import tasks
from activity.services import IngestReport

pytestmark = pytest.mark.django_db


def test_ingest_all_queues_each_connected_owner_account(grant, monkeypatch):
    queued: list[str] = []
    monkeypatch.setattr(tasks.ingest_account, "delay", queued.append)
    assert tasks.ingest_all_accounts() == 1
    assert queued == [str(grant.cloud_account.pk)]


def test_ingest_account_runs_the_service_for_that_account(grant, monkeypatch):
    seen = []

    def fake(*, cloud_account):
        seen.append(cloud_account)
        return IngestReport("done")

    monkeypatch.setattr(tasks, "activity_ingest_account", fake)
    assert tasks.ingest_account(str(grant.cloud_account.pk)) == "done"
    assert seen == [grant.cloud_account]
    assert tasks.ingest_account("00000000-0000-0000-0000-000000000000") == "gone"
