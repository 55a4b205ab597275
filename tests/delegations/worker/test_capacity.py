"""A full trust policy (issue 19 item 1), against cloudsim and its 4,096-character limit: the
approvals that fit go in, the rest wait with the reason, nothing fails, and a revoke lets the
first waiting one in on the next reconcile."""

from __future__ import annotations

import re

from django.urls import reverse

from audit.models import AuditEvent
from delegations.models import Delegation
from delegations.role_plan import trust_policy_chars
from delegations.role_state import WAITING_FOR_ROOM
from delegations.worker.engine import ReconcileOutcome

Status = Delegation.Status


def arn(delegation: Delegation) -> str:
    return f"acs:ram::{delegation.partner.account_uid}:root"


def test_more_approvals_than_fit_in_cloudsims_limit_pack_and_wait(owner_world) -> None:
    # 16-digit account ids: about 121 fit in 4,096 characters.
    delegations = [owner_world.offer() for _ in range(130)]

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.CONVERGED
    assert report.failed == []
    statuses = [owner_world.status(d) for d in delegations]
    assert Status.FAILED not in statuses
    active = [d for d, s in zip(delegations, statuses, strict=True) if s == Status.ACTIVE]
    waiting = [d for d, s in zip(delegations, statuses, strict=True) if s != Status.ACTIVE]
    assert 100 < len(active) < 130 and waiting
    # In approval order: the first ones approved got in.
    assert active == delegations[: len(active)]
    assert owner_world.trusted() == {arn(d) for d in active}
    assert trust_policy_chars(owner_world.role().trust_document) <= 4096
    for delegation in waiting:
        row = Delegation.objects.get(pk=delegation.pk)
        assert row.status == Status.APPLYING
        assert row.last_error_code == WAITING_FOR_ROOM
        assert "Waiting for room on role ecs-admin" in row.last_error_message
    assert AuditEvent.objects.filter(action="delegation.waiting_for_room").count() == len(waiting)

    # A revoke frees room: the first waiting one gets in on the next reconcile.
    owner_world.revoke(active[0])
    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.CONVERGED
    assert owner_world.status(active[0]) == Status.REVOKED
    first = Delegation.objects.get(pk=waiting[0].pk)
    assert first.status == Status.ACTIVE and first.last_error_code == ""
    assert all(owner_world.status(d) == Status.APPLYING for d in waiting[1:])
    assert arn(first) in owner_world.trusted() and arn(active[0]) not in owner_world.trusted()


def test_the_limit_is_a_setting(owner_world, settings) -> None:
    settings.PORTAL_TRUST_POLICY_MAX_CHARS = 200
    delegations = [owner_world.offer() for _ in range(6)]

    report = owner_world.reconcile()

    assert report.outcome == ReconcileOutcome.CONVERGED
    statuses = [owner_world.status(d) for d in delegations]
    assert statuses.count(Status.ACTIVE) >= 1
    assert Status.FAILED not in statuses and Status.APPLYING in statuses
    assert trust_policy_chars(owner_world.role().trust_document) <= 200
    # Another round changes nothing and notes nobody twice.
    events = AuditEvent.objects.filter(action="delegation.waiting_for_room").count()
    again = owner_world.reconcile(force=True)
    assert again.mutating_calls == 0
    assert AuditEvent.objects.filter(action="delegation.waiting_for_room").count() == events


def test_the_roles_page_shows_each_roles_capacity_and_who_waits(owner_world, settings, client):
    settings.PORTAL_TRUST_POLICY_MAX_CHARS = 200
    delegations = [owner_world.offer() for _ in range(6)]
    owner_world.reconcile()
    waiting = [d for d in delegations if owner_world.status(d) == Status.APPLYING]
    used = trust_policy_chars(owner_world.role().trust_document)

    client.force_login(owner_world.admin)
    body = client.get(reverse("delegations:roles")).content.decode()

    capacity = re.search(r'<p[^>]*data-testid="capacity".*?</p>', body, re.S)
    assert capacity, body
    assert f"{used} / 200" in capacity.group(0)
    assert f"{len(waiting)} approved access" in capacity.group(0)
    assert "waiting for room: the trust policy is full" in body
