"""Assignments the owner's oversight makes, through the same outbox and worker as
any assignment:

- `staff_assign_for_break_glass`: the person who activated an emergency role is assigned to
  its delegation as soon as it is active, by the owner's advance naming of them (no partner
  admin is awake at 3 a.m.; that is the point of break-glass);
- `staff_unassign_by_rule`: a person whose assignment the partner's admins did not confirm by
  an access review's deadline, configured to revoke, is unassigned by the portal.
"""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from audit.actions import AuditAction
from audit.services import audit_record
from delegations.models import (
    Delegation,
    StaffAssignment,
)
from delegations.partner.services import (
    assignment_end,
    assignment_lock,
    delegation_is_usable,
    linked_ram_user_name,
    staff_policy_request,
)
from delegations.partner_access import partner_cloud_account, partner_user_policies_request

Status = Delegation.Status


def staff_assign_for_break_glass(*, delegation: Delegation, user: User) -> StaffAssignment | None:
    """Assign `user` (the activating person) to the active break-glass `delegation`; None
    while it is not active yet. Idempotent: an open assignment is returned as it is."""
    with transaction.atomic():
        locked = Delegation.objects.locked_for_change().get(pk=delegation.pk)
        if not delegation_is_usable(locked):
            return None
        existing = StaffAssignment.objects.filter(
            delegation=locked, user=user, ended_at__isnull=True
        ).first()
        if existing is not None:
            return existing
        assignment = StaffAssignment.objects.create(
            delegation=locked, partner=locked.partner, user=user, assigned_by=user
        )
        ram_user = linked_ram_user_name(organisation=locked.partner, user=user)
        audit_record(
            action=AuditAction.STAFF_ASSIGNED,
            actor=None,
            organisation=locked.partner,
            related_organisations=[locked.owner],
            target=assignment,
            target_label=(
                f"{user.email} on {locked.catalog_role.role_name} of {locked.owner} (break-glass)"
            ),
            after={"staff": user.email, "session_policy_kind": "", "ended": False},
            metadata={
                "delegation": str(locked.pk),
                "role_arn": locked.managed_role.role_arn,
                "ram_user_name": ram_user,
                "break_glass": True,
            },
        )
        if ram_user:
            partner_user_policies_request(
                cloud_account=partner_cloud_account(organisation=locked.partner),
                names=[ram_user],
            )
        return assignment


def staff_unassign_by_rule(*, assignment: StaffAssignment, reason: str, rule: str) -> bool:
    """End `assignment` because a rule says so (the portal is the actor): their URI keys stop
    at once and their RAM user loses `sts:AssumeRole` through the worker. False when it had
    already ended."""
    with transaction.atomic():
        locked = assignment_lock(assignment.pk)
        if locked.ended_at is not None:
            return False
        assignment_end(
            locked,
            ended_by=None,
            reason=StaffAssignment.EndReason.UNASSIGNED,
            now=timezone.now(),
            metadata={"reason": reason, "rule": rule},
        )
        staff_policy_request(partner=locked.partner, user=locked.user)
        return True
