"""The runbook tasks: ids in, the worker function, re-queues and the sweep."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from runbooks import dispatch, services, tasks, worker
from runbooks.models import RunbookRun

pytestmark = pytest.mark.django_db
S = RunbookRun.Status


@pytest.fixture
def started(company_b, partner_staff, consent, choice, published, oos, monkeypatch):
    monkeypatch.setattr(tasks, "oos_client_for", lambda partner_id: oos)
    return services.run_start(partner=company_b, started_by=partner_staff, choice=choice())


def test_the_follow_task_re_queues_until_the_end_and_only_one_follower_runs(
    started, published, oos, settings
):
    settings.PORTAL_RUNBOOK_POLL_SECONDS = 10
    assert tasks.submit_run(str(started.pk)) == S.RUNNING
    published.clear()
    assert tasks.follow_run(str(started.pk)) == S.RUNNING
    assert published == [(dispatch.FOLLOW_RUN, str(started.pk))]
    # A second chain (a sweep racing the poll) finds the run looked at moments ago.
    assert tasks.follow_run(str(started.pk)) == "not followed"
    oos.finish("exec-0001")
    RunbookRun.objects.filter(pk=started.pk).update(
        last_polled_at=timezone.now() - dt.timedelta(seconds=60)
    )
    published.clear()
    assert tasks.follow_run(str(started.pk)) == S.SUCCEEDED
    assert published == []


def test_the_sweep_publishes_what_nobody_picked_up(started, published, oos):
    old = timezone.now() - dt.timedelta(minutes=5)
    RunbookRun.objects.filter(pk=started.pk).update(created_at=old)
    published.clear()
    assert tasks.sweep_runs() == 1
    assert published == [(dispatch.SUBMIT_RUN, str(started.pk))]
    worker.run_submit(run_id=started.pk, client=oos)
    RunbookRun.objects.filter(pk=started.pk).update(last_polled_at=old)
    published.clear()
    assert tasks.sweep_runs() == 1
    assert published == [(dispatch.FOLLOW_RUN, str(started.pk))]
