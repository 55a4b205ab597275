"""Changing whom a delegation's trust policy names. Every change locks the delegation, writes
the audit event in the same transaction and, when the role should change, bumps the owner's
role and enqueues its reconcile (one reconcile converges the whole trust policy, so a scope
switch never leaves a window with both the old and the new principals, nor drops principals
the portal did not add)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Organisation, User
from accounts.permissions import is_admin_member, require_mfa
from audit.actions import AuditAction
from audit.models import AuditEvent
from cloud import policies
from cloud.errors import CloudError
from core.crypto import decrypt_secret, encrypt_secret
from delegations.connection.services import cloud_account_client
from delegations.delegation_audit import delegation_audit_record
from delegations.models import (
    DESIRED_PRESENT_STATUSES,
    FINAL_STATUSES,
    MAX_NAMED_PEOPLE_CAP,
    CloudAccount,
    Delegation,
    StaffRamUserLink,
    TrustedPerson,
    TrustScope,
)
from delegations.outbox import outbox_enqueue_reconcile
from delegations.role_state import named_ram_users
from delegations.trust.selectors import portal_brokered_use

# 32 URL-safe characters: well inside ExternalId's 2-1224 of [\w+=,.@:/-].
_EXTERNAL_ID_BYTES = 24


def new_external_id() -> str:
    """A fresh ExternalId. Only the portal makes one; nothing a form sends is ever used."""
    return policies.validate_external_id(secrets.token_urlsafe(_EXTERNAL_ID_BYTES))


def _lock(delegation: Delegation) -> Delegation:
    return Delegation.objects.locked_for_change().get(pk=delegation.pk)


def _reconcile_if_live(delegation: Delegation) -> None:
    if delegation.status in DESIRED_PRESENT_STATUSES:
        outbox_enqueue_reconcile(managed_role=delegation.managed_role)


def _audit(
    *,
    action: AuditAction,
    actor: User | None,
    delegation: Delegation,
    acting_for: Organisation,
    target: Any = None,
    target_label: str | None = None,
    before: Any = None,
    after: Any = None,
    metadata: dict[str, Any] | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
) -> None:
    delegation_audit_record(
        delegation,
        action,
        actor=actor,
        actor_organisation=acting_for,
        target=target,
        target_label=target_label,
        before=before,
        after=after,
        metadata={"delegation": str(delegation.pk), **(metadata or {})},
        outcome=outcome,
    )


def _scope_snapshot(delegation: Delegation) -> dict[str, Any]:
    return {
        "trust_scope": delegation.trust_scope,
        "named_people_cap": delegation.named_people_cap,
        "external_id_required": bool(delegation.external_id_ciphertext),
        "named_scope_trusts_broker": delegation.named_scope_trusts_broker,
    }


def _clean_cap(cap: object) -> int:
    if isinstance(cap, bool) or not isinstance(cap, int) or not 1 <= cap <= MAX_NAMED_PEOPLE_CAP:
        raise ValidationError(
            {
                "named_people_cap": _("Choose 1 to %(max)s named people.")
                % {"max": MAX_NAMED_PEOPLE_CAP}
            }
        )
    return cap


def trust_scope_set(
    *,
    delegation: Delegation,
    changed_by: User,
    scope: str,
    named_people_cap: int,
    require_external_id: bool,
    with_mfa: bool,
    trust_broker: bool | None = None,
) -> Delegation:
    """An owner admin chooses whom the delegation's trust policy names. Narrowing to fewer
    people than are already named is refused (nothing changes); the ExternalId is generated
    here when first required and forgotten when no longer required.

    `trust_broker`: whether a named scope also trusts the partner's broker (the portal's way to
    issue credentials and console sessions). None decides it from the delegation's use: only
    when the portal has brokered for it (`portal_brokered_use`); the owner's True or False
    overrides that."""
    if scope not in TrustScope.values:
        raise ValidationError({"trust_scope": _("Choose one of the trust scopes.")})
    cap = _clean_cap(named_people_cap)
    if not is_admin_member(changed_by, delegation.owner):
        raise PermissionDenied(_("Only the owner's admins choose whom the trust policy names."))
    with transaction.atomic():
        locked = _lock(delegation)
        if locked.status in FINAL_STATUSES:
            raise ValidationError(_("This delegation has ended; its trust scope stays as it was."))
        require_mfa(with_mfa=with_mfa)
        before = _scope_snapshot(locked)
        locked.trust_scope = scope
        locked.named_people_cap = cap
        locked.named_scope_trusts_broker = (
            portal_brokered_use(locked) if trust_broker is None else bool(trust_broker)
        )
        if scope != TrustScope.PARTNER_ACCOUNT:
            named = named_ram_users(locked, capped=False)
            if len(named) > cap:
                raise ValidationError(
                    {
                        "named_people_cap": _(
                            "%(count)s people are already named; raise the cap to at least "
                            "%(count)s or remove some first."
                        )
                        % {"count": len(named)}
                    }
                )
        if require_external_id and not locked.external_id_ciphertext:
            locked.external_id_ciphertext = encrypt_secret(new_external_id())
            locked.external_id_shown_at = None
        elif not require_external_id:
            locked.external_id_ciphertext = ""
        after = _scope_snapshot(locked)
        if after == before:
            return locked.unchanged()
        locked.save(
            update_fields=[
                "trust_scope",
                "named_people_cap",
                "named_scope_trusts_broker",
                "external_id_ciphertext",
                "external_id_shown_at",
                "updated_at",
            ]
        )
        _audit(
            action=AuditAction.TRUST_SCOPE_CHANGED,
            actor=changed_by,
            delegation=locked,
            acting_for=locked.owner,
            before=before,
            after=after,
            metadata={
                "with_mfa": with_mfa,
                # Who decided the broker: the rule (the delegation's use) or the owner.
                "broker_decided_by": "use" if trust_broker is None else "owner",
            },
        )
        _reconcile_if_live(locked)
        locked.changed = True
        return locked


def _partner_account(partner: Organisation) -> CloudAccount:
    account = CloudAccount.objects.filter(organisation=partner, is_active=True).first()
    if account is None:
        raise ValidationError(
            _(
                "Connect your organisation's Alibaba Cloud account first: the portal checks the "
                "RAM user there."
            )
        )
    return account


def _existing_ram_user(account: CloudAccount, name: str) -> str:
    """The RAM user as the partner's account spells it (GetUser through the partner's key)."""
    try:
        found = cloud_account_client(cloud_account=account).get_user(name)
    except CloudError as error:
        raise ValidationError(
            _(
                "Alibaba Cloud could not check the RAM user (%(code)s); nothing was changed. "
                "Try again in a moment."
            )
            % {"code": error.code or error.message}
        ) from None
    if found is None:
        raise ValidationError(
            {
                "ram_user_name": _("There is no RAM user called %(name)s in account %(uid)s.")
                % {"name": name, "uid": account.account_uid}
            }
        )
    return found.user_name


def trusted_person_propose(
    *, delegation: Delegation, proposed_by: User, ram_user_name: str
) -> TrustedPerson:
    """A partner admin proposes one of the partner account's RAM users for an owner-approved
    scope. The name must be a valid RAM user name that exists (GetUser); the cap counts the
    people pending and approved."""
    name = (ram_user_name or "").strip()
    try:
        policies.validate_ram_user_name(name)
    except policies.PolicyError as error:
        raise ValidationError({"ram_user_name": str(error)}) from None
    if not is_admin_member(proposed_by, delegation.partner):
        raise PermissionDenied(_("Only the partner's admins propose named people."))
    delegation = Delegation.objects.select_related("partner").get(pk=delegation.pk)
    if delegation.trust_scope != TrustScope.NAMED_OWNER_APPROVED:
        raise ValidationError(_("The owner has not asked to approve named people here."))
    found = _existing_ram_user(_partner_account(delegation.partner), name)
    with transaction.atomic():
        locked = _lock(delegation)
        if locked.status in FINAL_STATUSES or locked.trust_scope != TrustScope.NAMED_OWNER_APPROVED:
            raise ValidationError(_("This delegation no longer takes named people."))
        open_people = TrustedPerson.objects.filter(
            delegation=locked,
            status__in=[TrustedPerson.Status.PENDING, TrustedPerson.Status.APPROVED],
        )
        existing = open_people.filter(ram_user_name__iexact=found).first()
        if existing is not None:
            return existing
        if open_people.count() >= locked.named_people_cap:
            raise ValidationError(
                {
                    "ram_user_name": _(
                        "The owner allows at most %(cap)s named people on this access; remove "
                        "someone first."
                    )
                    % {"cap": locked.named_people_cap}
                }
            )
        # The portal person behind the RAM user, when the partner linked one.
        linked = StaffRamUserLink.objects.filter(
            organisation_id=locked.partner_id, ram_user_name__iexact=found
        ).first()
        person = TrustedPerson.objects.create(
            delegation=locked,
            ram_user_name=found,
            proposed_by=proposed_by,
            person=linked.user if linked else None,
        )
        _audit(
            action=AuditAction.TRUST_PERSON_PROPOSED,
            actor=proposed_by,
            delegation=locked,
            acting_for=locked.partner,
            target=person,
            target_label=found,
            after={"ram_user_name": found, "status": person.status},
        )
        return person


def _lock_person(person: TrustedPerson) -> tuple[TrustedPerson, Delegation]:
    delegation = _lock(person.delegation)
    locked = TrustedPerson.objects.select_for_update().get(pk=person.pk)
    locked.delegation = delegation
    return locked, delegation


# A named person is decided while the access is asked for or granted, like the delegation
# itself: never once it was rejected, revoked or expired, nor while it failed or is going.
DECIDABLE_STATUSES = frozenset(
    {
        Delegation.Status.REQUESTED,
        Delegation.Status.SCHEDULED,
        Delegation.Status.APPROVED,
        Delegation.Status.APPLYING,
        Delegation.Status.ACTIVE,
    }
)


def trusted_person_decision_problem(delegation: Delegation, *, approve: bool) -> str | None:
    """Why nobody may decide on `delegation`'s named people now (approving, or refusing), or
    None. Reads only the delegation: the caller holds its row, or checks again under the
    lock."""
    if delegation.status not in DECIDABLE_STATUSES:
        return _("This access is %(status)s; its named people can no longer be decided.") % {
            "status": delegation.get_status_display().lower()
        }
    if delegation.ends_at is not None and delegation.ends_at <= timezone.now():
        return _("This access has reached its end; its named people can no longer be decided.")
    if approve and delegation.trust_scope != TrustScope.NAMED_OWNER_APPROVED:
        return _("This delegation no longer takes named people.")
    return None


def trusted_person_decide(
    *,
    person: TrustedPerson,
    decided_by: User,
    approve: bool,
    with_mfa: bool,
    decider_check: Callable[[Delegation], None],
    reason: str = "",
) -> TrustedPerson:
    """An owner admin approves (step-up, MFA when required) or refuses a proposed person,
    while the delegation is asked for or granted (`trusted_person_decision_problem`).

    Who may decide is the delegation's approval rules, which this area does not know:
    `decider_check(locked delegation)` raises when `decided_by` may not (and may check the
    grant again), under the delegation's row lock. The lifecycle passes it
    (`delegations.lifecycle.named_people`); call that, not this."""
    if not is_admin_member(decided_by, person.delegation.owner):
        raise PermissionDenied(_("Only the owner's admins decide on named people."))
    reason = (reason or "").strip()
    if len(reason) > 2000:
        raise ValidationError({"reason": _("Keep it under 2000 characters.")})
    if not approve and not reason:
        raise ValidationError({"reason": _("Please give a reason.")})
    with transaction.atomic():
        locked, delegation = _lock_person(person)
        target_status = TrustedPerson.Status.APPROVED if approve else TrustedPerson.Status.REJECTED
        if locked.status == target_status and locked.decided_by_id == decided_by.pk:
            return locked  # a double click
        if locked.status != TrustedPerson.Status.PENDING:
            raise ValidationError(
                _("%(name)s is already %(status)s.")
                % {"name": locked.ram_user_name, "status": locked.get_status_display().lower()}
            )
        problem = trusted_person_decision_problem(delegation, approve=approve)
        if problem is not None:
            raise ValidationError(problem)
        decider_check(delegation)
        if approve:
            require_mfa(with_mfa=with_mfa)
            approved = TrustedPerson.objects.filter(
                delegation=delegation, status=TrustedPerson.Status.APPROVED
            ).count()
            if approved >= delegation.named_people_cap:
                raise ValidationError(
                    _("The cap of %(cap)s named people is reached; raise it first.")
                    % {"cap": delegation.named_people_cap}
                )
        locked.status = target_status
        locked.decided_by = decided_by
        locked.decided_at = timezone.now()
        locked.decision_reason = reason
        locked.decided_with_mfa = with_mfa and approve
        locked.save()
        _audit(
            action=(
                AuditAction.TRUST_PERSON_APPROVED if approve else AuditAction.TRUST_PERSON_REJECTED
            ),
            actor=decided_by,
            delegation=delegation,
            acting_for=delegation.owner,
            target=locked,
            target_label=locked.ram_user_name,
            before={"status": TrustedPerson.Status.PENDING},
            after={"status": locked.status},
            metadata={"with_mfa": locked.decided_with_mfa, "reason": reason},
        )
        if approve:
            _reconcile_if_live(delegation)
        return locked


def trusted_person_decision_denied(
    *, person: TrustedPerson, decided_by: User, approve: bool, reason: str
) -> None:
    """Record a refused decision on a named person, in its own transaction so that it
    survives the refusal."""
    delegation = person.delegation
    with transaction.atomic():
        _audit(
            action=AuditAction.TRUST_PERSON_DECISION_DENIED,
            actor=decided_by,
            delegation=delegation,
            acting_for=delegation.owner,
            target=person,
            target_label=person.ram_user_name,
            metadata={"approve": approve, "denied_because": reason},
            outcome=AuditEvent.Outcome.DENIED,
        )


def trusted_person_remove(*, person: TrustedPerson, removed_by: User) -> TrustedPerson:
    """Either side's admin takes a named person out; the worker removes them from the trust
    policy in the next reconcile."""
    delegation = person.delegation
    if not (
        is_admin_member(removed_by, delegation.owner)
        or is_admin_member(removed_by, delegation.partner)
    ):
        raise PermissionDenied(_("Only the owner's or the partner's admins remove named people."))
    with transaction.atomic():
        locked, delegation = _lock_person(person)
        if locked.status in (TrustedPerson.Status.REMOVED, TrustedPerson.Status.REJECTED):
            return locked
        before = locked.status
        locked.status = TrustedPerson.Status.REMOVED
        locked.save(update_fields=["status"])
        acting_for = (
            delegation.owner
            if is_admin_member(removed_by, delegation.owner)
            else delegation.partner
        )
        _audit(
            action=AuditAction.TRUST_PERSON_REMOVED,
            actor=removed_by,
            delegation=delegation,
            acting_for=acting_for,
            target=locked,
            target_label=locked.ram_user_name,
            before={"status": before},
            after={"status": locked.status},
        )
        if before == TrustedPerson.Status.APPROVED:
            _reconcile_if_live(delegation)
        return locked


def trust_check_room_for(*, delegation: Delegation, user: User) -> None:
    """Refuse assigning one more person with a RAM user when a partner-managed scope is at
    its cap (nothing is written). Runs on the locked delegation, before the assignment."""
    if delegation.trust_scope != TrustScope.NAMED_PARTNER_MANAGED:
        return
    if not StaffRamUserLink.objects.filter(
        organisation_id=delegation.partner_id, user=user
    ).exists():
        return  # not named anyway: only a linked RAM user can be in a trust policy
    if len(named_ram_users(delegation, capped=False)) >= delegation.named_people_cap:
        raise ValidationError(
            {
                "user": _(
                    "%(owner)s trusts at most %(cap)s named people on this access; unassign "
                    "someone first."
                )
                % {"owner": delegation.owner.name, "cap": delegation.named_people_cap}
            }
        )


def external_id_reveal(*, delegation: Delegation, shown_to: User) -> str | None:
    """The ExternalId in clear, once, for a partner admin (audited); None when none is
    required. A second time is refused: the owner issues a new one (off, then on)."""
    if not is_admin_member(shown_to, delegation.partner):
        raise PermissionDenied(_("Only the partner's admins see the ExternalId."))
    with transaction.atomic():
        locked = _lock(delegation)
        if not locked.external_id_ciphertext:
            return None
        if locked.external_id_shown_at is not None:
            raise ValidationError(
                _(
                    "The ExternalId was shown on %(when)s and is shown only once; ask %(owner)s "
                    "for a new one."
                )
                % {
                    "when": f"{locked.external_id_shown_at:%Y-%m-%d %H:%M} UTC",
                    "owner": locked.owner.name,
                }
            )
        locked.external_id_shown_at = timezone.now()
        locked.save(update_fields=["external_id_shown_at", "updated_at"])
        _audit(
            action=AuditAction.TRUST_EXTERNAL_ID_SHOWN,
            actor=shown_to,
            delegation=locked,
            acting_for=locked.partner,
        )
        return decrypt_secret(locked.external_id_ciphertext)
