"""The delegation lifecycle, the owner's decisions and what follows them: approve (under the
approval rules), an approver's own approval taken back, reject, revoke, retry. How a delegation
starts is in `starting`, the pieces every transition shares in `transitions`.

Every function locks the delegation row, returns it unchanged when the change has already
happened (a double click), refuses moves outside `ALLOWED_TRANSITIONS`, writes its audit
event in the same transaction and, when the cloud must change, bumps the managed role's
desired version and enqueues a reconcile through the outbox. None of them changes the cloud;
the grants (approve, retry towards applying) may read it first, before any lock, to check the
high-privilege opt-in against the role's Custom policies as they are now.
"""

import dataclasses
import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from accounts.permissions import is_member, require_mfa
from audit.actions import AuditAction
from delegations.approvals.selectors import approver_ids
from delegations.approvals.services import (
    approval_record,
    approval_refusal,
    approval_summary,
    approval_withdraw,
    approved_end,
    approved_trust_scope,
)
from delegations.lifecycle.transitions import (
    MIN_DURATION,
    START_LEAD,
    DelegationConflict,
    IllegalTransition,
    Status,
    audit_denied,
    check_version,
    clean_reason,
    denial_recorder,
    grant_precheck,
    grant_recheck,
    lock_delegation,
    require_admin,
    transition,
    trust_scope_fields,
    validate_end_after_start,
    validate_ends_at,
)
from delegations.models import (
    ALLOWED_TRANSITIONS,
    DESIRED_PRESENT_STATUSES,
    Delegation,
)
from delegations.outbox import outbox_enqueue_reconcile


def _validate_shorter_end(
    locked: Delegation, ends_at: dt.datetime | None, *, now: dt.datetime
) -> None:
    """An approver may end the access earlier than asked (or give an open-ended request an
    end), never later, and never before its start."""
    if ends_at is None:
        return
    validate_ends_at(ends_at, now=now)
    validate_end_after_start(ends_at, starts_at=locked.starts_at)
    if locked.ends_at is not None and ends_at > locked.ends_at:
        raise ValidationError(
            {
                "ends_at": gettext(
                    "An approver may shorten the access, not lengthen it; leave it empty."
                )
            }
        )


def delegation_approve(
    *,
    delegation: Delegation,
    approved_by: User,
    with_mfa: bool,
    note: str = "",
    expected_version: int | None = None,
    trust_scope: str | None = None,
    ends_at: dt.datetime | None = None,
    as_fleet_account: bool = False,
) -> Delegation:
    """An owner admin approves a request. The worker applies it after the commit.
    `trust_scope` overrides the role's default (whom the trust policy names). A fleet's
    account (`Delegation.fleet`) becomes scheduled instead: the fleet starts it in its turn.

    A second click by the same admin changes nothing; any other admin who decides after the
    first decision gets a DelegationConflict naming it. Nobody approves their own request,
    nor a request of an organisation they belong to; such attempts are refused and audited."""
    current = Delegation.objects.select_related(
        "owner", "partner", "catalog_role", "managed_role__cloud_account"
    ).get(pk=delegation.pk)
    require_admin(user=approved_by, organisation=current.owner, doing=gettext("approve access"))
    _refuse_fleet_account_alone(current, as_fleet_account=as_fleet_account)
    deny = denial_recorder(
        delegation=current, action=AuditAction.DELEGATION_APPROVE_DENIED, actor=approved_by
    )
    # The requester and memberships do not change with the status, so this check needs no
    # lock; the refusal is recorded in its own transaction so that it survives.
    denial = _segregation_problem(delegation=current, user=approved_by)
    if denial is None and current.status == Status.REQUESTED:
        # Approver groups and "nobody twice" (delegations.approvals); checked again under
        # the lock when the approval is recorded.
        denial = approval_refusal(delegation=current, user=approved_by, approving=True)
        if (
            denial is not None
            and not Delegation.objects.filter(pk=current.pk, status=Status.REQUESTED).exists()
        ):
            # Decided since it was read (maybe by this person's own first click, whose
            # approval was just seen): the locked path below says what happened.
            denial = None
    if denial is not None:
        deny(denial)
        raise PermissionDenied(denial)
    # Only a pending request needs the grant checks (a double click or a late second admin
    # is answered below without granting anything).
    checked = None
    if current.status == Status.REQUESTED:
        checked = grant_precheck(delegation=current, audit_refusal=deny)

    with transaction.atomic():
        locked = lock_delegation(delegation)
        if locked.status != Status.REQUESTED:
            if locked.status in DESIRED_PRESENT_STATUSES | {Status.SCHEDULED} and (
                locked.decided_by_id == approved_by.pk
                or approved_by.pk in approver_ids(delegation=locked)
            ):
                return locked.unchanged()  # a double click: the first one already approved it
            raise _decided_conflict(locked)
        check_version(locked, expected_version)
        if checked is None:
            raise DelegationConflict(
                gettext("This request changed; reload the page and decide again.")
            )
        grant_recheck(locked=locked, checked=checked)
        require_mfa(with_mfa=with_mfa)
        now = timezone.now()
        if locked.ends_at is not None and locked.ends_at <= now + MIN_DURATION:
            raise ValidationError(
                gettext(
                    "This request's end date has passed (or is minutes away); reject it and "
                    "ask the partner for new dates."
                )
            )
        note = clean_reason(note, field="note", required=False)
        _validate_shorter_end(locked, ends_at, now=now)
        # The earliest end an approver set applies, so once an earlier approver's end is
        # (nearly) past, no further approval can grant anything but access already over.
        earlier_end = approved_end(delegation=locked)
        if earlier_end is not None and earlier_end <= now + MIN_DURATION:
            raise ValidationError(
                gettext(
                    "The end an earlier approver set has passed (or is minutes away), so access "
                    "approved now would already be over. That approver can withdraw their "
                    "approval so the request is approved afresh; or reject it, and the partner "
                    "can ask again."
                )
            )
        # A quorum rule may need more approvers: this one is recorded, and the request
        # waits (still requested, same version) for the next. Each approver agrees to a trust
        # scope (the one they chose, else the one requested); the narrowest of them applies.
        if not approval_record(
            delegation=locked,
            approver=approved_by,
            with_mfa=with_mfa,
            note=note,
            trust_scope=trust_scope_fields(trust_scope).get("trust_scope", locked.trust_scope),
            ends_at=ends_at,
        ).reached:
            locked.changed = True
            return locked
        shortened = approved_end(delegation=locked)
        scope = approved_trust_scope(delegation=locked) or locked.trust_scope
        # A start that lies ahead makes it scheduled: nothing reaches the cloud before it. A
        # fleet's account waits the same way for its turn in the fleet's rate control.
        scheduled = locked.starts_at > now + START_LEAD or locked.fleet_id is not None
        transition(
            locked,
            to=Status.SCHEDULED if scheduled else Status.APPROVED,
            action=AuditAction.DELEGATION_APPROVED,
            actor=approved_by,
            actor_organisation=locked.owner,
            changes={
                "decided_by": approved_by,
                "decided_at": now,
                "decision_reason": note,
                "approved_with_mfa": with_mfa,
                **({"ends_at": shortened} if shortened is not None else {}),
                "trust_scope": scope,
            },
            metadata={
                **({"ends_at_set_by_approvers": shortened} if shortened is not None else {}),
                "with_mfa": with_mfa,
                "note": note,
                **approval_summary(delegation=locked),
                **(
                    {"scheduled_start": locked.starts_at}
                    if scheduled and locked.fleet_id is None
                    else {}
                ),
                "trust_scope": scope,
            },
        )
        if not scheduled:
            outbox_enqueue_reconcile(managed_role=locked.managed_role)
        return locked


@transaction.atomic
def delegation_approval_withdraw(
    *, delegation: Delegation, withdrawn_by: User, as_fleet_account: bool = False
) -> Delegation:
    """An approver takes back their own approval of a request still waiting for its quorum:
    it needs one more approval again, and an end or trust scope they set no longer applies
    (the way out when that end has passed, instead of rejecting the request). Never someone
    else's approval, nor one that completed the quorum (the request is decided then); a fleet's
    account is withdrawn from with its fleet (`as_fleet_account`, by the fleet's service).
    `changed` is False when this person has no approval on it (a double click).

    Under the row lock, like the approvals themselves, so a withdrawal racing the approval that
    would complete the quorum ends one way: counted without it, or decided before it."""
    locked = lock_delegation(delegation)
    require_admin(
        user=withdrawn_by, organisation=locked.owner, doing=gettext("withdraw an approval")
    )
    _refuse_fleet_account_alone(locked, as_fleet_account=as_fleet_account)
    if locked.status != Status.REQUESTED:
        raise _decided_conflict(locked)
    if not approval_withdraw(delegation=locked, approver=withdrawn_by):
        return locked.unchanged()
    locked.changed = True
    return locked


def _refuse_fleet_account_alone(delegation: Delegation, *, as_fleet_account: bool) -> None:
    """A fleet grant's account is decided with the fleet (`delegations.fleet`), never alone:
    one account approved by itself would wait for a fleet nobody approved."""
    if delegation.fleet_id is not None and not as_fleet_account:
        raise DelegationConflict(
            gettext("This access is one account of a fleet grant: decide it on the fleet's page.")
        )


def _segregation_problem(*, delegation: Delegation, user: User) -> str | None:
    if delegation.requested_by_id == user.pk:
        return gettext("You cannot approve a request you made yourself.")
    if is_member(user, delegation.partner):
        return gettext(
            "You are a member of the requesting partner; another owner admin must approve."
        )
    return None


def _decided_conflict(locked: Delegation) -> DelegationConflict:
    if locked.status == Status.WITHDRAWN:
        by = f" ({locked.withdrawer})" if locked.withdrawer else ""
        return DelegationConflict(
            gettext("The partner%(by)s withdrew this request; there is nothing left to decide.")
            % {"by": by}
        )
    who = locked.decided_by or locked.revoked_by
    status = locked.get_status_display().lower()
    if who:
        return DelegationConflict(
            gettext("This request was already decided by %(who)s: it is %(status)s.")
            % {"who": who, "status": status}
        )
    return DelegationConflict(
        gettext("This request was already decided: it is %(status)s.") % {"status": status}
    )


def delegation_reject(
    *,
    delegation: Delegation,
    rejected_by: User,
    reason: str,
    expected_version: int | None = None,
    as_fleet_account: bool = False,
) -> Delegation:
    """An owner admin turns a request down, saying why. One rejection by anyone who may
    decide it (its approver groups) ends it, whatever approvals it already has."""
    current = Delegation.objects.select_related("owner", "partner", "catalog_role").get(
        pk=delegation.pk
    )
    require_admin(user=rejected_by, organisation=current.owner, doing=gettext("reject a request"))
    _refuse_fleet_account_alone(current, as_fleet_account=as_fleet_account)
    if current.status == Status.REQUESTED:
        denial = approval_refusal(delegation=current, user=rejected_by, approving=False)
        if denial is not None:
            audit_denied(
                delegation=current,
                action=AuditAction.DELEGATION_REJECT_DENIED,
                actor=rejected_by,
                reason=denial,
            )
            raise PermissionDenied(denial)
    with transaction.atomic():
        return _reject(
            delegation=delegation,
            rejected_by=rejected_by,
            reason=reason,
            expected_version=expected_version,
        )


def _reject(
    *,
    delegation: Delegation,
    rejected_by: User,
    reason: str,
    expected_version: int | None,
) -> Delegation:
    locked = lock_delegation(delegation)
    require_admin(user=rejected_by, organisation=locked.owner, doing=gettext("reject a request"))
    if locked.status != Status.REQUESTED:
        if locked.status == Status.REJECTED and locked.decided_by_id == rejected_by.pk:
            return locked.unchanged()
        raise _decided_conflict(locked)
    check_version(locked, expected_version)
    return _owner_ends(locked, _REJECT, by=rejected_by, reason=reason)


@transaction.atomic
def delegation_revoke(
    *,
    delegation: Delegation,
    revoked_by: User,
    reason: str,
    expected_version: int | None = None,
) -> Delegation:
    """An owner admin ends access. The worker removes the partner from the trust policy."""
    locked = lock_delegation(delegation)
    require_admin(user=revoked_by, organisation=locked.owner, doing=gettext("revoke access"))
    if locked.end_cause == Delegation.EndCause.REVOKED and locked.status in (
        Status.REVOKING,
        Status.REVOKED,
    ):
        return locked.unchanged()
    if locked.status == Status.SCHEDULED:
        check_version(locked, expected_version)
        return _owner_ends(locked, _REVOKE_SCHEDULED, by=revoked_by, reason=reason)
    if Status.REVOKING not in ALLOWED_TRANSITIONS[locked.status]:
        raise IllegalTransition(
            gettext("This delegation is %(status)s; there is nothing to revoke.")
            % {"status": locked.get_status_display().lower()}
        )
    if locked.status == Status.FAILED and locked.failed_phase == Delegation.Phase.REVOKING:
        raise IllegalTransition(
            gettext("Removing this access already failed once; use Retry to try again.")
        )
    check_version(locked, expected_version)
    _owner_ends(locked, _REVOKE, by=revoked_by, reason=reason)
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


@dataclasses.dataclass(frozen=True)
class _OwnerEnding:
    """An owner admin ending a delegation with a reason (reject, revoke): the status it goes
    to, the event, and the columns it sets from (who, the cleaned reason, now)."""

    to: str
    action: AuditAction
    changes: Callable[[User, str, dt.datetime], dict[str, Any]]
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _revoke_changes(by: User, reason: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "end_cause": Delegation.EndCause.REVOKED,
        "revoked_by": by,
        "revoke_requested_at": now,
        "revoke_reason": reason,
    }


_REJECT = _OwnerEnding(
    to=Status.REJECTED,
    action=AuditAction.DELEGATION_REJECTED,
    changes=lambda by, reason, now: {
        "decided_by": by,
        "decided_at": now,
        "decision_reason": reason,
        "ended_at": now,
    },
)
# A granted (or applying) delegation: the worker removes the partner, then it is revoked.
_REVOKE = _OwnerEnding(
    to=Status.REVOKING, action=AuditAction.DELEGATION_REVOKE_REQUESTED, changes=_revoke_changes
)
# A scheduled grant never reached the cloud: revoking it ends it at once.
_REVOKE_SCHEDULED = _OwnerEnding(
    to=Status.REVOKED,
    action=AuditAction.DELEGATION_REVOKED,
    changes=lambda by, reason, now: {**_revoke_changes(by, reason, now), "ended_at": now},
    metadata={"before_its_start": True},
)


def _owner_ends(locked: Delegation, ending: _OwnerEnding, *, by: User, reason: str) -> Delegation:
    """Move a locked delegation the way `ending` says, recording the owner admin's reason."""
    reason = clean_reason(reason, field="reason")
    return transition(
        locked,
        to=ending.to,
        action=ending.action,
        actor=by,
        actor_organisation=locked.owner,
        changes=ending.changes(by, reason, timezone.now()),
        metadata={"reason": reason, **ending.metadata},
    )


def _retry_goes_back_to_approved(delegation: Delegation) -> bool:
    return not (delegation.failed_phase == Delegation.Phase.REVOKING or delegation.end_cause)


def delegation_retry(
    *, delegation: Delegation, retried_by: User, expected_version: int | None = None
) -> Delegation:
    """An owner admin asks the worker to try a failed delegation again, in the direction it
    was going (applying or revoking). Applying again grants the role, so it makes the checks
    a fresh approval makes first (`grant_precheck`: the allow-list, the role still offered in
    a connected account, the high-privilege opt-in judged now; outside the lock, it may read
    the cloud), and again under the lock (`grant_recheck`)."""
    current = Delegation.objects.select_related(
        "owner", "partner", "catalog_role__cloud_account", "managed_role__cloud_account"
    ).get(pk=delegation.pk)
    require_admin(user=retried_by, organisation=current.owner, doing=gettext("retry"))
    checked = None
    if current.status == Status.FAILED and _retry_goes_back_to_approved(current):
        checked = grant_precheck(
            delegation=current,
            audit_refusal=denial_recorder(
                delegation=current, action=AuditAction.DELEGATION_RETRY_DENIED, actor=retried_by
            ),
        )
    with transaction.atomic():
        return _retry(
            delegation=delegation,
            retried_by=retried_by,
            expected_version=expected_version,
            checked=checked,
        )


def _retry(
    *,
    delegation: Delegation,
    retried_by: User,
    expected_version: int | None,
    checked: tuple[Any, bool] | None,
) -> Delegation:
    locked = lock_delegation(delegation)
    require_admin(user=retried_by, organisation=locked.owner, doing=gettext("retry"))
    if locked.status != Status.FAILED:
        raise IllegalTransition(
            gettext("Only a failed delegation can be retried; this one is %(status)s.")
            % {"status": locked.get_status_display().lower()}
        )
    check_version(locked, expected_version)
    if not _retry_goes_back_to_approved(locked):
        to = Status.REVOKING
    else:
        to = Status.APPROVED
        if locked.ends_at is not None and locked.ends_at <= timezone.now():
            raise ValidationError(
                gettext("This delegation's end date has passed; it cannot be retried.")
            )
        if checked is None:
            raise DelegationConflict(
                gettext("This delegation changed; reload the page and try again.")
            )
        grant_recheck(locked=locked, checked=checked)
    transition(
        locked,
        to=to,
        action=AuditAction.DELEGATION_RETRIED,
        actor=retried_by,
        actor_organisation=locked.owner,
        metadata={
            "failed_phase": locked.failed_phase,
            "previous_error_code": locked.last_error_code,
            "previous_request_id": locked.last_error_request_id,
        },
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked
