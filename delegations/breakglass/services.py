"""Break-glass as state changes.

- `break_glass_role_set` / `break_glass_role_remove`: an owner admin marks a catalogue role
  as an emergency role for one partner, naming who may activate it and for how long (≤ 24 h).
  Its activations get no approval, so marking one, or no longer offering it, needs what
  approving a request of that role from that partner needs (`break_glass_marking_refusal`:
  the approver groups attached; and when its quorum is two, a second such person, through a
  four-eyes proposal: `breakglass.proposals`). A role needing more approvals is not marked.
- `break_glass_activate`: a named partner person activates it themself, with a written reason
  and a fresh sign-in; the delegation is created approved (`lifecycle.oversight`) so the worker
  applies it at once, and every owner admin gets a security notice in the same transaction.
  While an activation is live, another is refused and pointed at it (`BreakGlassAlreadyLive`).
- `break_glass_confirm` / `break_glass_revoke`: an owner admin reviews it within 24 hours.
- `break_glass_sweep` (beat): assigns activators once their access is active, reminds the
  approvers of a review coming due, and escalates an unreviewed one to every owner admin and
  the escalation contact. Re-runnable: each step is marked on the activation's row, under its
  lock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, NoReturn

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Membership, Organisation, User
from accounts.permissions import is_admin_member, is_member, require_mfa, require_owner_admin
from audit.actions import AuditAction
from audit.services import audit_record, audit_refusal
from core.i18n import format_time_text
from delegations.approvals.rules import Candidate, RulesInForce, decision_refusal
from delegations.approvals.selectors import grant_rules, rules_in_force
from delegations.breakglass.selectors import live_activation
from delegations.catalog.selectors import partner_account_allow_listed
from delegations.catalog.services import catalog_role_lock
from delegations.delegation_audit import role_for_partner_label
from delegations.lifecycle.oversight import delegation_break_glass_grant
from delegations.lifecycle.services import delegation_revoke
from delegations.lifecycle.transitions import (
    DelegationConflict,
    clean_reason,
    policies_problem,
    unconfirmed_partner_problem,
)
from delegations.models import (
    BREAK_GLASS_REVIEW_WITHIN,
    MAX_BREAK_GLASS_HOURS,
    MAX_BREAK_GLASS_QUORUM,
    MIN_BREAK_GLASS_REASON,
    BreakGlassActivation,
    BreakGlassRole,
    CatalogRole,
    Delegation,
)
from delegations.notices import break_glass_announce
from delegations.partner.oversight import staff_assign_for_break_glass
from delegations.versioned import version_bump
from notifications.events import NotificationEvent
from notifications.selectors import escalation_contact_of
from notifications.services import organisation_admins

Review = BreakGlassActivation.Review
Escalation = BreakGlassActivation.Escalation
# The approvers are reminded this long before a review falls due.
REMIND_BEFORE_DUE = dt.timedelta(hours=4)


def _require_owner_admin(user: User, owner: Organisation) -> None:
    require_owner_admin(
        user, owner, refusal=_("Only an admin of the owner organisation can do this.")
    )


# --- marking a role as an emergency role ---------------------------------------------------


def _marking_rules(
    *, owner: Organisation, catalog_role: CatalogRole, partner: Organisation
) -> RulesInForce:
    return grant_rules(
        owner_id=owner.pk, catalog_role_id=catalog_role.pk, partner_account_uid=partner.account_uid
    )


def break_glass_marking_refusal(
    *,
    owner: Organisation,
    catalog_role: CatalogRole,
    partner: Organisation,
    user: User,
    removing: bool = False,
) -> str | None:
    """Why `user` may not mark `catalog_role` as an emergency role for `partner` (or, with
    `removing`, no longer offer it), or None.

    An emergency role's activations are granted without anybody's approval: the marking is the
    approval, given ahead of time, so it needs what approving a request of that role from that
    partner needs (an owner admin, not of the partner, in the approver groups attached to the
    role or the partner when there are any), and so does withdrawing what they agreed on."""
    rules = _marking_rules(owner=owner, catalog_role=catalog_role, partner=partner)
    candidate = Candidate(
        user_id=user.pk,
        is_owner_admin=is_admin_member(user, owner),
        is_requester=False,
        in_requesting_organisation=is_member(user, partner),
    )
    refusal = decision_refusal(rules, candidate)
    if refusal is None:
        return None
    names = {"role": catalog_role.role_name, "partner": partner.name, "refusal": refusal}
    if removing:
        return (
            _(
                "An emergency role is activated without approval, so no longer offering %(role)s "
                "to %(partner)s needs what approving it would. %(refusal)s"
            )
            % names
        )
    return (
        _(
            "An emergency role is activated without approval, so marking %(role)s for "
            "%(partner)s needs what approving it would. %(refusal)s"
        )
        % names
    )


def break_glass_needs_second_admin(
    *, owner: Organisation, catalog_role: CatalogRole, partner: Organisation
) -> bool:
    """Whether marking the role for the partner, or no longer offering it, takes two people
    who may approve it: its requests need two approvals, so one person alone must not approve
    all its activations ahead of time (nor withdraw what two agreed on). Four eyes gives the
    second: the change is a proposal whose second admin must be one who may approve it too."""
    rules = _marking_rules(owner=owner, catalog_role=catalog_role, partner=partner)
    return rules.approvals_required >= 2


def _marking_denial(
    *,
    owner: Organisation,
    catalog_role: CatalogRole,
    partner: Organisation,
    user: User,
    alone: bool,
    removing: bool = False,
) -> str | None:
    """Why `user` may not make the marking (or its removal), or None; `alone`: made now,
    without a second admin's agreement. Reads only."""
    refusal = break_glass_marking_refusal(
        owner=owner, catalog_role=catalog_role, partner=partner, user=user, removing=removing
    )
    if refusal is None and alone:
        refusal = _second_admin_missing(owner=owner, catalog_role=catalog_role, partner=partner)
    return refusal


def _second_admin_missing(
    *, owner: Organisation, catalog_role: CatalogRole, partner: Organisation
) -> str | None:
    """Why a marking (or its removal) made alone is refused, or None."""
    if not break_glass_needs_second_admin(owner=owner, catalog_role=catalog_role, partner=partner):
        return None
    return _(
        "%(role)s needs two approvals for %(partner)s, so two people who may approve it "
        "agree on its emergency use: propose the change for a second one to approve."
    ) % {"role": catalog_role.role_name, "partner": partner.name}


def break_glass_marking_require(
    *,
    owner: Organisation,
    catalog_role: CatalogRole,
    partner: Organisation,
    user: User,
    alone: bool,
    removing: bool = False,
) -> None:
    """Refuse, on the record, a marking (or its removal) `user` may not make; `alone`: made
    now, without a second admin's agreement."""
    refusal = _marking_denial(
        owner=owner,
        catalog_role=catalog_role,
        partner=partner,
        user=user,
        alone=alone,
        removing=removing,
    )
    if refusal is None:
        return
    _marking_refuse(
        refusal,
        owner=owner,
        catalog_role=catalog_role,
        partner=partner,
        user=user,
        removing=removing,
    )


def _marking_refuse(
    refusal: str,
    *,
    owner: Organisation,
    catalog_role: CatalogRole,
    partner: Organisation,
    user: User,
    removing: bool,
) -> NoReturn:
    """Record the refusal in a transaction of its own, after the one that found it wrote
    nothing, so that the event survives the refusal; then raise it."""
    audit_refusal(
        because=refusal,
        action=(
            AuditAction.BREAK_GLASS_ROLE_REMOVE_DENIED
            if removing
            else AuditAction.BREAK_GLASS_ROLE_SET_DENIED
        ),
        actor=user,
        organisation=owner,
        related_organisations=[partner],
        target=catalog_role,
        target_label=role_for_partner_label(catalog_role, partner),
    )
    raise PermissionDenied(refusal)


def break_glass_marking_view(
    marking_role: CatalogRole, partner: Organisation, people: Iterable[User], max_hours: int
) -> dict[str, Any]:
    return {
        "role": marking_role.role_name,
        "partner": partner.name,
        "people": sorted(person.email for person in people),
        "max_hours": max_hours,
    }


def break_glass_role_validate(
    *,
    owner: Organisation,
    catalog_role: CatalogRole,
    partner: Organisation,
    people: Iterable[User],
    max_hours: int | None,
) -> list[User]:
    """The checks a marking makes before it saves (a four-eyes proposal makes them too)."""
    people = list(people)
    errors: dict[str, str] = {}
    if catalog_role.organisation_id != owner.pk or not catalog_role.is_active:
        errors["catalog_role"] = _("Choose a role of your own catalogue.")
    if not partner.is_partner or not partner_account_allow_listed(
        owner=owner, partner_account_uid=partner.account_uid
    ):
        errors["partner"] = _("Choose a partner whose account is on your allow-list.")
    elif (unconfirmed := unconfirmed_partner_problem(partner=partner)) is not None:
        errors["partner"] = unconfirmed
    quorum = _marking_rules(
        owner=owner, catalog_role=catalog_role, partner=partner
    ).approvals_required
    if "catalog_role" not in errors and "partner" not in errors and quorum > MAX_BREAK_GLASS_QUORUM:
        # A proposal brings two people together, never more: the marking would need fewer
        # people than a single request of the role.
        errors["catalog_role"] = _(
            "%(role)s needs %(n)d approvals, more than the two people who agree on a marking: "
            "it cannot be an emergency role unless its quorum is 2 or less."
        ) % {"role": catalog_role.role_name, "n": quorum}
    if not isinstance(max_hours, int) or not 1 <= max_hours <= MAX_BREAK_GLASS_HOURS:
        errors["max_hours"] = _("A break-glass window is 1 to %(max)d hours.") % {
            "max": MAX_BREAK_GLASS_HOURS
        }
    member_ids = set(
        Membership.objects.filter(organisation=partner).values_list("user_id", flat=True)
    )
    if not people:
        errors["people"] = _("Name at least one of the partner's people who may activate it.")
    elif any(person.pk not in member_ids for person in people):
        errors["people"] = _("Name only people of %(partner)s.") % {"partner": partner.name}
    if errors:
        raise ValidationError(errors)
    return people


def break_glass_role_set(
    *,
    owner: Organisation,
    set_by: User,
    catalog_role: CatalogRole,
    partner: Organisation,
    people: Iterable[User],
    max_hours: int,
    second_admin: User | None = None,
) -> BreakGlassRole:
    """Mark `catalog_role` as an emergency role for `partner` (or change who may activate it
    and for how long). Activations already made keep the window they were given.
    `second_admin`: who approved it as a proposal (a role whose quorum is two needs one)."""
    with transaction.atomic():
        # Under the role's row lock, which a change of its quorum takes too: a quorum raised
        # meanwhile (to two, which a marking alone may not meet, or beyond what any marking
        # allows) is seen here, or sees this marking.
        catalog_role_lock(catalog_role_id=catalog_role.pk)
        refusal = break_glass_marking_refusal(
            owner=owner, catalog_role=catalog_role, partner=partner, user=set_by
        )
        named: list[User] = []
        if refusal is None:
            # Before the second admin's absence: a quorum no marking can meet says so itself.
            named = break_glass_role_validate(
                owner=owner,
                catalog_role=catalog_role,
                partner=partner,
                people=people,
                max_hours=max_hours,
            )
            if second_admin is None:
                refusal = _second_admin_missing(
                    owner=owner, catalog_role=catalog_role, partner=partner
                )
        if refusal is None:
            return _marking_save(
                owner=owner,
                set_by=set_by,
                catalog_role=catalog_role,
                partner=partner,
                people=named,
                max_hours=max_hours,
            )
    _marking_refuse(
        refusal,
        owner=owner,
        catalog_role=catalog_role,
        partner=partner,
        user=set_by,
        removing=False,
    )


def _marking_save(
    *,
    owner: Organisation,
    set_by: User,
    catalog_role: CatalogRole,
    partner: Organisation,
    people: list[User],
    max_hours: int,
) -> BreakGlassRole:
    """Write the validated marking, under the role's row lock the caller holds."""
    marking, created = BreakGlassRole.objects.select_for_update().get_or_create(
        catalog_role=catalog_role,
        partner=partner,
        defaults={"organisation": owner, "max_hours": max_hours, "created_by": set_by},
    )
    before = None
    if not created:
        before = break_glass_marking_view(
            catalog_role, partner, marking.people.all(), marking.max_hours
        ) | {"active": marking.is_active}
        version_bump(marking, {"max_hours": max_hours, "is_active": True})
    marking.people.set(people)
    audit_record(
        action=AuditAction.BREAK_GLASS_ROLE_SET,
        actor=set_by,
        organisation=owner,
        related_organisations=[partner],
        target=marking,
        target_label=role_for_partner_label(catalog_role, partner),
        before=before,
        after=break_glass_marking_view(catalog_role, partner, people, max_hours)
        | {"active": True, "version": marking.version},
    )
    return marking


def break_glass_role_remove(
    *, marking: BreakGlassRole, removed_by: User, second_admin: User | None = None
) -> BreakGlassRole:
    """Stop offering an emergency role; activations already made run their course (revoke
    them to end them sooner). It needs what marking it needs (`second_admin`: as for
    `break_glass_role_set`)."""
    owner, catalog_role, partner = marking.organisation, marking.catalog_role, marking.partner
    with transaction.atomic():
        # Under the role's row lock, as a marking is made: a quorum raised to two meanwhile is
        # seen here, or sees this removal.
        catalog_role_lock(catalog_role_id=catalog_role.pk)
        refusal = _marking_denial(
            owner=owner,
            catalog_role=catalog_role,
            partner=partner,
            user=removed_by,
            alone=second_admin is None,
            removing=True,
        )
        if refusal is None:
            return _marking_withdraw(marking=marking, removed_by=removed_by)
    _marking_refuse(
        refusal,
        owner=owner,
        catalog_role=catalog_role,
        partner=partner,
        user=removed_by,
        removing=True,
    )


def _marking_withdraw(*, marking: BreakGlassRole, removed_by: User) -> BreakGlassRole:
    """Stop offering the marking, under the role's row lock the caller holds."""
    locked = (
        BreakGlassRole.objects.select_for_update()
        .select_related("catalog_role", "partner")
        .get(pk=marking.pk)
    )
    if not locked.is_active:
        return locked
    version_bump(locked, {"is_active": False})
    audit_record(
        action=AuditAction.BREAK_GLASS_ROLE_REMOVED,
        actor=removed_by,
        organisation=locked.organisation,
        related_organisations=[locked.partner],
        target=locked,
        target_label=role_for_partner_label(locked.catalog_role, locked.partner),
        before={"active": True},
        after={"active": False, "version": locked.version},
    )
    return locked


# --- activating ------------------------------------------------------------------------------


def break_glass_activation_refusal(*, marking: BreakGlassRole, user: User) -> str | None:
    """Why `user` may not activate `marking` now, or None (reads only)."""
    if not marking.is_active:
        return _("This emergency role is no longer offered.")
    if not is_member(user, marking.partner):
        return _("Only people of %(partner)s may activate it.") % {"partner": marking.partner.name}
    if not marking.people.filter(pk=user.pk).exists():
        return _("You are not one of the people the owner named for this emergency role.")
    return None


def _deny_activation(
    marking: BreakGlassRole, user: User, reason: str, metadata: dict[str, Any] | None = None
) -> None:
    audit_refusal(
        because=reason,
        action=AuditAction.BREAK_GLASS_ACTIVATION_DENIED,
        actor=user,
        organisation=marking.organisation,
        related_organisations=[marking.partner],
        actor_organisation=marking.partner,
        target=marking,
        target_label=role_for_partner_label(marking.catalog_role, marking.partner),
        metadata=metadata,
    )


class BreakGlassAlreadyLive(DelegationConflict):
    """The emergency role is already live for the partner (`activation`). A second activation
    would grant the same access again, beside it, under a review of its own; extending the
    live one would stretch a window the owner bounded and may already have reviewed. So the
    person is told where the live access is; once it has ended, they activate again."""

    def __init__(self, activation: BreakGlassActivation) -> None:
        self.activation = activation
        super().__init__(
            _(
                "Break-glass access to %(role)s is already live until %(end)s, activated by "
                "%(person)s: it is listed under Activations. It can be activated again once "
                "it has ended."
            )
            % {
                "role": activation.break_glass_role.catalog_role.role_name,
                "end": format_time_text(activation.ends_at),
                "person": activation.activated_by.email,
            }
        )


def _refuse_if_live(marking: BreakGlassRole) -> None:
    live = live_activation(marking=marking)
    if live is not None:
        raise BreakGlassAlreadyLive(live)


def break_glass_activation_validate(
    *, marking: BreakGlassRole, reason: str, hours: int | None
) -> str:
    """The input checks of an activation (form errors; nothing is saved): the window within
    the role's maximum (and never over 24 h), and a reason a reviewer can check."""
    errors: dict[str, str] = {}
    text = (reason or "").strip()
    if len(text) < MIN_BREAK_GLASS_REASON:
        errors["reason"] = _(
            "Say what the emergency is, in at least %(n)d characters: an owner admin reviews it."
        ) % {"n": MIN_BREAK_GLASS_REASON}
    limit = min(marking.max_hours, MAX_BREAK_GLASS_HOURS)
    if not isinstance(hours, int) or not 1 <= hours <= limit:
        errors["hours"] = _("Choose 1 to %(max)d hours.") % {"max": limit}
    if errors:
        raise ValidationError(errors)
    return clean_reason(text, field="reason")


def break_glass_activate(
    *,
    marking: BreakGlassRole,
    activated_by: User,
    reason: str,
    hours: int,
    with_mfa: bool,
) -> BreakGlassActivation:
    """A named partner person activates an emergency role: access applies at once through
    the worker, every owner admin is told now, and an owner admin must review it within
    24 hours. While an activation of it is live, another is refused (`BreakGlassAlreadyLive`)."""
    marking = BreakGlassRole.objects.select_related(
        "organisation", "partner", "catalog_role__cloud_account"
    ).get(pk=marking.pk)
    refusal = break_glass_activation_refusal(marking=marking, user=activated_by)
    if refusal is not None:
        _deny_activation(marking, activated_by, refusal)
        raise PermissionDenied(refusal)
    try:
        return _activate(marking, activated_by, reason=reason, hours=hours, with_mfa=with_mfa)
    except BreakGlassAlreadyLive as live:
        _deny_activation(
            marking, activated_by, str(live), {"live_activation": str(live.activation.pk)}
        )
        raise


def _activate(
    marking: BreakGlassRole, activated_by: User, *, reason: str, hours: int, with_mfa: bool
) -> BreakGlassActivation:
    # Checked first too so that a refused second activation reads nothing from the cloud.
    _refuse_if_live(marking)
    reason = break_glass_activation_validate(marking=marking, reason=reason, hours=hours)
    require_mfa(with_mfa=with_mfa)
    # Its policies are judged now, before any lock (it may read the cloud): each Custom one
    # still in the account, and the high-privilege opt-in.
    problem = policies_problem(catalog_role=marking.catalog_role)
    if problem is not None:
        raise ValidationError(problem)
    with transaction.atomic():
        locked = BreakGlassRole.objects.select_for_update().get(pk=marking.pk)
        refusal = break_glass_activation_refusal(marking=locked, user=activated_by)
        if refusal is not None:
            raise PermissionDenied(refusal)
        # Under the marking's lock: of two activations at once, the second finds the first.
        _refuse_if_live(locked)
        now = timezone.now()
        ends_at = now + dt.timedelta(hours=hours)
        delegation = delegation_break_glass_grant(
            owner=marking.organisation,
            partner=marking.partner,
            catalog_role=marking.catalog_role,
            activated_by=activated_by,
            reason=reason,
            ends_at=ends_at,
            with_mfa=with_mfa,
            metadata={
                "break_glass_role": str(locked.pk),
                "rule_version": locked.version,
                "hours": hours,
            },
        )
        activation = BreakGlassActivation.objects.create(
            break_glass_role=locked,
            owner=marking.organisation,
            partner=marking.partner,
            delegation=delegation,
            activated_by=activated_by,
            reason=reason,
            hours=hours,
            rule_version=locked.version,
            activated_at=now,
            ends_at=ends_at,
            review_due_at=now + BREAK_GLASS_REVIEW_WITHIN,
        )
        break_glass_announce(
            delegation=delegation,
            event=NotificationEvent.BREAK_GLASS_ACTIVATED,
            key=f"{NotificationEvent.BREAK_GLASS_ACTIVATED.value}:{activation.pk}",
            people=organisation_admins(marking.organisation),
            facts=((_("Activated by"), activated_by.email), (_("Reason"), reason)),
        )
    return activation


# --- the owner's review ------------------------------------------------------------------------


def _lock_activation(activation: BreakGlassActivation) -> BreakGlassActivation:
    return (
        BreakGlassActivation.objects.select_for_update(of=("self",))
        .select_related("owner", "partner", "delegation__catalog_role", "activated_by")
        .get(pk=activation.pk)
    )


def _review_refusal(activation: BreakGlassActivation, user: User) -> str | None:
    if not is_admin_member(user, activation.owner):
        return _("Only an admin of the owner organisation reviews break-glass access.")
    if is_member(user, activation.partner):
        return _("You are a member of the partner; another owner admin must review it.")
    return None


def _audit_review(
    activation: BreakGlassActivation, *, action: AuditAction, actor: User, note: str
) -> None:
    delegation = activation.delegation
    audit_record(
        action=action,
        actor=actor,
        organisation=activation.owner,
        related_organisations=[activation.partner],
        actor_organisation=activation.owner,
        target=delegation,
        target_label=role_for_partner_label(delegation.catalog_role, activation.partner),
        before={"review": Review.PENDING},
        after={"review": activation.review, "flagged": activation.flagged},
        metadata={
            "break_glass_activation": str(activation.pk),
            "activated_by": activation.activated_by.email,
            "note": note,
            "reviewed_within_deadline": bool(
                activation.reviewed_at and activation.reviewed_at <= activation.review_due_at
            ),
        },
    )
    break_glass_announce(
        delegation=delegation,
        event=NotificationEvent.BREAK_GLASS_REVIEWED,
        key=f"{NotificationEvent.BREAK_GLASS_REVIEWED.value}:{activation.pk}",
        people=[admin for admin in organisation_admins(activation.owner) if admin.pk != actor.pk],
        partner_side=True,
        facts=((_("Review"), str(activation.get_review_display())),),
    )


def _check_reviewer(activation: BreakGlassActivation, user: User) -> None:
    """Refuse a reviewer who may not review it, auditing the attempt in its own transaction."""
    current = BreakGlassActivation.objects.select_related("owner", "partner").get(pk=activation.pk)
    refusal = _review_refusal(current, user)
    if refusal is not None:
        audit_refusal(
            because=refusal,
            action=AuditAction.BREAK_GLASS_ACTIVATION_DENIED,
            actor=user,
            organisation=current.owner,
            related_organisations=[current.partner],
            target=current.delegation,
            metadata={"doing": "review"},
        )
        raise PermissionDenied(refusal)


def break_glass_confirm(
    *, activation: BreakGlassActivation, reviewed_by: User, note: str = ""
) -> BreakGlassActivation:
    """An owner admin confirms the emergency was real: the access runs its window."""
    _check_reviewer(activation, reviewed_by)
    with transaction.atomic():
        locked = _lock_activation(activation)
        if locked.review == Review.CONFIRMED and locked.reviewed_by_id == reviewed_by.pk:
            return locked
        if locked.review != Review.PENDING:
            raise DelegationConflict(
                _("This activation was already reviewed: %(review)s.")
                % {"review": locked.get_review_display().lower()}
            )
        note = clean_reason(note, field="note", required=False)
        locked.review = Review.CONFIRMED
        locked.reviewed_by = reviewed_by
        locked.reviewed_at = timezone.now()
        locked.review_note = note
        locked.save(update_fields=["review", "reviewed_by", "reviewed_at", "review_note"])
        _audit_review(
            locked, action=AuditAction.BREAK_GLASS_CONFIRMED, actor=reviewed_by, note=note
        )
        return locked


def break_glass_revoke(
    *, activation: BreakGlassActivation, reviewed_by: User, note: str
) -> BreakGlassActivation:
    """An owner admin finds the activation unjustified: the access is revoked through the
    lifecycle (the worker removes it) and the activation is flagged for the record."""
    _check_reviewer(activation, reviewed_by)
    with transaction.atomic():
        locked = _lock_activation(activation)
        if locked.review == Review.REVOKED:
            return locked
        if locked.review != Review.PENDING:
            raise DelegationConflict(_("This activation was already confirmed."))
        note = clean_reason(note, field="note")
        delegation = locked.delegation
        if delegation.can_revoke and delegation.end_cause != Delegation.EndCause.REVOKED:
            delegation_revoke(
                delegation=delegation,
                revoked_by=reviewed_by,
                reason=_("Break-glass review: %(note)s") % {"note": note},
            )
        locked.review = Review.REVOKED
        locked.flagged = True
        locked.reviewed_by = reviewed_by
        locked.reviewed_at = timezone.now()
        locked.review_note = note
        locked.save(
            update_fields=["review", "flagged", "reviewed_by", "reviewed_at", "review_note"]
        )
        _audit_review(locked, action=AuditAction.BREAK_GLASS_REVOKED, actor=reviewed_by, note=note)
        return locked


# --- the scheduler's ------------------------------------------------------------------------------


def _approvers(activation: BreakGlassActivation) -> list[User]:
    """Who is reminded first: the approver groups covering the role and partner, else every
    owner admin."""
    admins = organisation_admins(activation.owner)
    ids = rules_in_force(delegation=activation.delegation).approver_ids
    return admins if ids is None else [admin for admin in admins if admin.pk in ids]


def _escalate(activation: BreakGlassActivation, *, now: dt.datetime) -> bool:
    with transaction.atomic():
        locked = _lock_activation(activation)
        if locked.review != Review.PENDING:
            return False
        if now >= locked.review_due_at and locked.escalation < Escalation.ESCALATED:
            level, people = Escalation.ESCALATED, organisation_admins(locked.owner)
            contact = escalation_contact_of(organisation=locked.owner)
            if contact is not None:
                people.append(contact)
        elif now >= locked.review_due_at - REMIND_BEFORE_DUE and locked.escalation < (
            Escalation.REMINDED
        ):
            level, people = Escalation.REMINDED, _approvers(locked)
        else:
            return False
        locked.escalation = level
        locked.save(update_fields=["escalation"])
        delegation = locked.delegation
        audit_record(
            action=AuditAction.BREAK_GLASS_ESCALATED,
            actor=None,
            organisation=locked.owner,
            related_organisations=[locked.partner],
            target=delegation,
            target_label=role_for_partner_label(delegation.catalog_role, locked.partner),
            metadata={
                "break_glass_activation": str(locked.pk),
                # The ledger's English word, as recorded from the start: the label is
                # translated for pages, and the record is not (nor may it hold a lazy text).
                "escalation": Escalation(level).name.capitalize(),
                "review_due_at": locked.review_due_at,
                "told": sorted(person.email for person in people),
            },
        )
        break_glass_announce(
            delegation=delegation,
            event=NotificationEvent.BREAK_GLASS_REVIEW_DUE,
            key=f"{NotificationEvent.BREAK_GLASS_REVIEW_DUE.value}:{locked.pk}:{level}",
            people=people,
        )
        return True


def break_glass_sweep(*, now: dt.datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Beat: assign activators whose access is now active, remind and escalate reviews."""
    now = now or timezone.now()
    counts = {"assigned": 0, "escalated": 0}
    waiting = BreakGlassActivation.objects.filter(
        assigned_at__isnull=True,
        review__in=[Review.PENDING, Review.CONFIRMED],
        delegation__status=Delegation.Status.ACTIVE,
        ends_at__gt=now,
    ).select_related("delegation", "activated_by")
    for activation in waiting[:limit]:
        if staff_assign_for_break_glass(
            delegation=activation.delegation, user=activation.activated_by
        ):
            BreakGlassActivation.objects.filter(pk=activation.pk, assigned_at__isnull=True).update(
                assigned_at=now
            )
            counts["assigned"] += 1
    due = BreakGlassActivation.objects.filter(
        review=Review.PENDING, review_due_at__lte=now + REMIND_BEFORE_DUE
    ).exclude(escalation=Escalation.ESCALATED)
    for activation in due.order_by("review_due_at")[:limit]:
        counts["escalated"] += int(_escalate(activation, now=now))
    return counts
