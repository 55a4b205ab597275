"""The owner's allow-list of partner accounts: the accounts its trust policies may name, so
the partners who may request or be offered its catalogue roles. Checked before anything is
written; each change is audited in the transaction that makes it.

A partner some of the owner's admins belong to has fewer people who could decide its requests
(a member of a partner never decides them), so whether it may join the list is also for the
approval rules to say. They sit above the catalogue and register their check here when they
load (`partner_allowance_check_register`); an addition they refuse is audited as refused.
"""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.services import audit_record, audit_refusal
from cloud import policies
from core.db import conflict_as_validation_error
from delegations.catalog.selectors import partner_account_allow_listed
from delegations.connection.selectors import organisation_own_account_uids
from delegations.models import PartnerAllowance

LABEL_MAX_LENGTH = 200

# `check(owner, partner_account_uid)` raises ValidationError when the approval rules cannot
# take the partner on (a quorum it would leave out of reach).
AllowanceCheck = Callable[[Organisation, str], None]
_APPROVAL_RULES_CHECK: list[AllowanceCheck] = []


class AllowanceRefused(ValidationError):
    """An addition to the allow-list the approval rules refused (audited, unlike a typo)."""


def partner_allowance_check_register(check: AllowanceCheck) -> None:
    _APPROVAL_RULES_CHECK[:] = [check]


def partner_allowance_validate(*, owner: Organisation, partner_account_uid: str, label: str) -> str:
    """The checks adding a partner account makes before it saves (a four-eyes proposal makes
    them too); returns the cleaned label."""
    if not owner.is_owner:
        raise ValidationError(gettext("Only resource owner organisations keep an allow-list."))
    label = (label or "").strip()
    errors: dict[str, str] = {}
    try:
        policies.validate_account_uid(partner_account_uid)
    except policies.PolicyError:
        errors["partner_account_uid"] = gettext(
            "A partner account UID is digits 0-9 only, for example 1234567890123456."
        )
    else:
        if partner_account_uid in organisation_own_account_uids(organisation=owner):
            errors["partner_account_uid"] = gettext("This is your own account, not a partner's.")
        elif partner_account_allow_listed(owner=owner, partner_account_uid=partner_account_uid):
            errors["partner_account_uid"] = gettext(
                "%(partner_account_uid)s is already on the allow-list."
            ) % {"partner_account_uid": partner_account_uid}
    if len(label) > LABEL_MAX_LENGTH:
        errors["label"] = gettext("A label is at most %(LABEL_MAX_LENGTH)s characters.") % {
            "LABEL_MAX_LENGTH": LABEL_MAX_LENGTH
        }
    if errors:
        raise ValidationError(errors)
    try:
        _APPROVAL_RULES_CHECK[0](owner, partner_account_uid)
    except ValidationError as refusal:
        raise AllowanceRefused({"partner_account_uid": refusal.messages}) from refusal
    return label


def partner_allowance_refusal_record(
    refusal: AllowanceRefused,
    *,
    owner: Organisation,
    by: User | None,
    partner_account_uid: str,
    label: str,
) -> None:
    """Record an addition the approval rules refused once the change is rolled back, so that
    the event survives it."""
    audit_refusal(
        because=" ".join(refusal.messages),
        action=AuditAction.PARTNER_ALLOWANCE_ADD_DENIED,
        actor=by,
        organisation=owner,
        target_label=partner_account_uid,
        after={"partner_account_uid": partner_account_uid, "label": (label or "").strip()},
    )


def partner_allowance_add(
    *, owner: Organisation, added_by: User | None, partner_account_uid: str, label: str = ""
) -> PartnerAllowance:
    """Allow a partner account UID in the owner's trust policies."""
    try:
        return _add(
            owner=owner, added_by=added_by, partner_account_uid=partner_account_uid, label=label
        )
    except AllowanceRefused as refusal:
        partner_allowance_refusal_record(
            refusal, owner=owner, by=added_by, partner_account_uid=partner_account_uid, label=label
        )
        raise


@transaction.atomic
def _add(
    *, owner: Organisation, added_by: User | None, partner_account_uid: str, label: str
) -> PartnerAllowance:
    # The approval rules' check takes the owner's rules lock, held until this commits: a
    # change of the groups or quorums, or an admin joining the partner, waits and sees it.
    label = partner_allowance_validate(
        owner=owner, partner_account_uid=partner_account_uid, label=label
    )
    on_list = {
        "partner_account_uid": gettext("%(partner_account_uid)s is already on the allow-list.")
        % {"partner_account_uid": partner_account_uid}
    }
    with conflict_as_validation_error(on_list):
        allowance = PartnerAllowance.objects.create(
            organisation=owner,
            partner_account_uid=partner_account_uid,
            label=label,
            created_by=added_by,
        )
        audit_record(
            action=AuditAction.PARTNER_ALLOWANCE_ADDED,
            actor=added_by,
            organisation=owner,
            target=allowance,
            after={"partner_account_uid": partner_account_uid, "label": label},
        )
    return allowance


def partner_allowance_remove(*, allowance: PartnerAllowance, removed_by: User | None) -> None:
    """Take a partner account off the allow-list: no new requests or offers for it. Existing
    delegations stay until revoked."""
    with transaction.atomic():
        locked = PartnerAllowance.objects.select_for_update().filter(pk=allowance.pk).first()
        if locked is None:
            return
        audit_record(
            action=AuditAction.PARTNER_ALLOWANCE_REMOVED,
            actor=removed_by,
            organisation=locked.organisation,
            target=locked,
            before={"partner_account_uid": locked.partner_account_uid, "label": locked.label},
        )
        locked.delete()
