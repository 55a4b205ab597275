"""Drift of the fail-safe end (issue 14): a time-bound grant's `DateLessThan acs:CurrentTime`
trust condition deleted or its date altered in cloudsim is reported by the drift check and
restored by the reconciler, which the check asks for at once."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from cloud import policies
from delegations.lifecycle.drift import drift_resolve
from delegations.models import DriftFinding, OutboxMessage
from delegations.worker.engine import ReconcileOutcome
from delegations.worker.periodic import managed_role_check_drift

Kind = DriftFinding.Kind


@pytest.fixture
def timed(owner_world, settings):
    settings.PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = 0
    world = owner_world
    delegation = world.offer(ends_at=timezone.now() + dt.timedelta(hours=2))
    world.offer()  # an open-ended partner on the same role: never reported
    assert world.reconcile().outcome == ReconcileOutcome.CONVERGED
    return world, delegation


def _rewrite(world, change) -> None:
    document = json.loads(world.role().trust_document)
    for statement in document["Statement"]:
        if "Condition" in statement:
            change(statement)
    world.client().update_role(world.role_name, trust_document=json.dumps(document))


def _check(world):
    return managed_role_check_drift(managed_role_id=world.managed_role().pk)


def _open(world):
    return list(
        DriftFinding.objects.filter(
            managed_role=world.managed_role(), resolved_at__isnull=True
        ).values_list("kind", "subject")
    )


def test_a_settled_time_bound_grant_reports_nothing(timed) -> None:
    world, _delegation = timed
    assert _check(world).open_findings == []


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda statement: statement.pop("Condition"), id="condition-deleted"),
        pytest.param(
            lambda statement: statement["Condition"]["DateLessThan"].update(
                {"acs:CurrentTime": "2099-01-01T00:00:00Z"}
            ),
            id="date-moved-later",
        ),
    ],
)
def test_a_deleted_or_altered_condition_is_drift_and_the_reconciler_restores_it(
    timed, change
) -> None:
    world, delegation = timed
    wanted = policies.trust_end_time(delegation.ends_at)
    _rewrite(world, change)
    assert policies.trust_policy_end_times(world.role().trust_document) != {
        delegation.principal_arn: wanted
    }
    outbox_before = OutboxMessage.objects.count()

    check = _check(world)

    assert check.outcome == "reconcile_requested"
    assert _open(world) == [(Kind.FAIL_SAFE_END_CHANGED, delegation.principal_arn)]
    finding = DriftFinding.objects.get()
    assert finding.details["wanted_end"] == wanted
    assert AuditEvent.objects.filter(action="drift.detected", target_id=str(finding.pk)).exists()
    assert OutboxMessage.objects.count() == outbox_before + 1  # the reconcile, asked at once
    with pytest.raises(Exception, match="cannot be accepted"):
        drift_resolve(finding=finding, resolved_by=world.admin, resolution="accept")

    assert world.reconcile().outcome == ReconcileOutcome.CONVERGED
    assert policies.trust_policy_end_times(world.role().trust_document) == {
        delegation.principal_arn: wanted
    }
    _check(world)
    assert _open(world) == []


def test_the_restore_a_drift_check_asks_for_runs_once_the_check_frees_the_lease(
    owner_world_tx, settings, monkeypatch
) -> None:
    # Asked for while the check still held the lease, the restoring reconcile could start
    # at once, be told "busy" and leave the fail-safe end missing until the republish.
    world = owner_world_tx
    settings.PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = 0
    world.offer(ends_at=timezone.now() + dt.timedelta(hours=2))
    assert world.reconcile().outcome == ReconcileOutcome.CONVERGED
    _rewrite(world, lambda statement: statement.pop("Condition"))
    told = world.worker_takes_messages_at_once(monkeypatch)

    assert _check(world).outcome == "reconcile_requested"

    assert [outcome for _, outcome in told] == [ReconcileOutcome.CONVERGED]
    assert policies.trust_policy_end_times(world.role().trust_document)
