"""Partner-side state changes: staff ↔ RAM users, assignments, session policies, credentials-URI
keys, and the owner's emergency cut-off.

Every function checks who acts, locks what it changes, returns early when the change is already
made, writes its audit event in the same transaction and, when the partner's cloud account
must change, bumps the RAM user's `PartnerUserPolicy.desired_version` and enqueues a reconcile
through the outbox (ids only). None of them calls the cloud, except `staff_link_ram_user`,
which reads ListUsers *before* its transaction to check that the RAM user exists.

Lock order (the same everywhere, so nothing deadlocks): delegation row → membership row →
assignment row → audit chain head → policy rows (`PartnerUserPolicy`, `ManagedRole`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership, Organisation, User, hash_token
from accounts.permissions import is_admin_member, require_mfa
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_chain_lock, audit_record
from cloud import policies
from cloud.errors import CloudError
from delegations.connection.services import partner_ram_users
from delegations.delegation_audit import delegation_audit_record
from delegations.lifecycle.selectors import RoleOccupancy, role_occupancy
from delegations.lifecycle.services import delegation_revoke
from delegations.lifecycle.transitions import IllegalTransition, clean_reason, lock_delegation
from delegations.models import (
    ALLOWED_TRANSITIONS,
    CloudAccount,
    CredentialsUriToken,
    Delegation,
    OutboxMessage,
    PartnerUserPolicy,
    RoleCutOff,
    StaffAssignment,
    StaffRamUserLink,
)
from delegations.outbox import outbox_enqueue_reconcile, outbox_work_waiting
from delegations.partner.log_redaction import URI_KEY_PREFIX
from delegations.partner.session_policy import (
    CUSTOM_POLICY_MAX_INPUT as CUSTOM_POLICY_MAX_INPUT,
)
from delegations.partner.session_policy import (
    MAX_ECS_INSTANCE_IDS as MAX_ECS_INSTANCE_IDS,
)
from delegations.partner.session_policy import (
    session_policy_build as session_policy_build,
)
from delegations.partner_access import (
    broker_user_name,
    is_staff_member,
    partner_cloud_account,
    partner_user_desired_role_arns,
    partner_user_policies_request,
    partner_user_policy_for,
    partner_user_policy_request,
)
from delegations.trust.services import trust_check_room_for

Status = Delegation.Status
PolicyKind = StaffAssignment.SessionPolicyKind

URI_MAX_DAYS = 90
URI_MAX_USABLE_PER_ASSIGNMENT = 5


# --- who may do what -------------------------------------------------------------------------


def _require_admin(
    *, user: User, organisation: Organisation, kind: Organisation.Kind, doing: str
) -> None:
    """PermissionDenied unless `organisation` is of `kind` and `user` is one of its admins."""
    if organisation.kind != kind or not is_admin_member(user, organisation):
        raise PermissionDenied(
            _("Only an admin of %(organisation)s can %(doing)s.")
            % {"organisation": organisation, "doing": doing}
        )


def _require_partner_admin(*, user: User, organisation: Organisation, doing: str) -> None:
    _require_admin(
        user=user, organisation=organisation, kind=Organisation.Kind.PARTNER, doing=doing
    )


def _require_owner_admin(*, user: User, organisation: Organisation, doing: str) -> None:
    _require_admin(user=user, organisation=organisation, kind=Organisation.Kind.OWNER, doing=doing)


def _require_staff_of(*, user: User, organisation: Organisation, field: str = "user") -> None:
    """AZ-03: only the organisation's own staff can be linked or assigned."""
    if not is_staff_member(user=user, organisation=organisation):
        raise ValidationError(
            {
                field: _("Choose a staff member of %(organisation)s.")
                % {"organisation": organisation.name}
            }
        )


def delegation_is_usable(delegation: Delegation, *, now: dt.datetime | None = None) -> bool:
    """Active, and not past its end date (the scheduler may not have ended it yet)."""
    now = now or timezone.now()
    return delegation.status == Status.ACTIVE and (
        delegation.ends_at is None or delegation.ends_at > now
    )


def broker_is_root(cloud_account: CloudAccount) -> bool:
    return (cloud_account.caller_arn or "").endswith(":root")


def linked_ram_user_name(*, organisation: Organisation, user: User) -> str | None:
    """The RAM user the partner linked `user` to, if any."""
    return (
        StaffRamUserLink.objects.filter(organisation=organisation, user=user)
        .values_list("ram_user_name", flat=True)
        .first()
    )


def staff_policy_request(*, partner: Organisation, user: User) -> None:
    """Have the worker bring `sts:AssumeRole` of `user`'s linked RAM user (if any) in line."""
    partner_user_policies_request(
        cloud_account=partner_cloud_account(organisation=partner),
        names=[linked_ram_user_name(organisation=partner, user=user) or ""],
    )


def assignment_lock(assignment_id: Any) -> StaffAssignment:
    """The assignment locked for an update, with what its audit label and snapshot read."""
    return (
        StaffAssignment.objects.select_for_update(of=("self",))
        .select_related("user", "partner", "delegation__owner", "delegation__catalog_role")
        .get(pk=assignment_id)
    )


def partner_user_policies_sync(*, now: dt.datetime | None = None) -> int:
    """The periodic pass (beat): every RAM user whose policy should differ from what the
    worker last applied (delegations that ended by date, people removed, a replaced broker
    key), or whose last reconcile gave up, gets a reconcile unless one is asked for already.
    Reads only, except for the outbox rows. Returns how many."""
    now = now or timezone.now()
    requested = 0
    for account in CloudAccount.objects.filter(
        organisation__kind=Organisation.Kind.PARTNER, is_active=True
    ).select_related("organisation"):
        names = {p.ram_user_name for p in PartnerUserPolicy.objects.filter(cloud_account=account)}
        broker = broker_user_name(account)
        if broker and partner_user_desired_role_arns(
            cloud_account=account, ram_user_name=broker, now=now
        ):
            names.add(broker)
        for name in names:
            policy = partner_user_policy_for(cloud_account=account, ram_user_name=name)
            desired = partner_user_desired_role_arns(
                cloud_account=account, ram_user_name=name, now=now
            )
            # A version left unapplied (a reconcile gave up after its retries) may have written
            # part of a grant before the cloud failed: asked for again, whatever it shows.
            if (
                policy.desired_version == policy.applied_version
                and desired == sorted(policy.applied_role_arns or [])
                and bool(desired) == policy.policy_attached
            ):
                continue
            if outbox_work_waiting(
                kind=OutboxMessage.Kind.RECONCILE_PARTNER_USER, object_id=policy.pk
            ):
                continue  # a reconcile is already asked for
            with transaction.atomic():
                partner_user_policy_request(policy=policy)
            requested += 1
    return requested


# --- staff ↔ RAM users -----------------------------------------------------------------------


def _audit_partner(
    *,
    action: AuditAction,
    actor: User | None,
    organisation: Organisation,
    target: Any,
    related: Iterable[Organisation] = (),
    before: Any = None,
    after: Any = None,
    metadata: dict[str, Any] | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
    target_label: str | None = None,
) -> None:
    audit_record(
        action=action,
        actor=actor,
        organisation=organisation,
        related_organisations=list(related),
        target=target,
        target_label=target_label,
        before=before,
        after=after,
        metadata=metadata,
        outcome=outcome,
    )


def staff_link_ram_user(
    *, organisation: Organisation, user: User, ram_user_name: str, linked_by: User
) -> StaffRamUserLink:
    """Link a staff member to their RAM user in the partner's connected account. The name must
    be one ListUsers returns (matched case-insensitively, stored as RAM spells it)."""
    _require_partner_admin(user=linked_by, organisation=organisation, doing=_("link staff"))
    _require_staff_of(user=user, organisation=organisation)
    name = (ram_user_name or "").strip()
    try:
        policies.validate_ram_user_name(name)
    except policies.PolicyError:
        raise ValidationError(
            {"ram_user_name": _("A RAM user name is 1 to 64 letters, digits, '.', '_' or '-'.")}
        ) from None
    account = partner_cloud_account(organisation=organisation)
    if account is None:
        raise ValidationError(
            _(
                "Connect your organisation's Alibaba Cloud account first: the portal "
                "checks the RAM user there."
            )
        )
    try:
        users = partner_ram_users(cloud_account=account)
    except CloudError as error:
        raise ValidationError(
            _(
                "Alibaba Cloud could not list your RAM users (%(problem)s); nothing was "
                "changed. Try again in a moment."
            )
            % {"problem": error.code or error.message}
        ) from None
    found = next((u.user_name for u in users if u.user_name.lower() == name.lower()), None)
    if found is None:
        raise ValidationError(
            {
                "ram_user_name": _(
                    "There is no RAM user called %(name)s in account %(account_uid)s. Choose "
                    "one of the account's RAM users."
                )
                % {"name": name, "account_uid": account.account_uid}
            }
        )
    with transaction.atomic():
        Organisation.objects.select_for_update().get(pk=organisation.pk)
        taken = (
            StaffRamUserLink.objects.filter(cloud_account=account, ram_user_name__iexact=found)
            .exclude(user=user)
            .select_related("user")
            .first()
        )
        if taken is not None:
            raise ValidationError(
                {
                    "ram_user_name": _("%(found)s is already linked to %(user)s; unlink it first.")
                    % {"found": found, "user": taken.user}
                }
            )
        link = StaffRamUserLink.objects.filter(organisation=organisation, user=user).first()
        previous = link.ram_user_name if link is not None else None
        if link is not None and previous == found:
            return link
        if link is None:
            link = StaffRamUserLink(organisation=organisation, user=user, cloud_account=account)
        link.cloud_account = account
        link.ram_user_name = found
        link.linked_by = linked_by
        link.linked_at = timezone.now()
        link.save()
        _audit_partner(
            action=AuditAction.STAFF_RAM_USER_LINKED,
            actor=linked_by,
            organisation=organisation,
            target=link,
            target_label=f"{user.email} as {found}",
            before={"ram_user_name": previous},
            after={"ram_user_name": found},
            metadata={"staff": user.email, "account_uid": account.account_uid},
        )
        if StaffAssignment.objects.filter(
            user=user, partner=organisation, ended_at__isnull=True
        ).exists():
            partner_user_policies_request(
                cloud_account=account, names=[n for n in (previous, found) if n]
            )
    return link


def _unlink(
    link: StaffRamUserLink,
    *,
    organisation: Organisation,
    user: User,
    unlinked_by: User | None,
    **why: str,
) -> None:
    """Forget the link (audited; `why` goes into the event's metadata) and have the worker take
    `sts:AssumeRole` away from its RAM user."""
    _audit_partner(
        action=AuditAction.STAFF_RAM_USER_UNLINKED,
        actor=unlinked_by,
        organisation=organisation,
        target=link,
        target_label=f"{user.email} as {link.ram_user_name}",
        before={"ram_user_name": link.ram_user_name},
        metadata={"staff": user.email, **why},
    )
    partner_user_policies_request(cloud_account=link.cloud_account, names=[link.ram_user_name])
    link.delete()


def staff_unlink_ram_user(*, link: StaffRamUserLink, unlinked_by: User) -> None:
    organisation = link.organisation
    _require_partner_admin(user=unlinked_by, organisation=organisation, doing=_("unlink staff"))
    with transaction.atomic():
        locked = StaffRamUserLink.objects.select_for_update().filter(pk=link.pk).first()
        if locked is None:
            return
        _unlink(locked, organisation=organisation, user=locked.user, unlinked_by=unlinked_by)


# --- assignments -----------------------------------------------------------------------------


def _assignment_snapshot(assignment: StaffAssignment) -> dict[str, Any]:
    return {
        "staff": assignment.user.email,
        "session_policy_kind": assignment.session_policy_kind,
        "ecs_instance_ids": list(assignment.ecs_instance_ids or []),
        "ended": assignment.ended_at is not None,
    }


def _assignment_label(assignment: StaffAssignment) -> str:
    delegation = assignment.delegation
    return f"{assignment.user.email} on {delegation.catalog_role.role_name} of {delegation.owner}"


def staff_assign(
    *,
    delegation: Delegation,
    user: User,
    assigned_by: User,
    session_policy_kind: str = "",
    ecs_instance_ids: Iterable[str] | str = (),
    custom_policy: str = "",
) -> StaffAssignment:
    """A partner admin lets one of their staff use an active delegation. Their RAM user (when
    linked) gets `sts:AssumeRole` on exactly the role, through the outbox and the worker,
    unless a session policy narrows the assignment: a narrowed person uses the role only
    through credentials the portal issues, which carry the policy."""
    partner = delegation.partner
    _require_partner_admin(user=assigned_by, organisation=partner, doing=_("assign staff"))
    if user.pk == assigned_by.pk:
        raise PermissionDenied(_("Nobody assigns themselves; ask another admin."))
    _require_staff_of(user=user, organisation=partner)
    kind, document, ids = session_policy_build(
        kind=session_policy_kind,
        owner_account_uid=delegation.managed_role.cloud_account.account_uid,
        ecs_instance_ids=ecs_instance_ids,
        custom_policy=custom_policy,
    )
    with transaction.atomic():
        locked = lock_delegation(delegation)
        if not delegation_is_usable(locked):
            raise ValidationError(
                _("This delegation is %(state)s; staff can be assigned only while it is active.")
                % {"state": locked.get_status_display().lower()}
            )
        existing = StaffAssignment.objects.filter(
            delegation=locked, user=user, ended_at__isnull=True
        ).first()
        if existing is not None:
            if existing.session_policy_kind == kind and existing.session_policy == document:
                return existing
            raise ValidationError(
                {
                    "user": _("%(user)s is already assigned; change their session policy instead.")
                    % {"user": user}
                }
            )
        trust_check_room_for(delegation=locked, user=user)
        assignment = StaffAssignment.objects.create(
            delegation=locked,
            partner=partner,
            user=user,
            session_policy_kind=kind,
            session_policy=document,
            ecs_instance_ids=ids,
            assigned_by=assigned_by,
        )
        _audit_partner(
            action=AuditAction.STAFF_ASSIGNED,
            actor=assigned_by,
            organisation=partner,
            related=[locked.owner],
            target=assignment,
            target_label=_assignment_label(assignment),
            after=_assignment_snapshot(assignment),
            metadata={
                "delegation": str(locked.pk),
                "role_arn": locked.managed_role.role_arn,
                "ram_user_name": linked_ram_user_name(organisation=partner, user=user),
            },
        )
        staff_policy_request(partner=partner, user=user)
    return assignment


def staff_assignment_change_policy(
    *,
    assignment: StaffAssignment,
    changed_by: User,
    session_policy_kind: str,
    ecs_instance_ids: Iterable[str] | str = (),
    custom_policy: str = "",
) -> StaffAssignment:
    """Narrow (or widen back to the role's) what credentials for this person may do. Applies to
    credentials issued from now on. Narrowing takes `sts:AssumeRole` on the role away from the
    person's linked RAM user, widening back gives it again (through the outbox and the
    worker); a change from one session policy to another changes nothing in the cloud."""
    partner = assignment.partner
    _require_partner_admin(
        user=changed_by, organisation=partner, doing=_("change a session policy")
    )
    if assignment.user_id == changed_by.pk:
        raise PermissionDenied(_("Nobody changes their own access; ask another admin."))
    kind, document, ids = session_policy_build(
        kind=session_policy_kind,
        owner_account_uid=assignment.delegation.managed_role.cloud_account.account_uid,
        ecs_instance_ids=ecs_instance_ids,
        custom_policy=custom_policy,
    )
    with transaction.atomic():
        locked = (
            StaffAssignment.objects.select_for_update(of=("self",))
            .select_related("user", "delegation__owner", "delegation__catalog_role")
            .get(pk=assignment.pk)
        )
        if locked.ended_at is not None:
            raise ValidationError(_("This assignment has ended."))
        if locked.session_policy_kind == kind and locked.session_policy == document:
            return locked
        before = _assignment_snapshot(locked)
        was_narrowed = locked.is_narrowed
        locked.session_policy_kind = kind
        locked.session_policy = document
        locked.ecs_instance_ids = ids
        locked.save(
            update_fields=[
                "session_policy_kind",
                "session_policy",
                "ecs_instance_ids",
                "updated_at",
            ]
        )
        _audit_partner(
            action=AuditAction.STAFF_SESSION_POLICY_CHANGED,
            actor=changed_by,
            organisation=partner,
            related=[locked.delegation.owner],
            target=locked,
            target_label=_assignment_label(locked),
            before=before,
            after=_assignment_snapshot(locked),
            metadata={"delegation": str(locked.delegation_id)},
        )
        if locked.is_narrowed != was_narrowed:
            staff_policy_request(partner=partner, user=locked.user)
    return locked


def assignment_end(
    locked: StaffAssignment,
    *,
    ended_by: User | None,
    reason: str,
    now: dt.datetime,
    metadata: dict[str, Any] | None = None,
) -> None:
    """End an open, locked assignment: its URI keys stop and the end is audited."""
    before = _assignment_snapshot(locked)
    locked.ended_at = now
    locked.ended_by = ended_by
    locked.end_reason = reason
    locked.save(update_fields=["ended_at", "ended_by", "end_reason", "updated_at"])
    revoked = CredentialsUriToken.objects.filter(assignment=locked, revoked_at__isnull=True).update(
        revoked_at=now, revoked_by=ended_by
    )
    _audit_partner(
        action=AuditAction.STAFF_UNASSIGNED,
        actor=ended_by,
        organisation=locked.partner,
        related=[locked.delegation.owner],
        target=locked,
        target_label=_assignment_label(locked),
        before=before,
        after=_assignment_snapshot(locked),
        metadata={
            "delegation": str(locked.delegation_id),
            "end_reason": reason,
            "uri_keys_revoked": revoked,
            **(metadata or {}),
        },
    )


def staff_unassign(*, assignment: StaffAssignment, unassigned_by: User) -> StaffAssignment:
    """Take the delegation away from one person: their URI keys stop at once, their RAM user
    loses `sts:AssumeRole` on the role through the worker."""
    partner = assignment.partner
    _require_partner_admin(user=unassigned_by, organisation=partner, doing=_("unassign staff"))
    with transaction.atomic():
        locked = assignment_lock(assignment.pk)
        if locked.ended_at is not None:
            return locked
        assignment_end(
            locked,
            ended_by=unassigned_by,
            reason=StaffAssignment.EndReason.UNASSIGNED,
            now=timezone.now(),
        )
        staff_policy_request(partner=partner, user=locked.user)
    return locked


def staff_member_removed(*, membership: Membership, removed_by: User | None) -> int:
    """Called by `accounts.services.membership_remove` inside its transaction (after it locked
    the membership): the person's assignments end, their URI keys stop, their RAM user link
    goes and the worker takes `sts:AssumeRole` away. Returns how many assignments ended."""
    organisation = membership.organisation
    if not organisation.is_partner:
        return 0
    now = timezone.now()
    open_ids = list(
        StaffAssignment.objects.filter(
            user=membership.user, partner=organisation, ended_at__isnull=True
        ).values_list("pk", flat=True)
    )
    for assignment_id in open_ids:
        locked = assignment_lock(assignment_id)
        if locked.ended_at is None:
            assignment_end(
                locked,
                ended_by=removed_by,
                reason=StaffAssignment.EndReason.MEMBER_REMOVED,
                now=now,
            )
    CredentialsUriToken.objects.filter(
        user=membership.user, partner=organisation, revoked_at__isnull=True
    ).update(revoked_at=now, revoked_by=removed_by)
    link = StaffRamUserLink.objects.filter(organisation=organisation, user=membership.user).first()
    if link is not None:
        _unlink(
            link,
            organisation=organisation,
            user=membership.user,
            unlinked_by=removed_by,
            because="member removed",
        )
    return len(open_ids)


# --- credentials-URI keys --------------------------------------------------------------------


def credentials_uri_key_hash(raw_key: str) -> str:
    return hash_token(raw_key)


def credentials_uri_create(
    *,
    assignment: StaffAssignment,
    user: User,
    label: str = "",
    valid_days: int = 30,
    duration_seconds: int = 3600,
) -> tuple[CredentialsUriToken, str]:
    """A new personal credentials-URI key for the person's own assignment. Returns the row and
    the raw key, which is shown once and never stored (only its SHA-256)."""
    if assignment.user_id != user.pk:
        raise PermissionDenied(_("A credentials URI is personal: make your own."))
    if not isinstance(valid_days, int) or not 1 <= valid_days <= URI_MAX_DAYS:
        raise ValidationError({"valid_days": _("Choose 1 to %(n)s days.") % {"n": URI_MAX_DAYS}})
    label = (label or "").strip()
    if len(label) > 100:
        raise ValidationError({"label": _("Keep the label under 100 characters.")})
    now = timezone.now()
    with transaction.atomic():
        delegation = lock_delegation(assignment.delegation)
        if not is_staff_member(user=user, organisation=delegation.partner):
            raise PermissionDenied(_("You are no longer staff of this organisation."))
        locked = StaffAssignment.objects.select_for_update(of=("self",)).get(pk=assignment.pk)
        if locked.ended_at is not None or not delegation_is_usable(delegation, now=now):
            raise ValidationError(_("This access is no longer yours to use."))
        usable = CredentialsUriToken.objects.filter(
            assignment=locked, revoked_at__isnull=True, expires_at__gt=now
        ).count()
        if usable >= URI_MAX_USABLE_PER_ASSIGNMENT:
            raise ValidationError(
                _("You already have %(usable)s credentials URIs for this access; revoke one first.")
                % {"usable": usable}
            )
        expires_at = now + dt.timedelta(days=valid_days)
        if delegation.ends_at is not None:
            expires_at = min(expires_at, delegation.ends_at)
        raw_key = URI_KEY_PREFIX + secrets.token_urlsafe(32)
        token = CredentialsUriToken.objects.create(
            assignment=locked,
            delegation=delegation,
            user=user,
            partner=delegation.partner,
            token_hash=credentials_uri_key_hash(raw_key),
            token_hint=raw_key[-4:],
            label=label,
            duration_seconds=duration_seconds,
            expires_at=expires_at,
        )
        _audit_partner(
            action=AuditAction.CREDENTIALS_URI_CREATED,
            actor=user,
            organisation=delegation.partner,
            related=[delegation.owner],
            target=token,
            target_label=f"Credentials URI …{token.token_hint} of {user.email}",
            after={"expires_at": expires_at, "label": label, "hint": token.token_hint},
            metadata={"delegation": str(delegation.pk), "uri_id": str(token.pk)},
        )
    return token, raw_key


def credentials_uri_revoke(
    *, uri_key: CredentialsUriToken, revoked_by: User
) -> CredentialsUriToken:
    """Its owner, or an admin of their organisation, switches a key off."""
    if uri_key.user_id != revoked_by.pk:
        _require_partner_admin(
            user=revoked_by, organisation=uri_key.partner, doing=_("revoke someone's URI")
        )
    with transaction.atomic():
        locked = CredentialsUriToken.objects.select_for_update(of=("self",)).get(pk=uri_key.pk)
        if locked.revoked_at is not None:
            return locked
        locked.revoked_at = timezone.now()
        locked.revoked_by = revoked_by
        locked.save(update_fields=["revoked_at", "revoked_by"])
        _audit_partner(
            action=AuditAction.CREDENTIALS_URI_REVOKED,
            actor=revoked_by,
            organisation=locked.partner,
            related=[locked.delegation.owner],
            target=locked,
            target_label=f"Credentials URI …{locked.token_hint} of {locked.user.email}",
            metadata={"delegation": str(locked.delegation_id), "uri_id": str(locked.pk)},
        )
    return locked


# --- the owner's emergency cut-off -----------------------------------------------------------


def role_cut_off(
    *, delegation: Delegation, cut_off_by: User, reason: str, with_mfa: bool
) -> RoleCutOff:
    """Detach the role's permission policies now (credentials already issued stop working at
    their next call) and revoke this delegation if it is still in force. The role stays
    without policies until an owner admin lifts the cut-off; other partners on the same role
    lose their permissions too, which the page says before anyone confirms."""
    _require_owner_admin(user=cut_off_by, organisation=delegation.owner, doing=_("cut off a role"))
    require_mfa(with_mfa=with_mfa)
    reason = clean_reason(reason, field="reason")
    with transaction.atomic():
        locked = lock_delegation(delegation)
        existing = RoleCutOff.objects.filter(
            managed_role=locked.managed_role, lifted_at__isnull=True
        ).first()
        if existing is not None:
            return existing.unchanged()
        cut_off = RoleCutOff.objects.create(
            managed_role=locked.managed_role,
            delegation=locked,
            reason=reason,
            cut_off_by=cut_off_by,
        )
        others = (
            Delegation.objects.filter(managed_role=locked.managed_role, status=Status.ACTIVE)
            .exclude(pk=locked.pk)
            .count()
        )
        delegation_audit_record(
            locked,
            AuditAction.DELEGATION_CUT_OFF,
            actor=cut_off_by,
            after={"policies_detached": locked.catalog_role.policies},
            metadata={
                "reason": reason,
                "role_arn": locked.managed_role.role_arn,
                "with_mfa": with_mfa,
                "other_active_delegations_on_role": others,
            },
        )
        if Status.REVOKING in _revocable(locked):
            # Already ending or ended meanwhile: the cut-off alone is what is needed.
            with contextlib.suppress(IllegalTransition):
                delegation_revoke(
                    delegation=locked, revoked_by=cut_off_by, reason=f"Emergency cut-off: {reason}"
                )
        outbox_enqueue_reconcile(managed_role=locked.managed_role)
    cut_off.changed = True
    return cut_off


def _revocable(delegation: Delegation) -> frozenset[str]:
    if delegation.end_cause or delegation.status in (Status.REVOKING, Status.REVOKED):
        return frozenset()
    return ALLOWED_TRANSITIONS[delegation.status]


@dataclass(frozen=True)
class CutOffLift:
    """What lifting a cut-off did: the policies go back for `occupancy.partners`; with none,
    nothing was sent to the worker (and `occupancy.retirement` says if the role is gone)."""

    cut_off: RoleCutOff
    changed: bool
    occupancy: RoleOccupancy


def role_cut_off_lift(*, cut_off: RoleCutOff, lifted_by: User, with_mfa: bool) -> CutOffLift:
    """End the cut-off. The role's permission policies go back only for partners still on it;
    a role nobody is on keeps none until a new grant needs them (and a deleted role is not
    created again), so then no work is sent to the worker at all."""
    owner = cut_off.managed_role.cloud_account.organisation
    _require_owner_admin(user=lifted_by, organisation=owner, doing=_("lift a cut-off"))
    require_mfa(with_mfa=with_mfa)
    with transaction.atomic():
        # The project's lock order: delegation rows, audit chain head, then the rest. Who is
        # on the role is read only once the chain is held, so a grant committing meanwhile is
        # either seen here or waits for this lift (and its reconcile plans without the cut-off).
        list(
            Delegation.objects.select_for_update()
            .filter(managed_role_id=cut_off.managed_role_id)
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        audit_chain_lock()
        locked = (
            RoleCutOff.objects.select_for_update(of=("self",))
            .select_related("managed_role__cloud_account", "delegation__partner")
            .get(pk=cut_off.pk)
        )
        occupancy = role_occupancy(managed_role=locked.managed_role)
        if locked.lifted_at is not None:
            return CutOffLift(cut_off=locked, changed=False, occupancy=occupancy)
        locked.lifted_at = timezone.now()
        locked.lifted_by = lifted_by
        locked.save(update_fields=["lifted_at", "lifted_by"])
        audit_record(
            action=AuditAction.DELEGATION_CUT_OFF_LIFTED,
            actor=lifted_by,
            organisation=owner,
            related_organisations=[locked.delegation.partner],
            target=locked.delegation,
            metadata={
                "role_arn": locked.managed_role.role_arn,
                "cut_off": str(locked.pk),
                "policies_reattached_for": list(occupancy.partners),
                "role_retired": occupancy.retirement is not None,
            },
        )
        if occupancy.anyone:
            outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return CutOffLift(cut_off=locked, changed=True, occupancy=occupancy)
