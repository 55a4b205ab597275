"""How a delegation starts: a partner admin's request through a partner link (and the owner's
rule that approves it at once), an owner admin's offer, a request taken back before anyone
decided; `create_delegation` is the one way a delegation is created (break-glass grants use
it too). The same rules as every transition (`transitions`): lock, audit in the same
transaction."""

import datetime as dt
from typing import Any, NotRequired, TypedDict, Unpack

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.actors import ServiceActor, actor_user, service_label
from accounts.models import Organisation, User
from accounts.permissions import is_member, require_mfa
from audit.actions import AuditAction
from delegations.approvals.rules import auto_approves
from delegations.approvals.selectors import rules_in_force
from delegations.catalog.partner_links import partner_link_use
from delegations.catalog.services import catalog_role_lock
from delegations.lifecycle.transitions import (
    START_LEAD,
    IllegalTransition,
    Status,
    audit_delegation,
    check_privilege_unchanged,
    check_version,
    clean_reason,
    lock_catalog_role,
    lock_delegation,
    managed_role_for_catalog_role,
    policies_problem,
    privilege_snapshot,
    require_admin,
    transition,
    trust_scope_fields,
    unconfirmed_partner_problem,
    validate_ends_at,
    validate_grantable,
    validate_no_open_duplicate,
    validated_start,
)
from delegations.models import (
    CatalogRole,
    CloudAccount,
    Delegation,
    FleetGrant,
    PartnerLink,
)
from delegations.outbox import outbox_enqueue_reconcile


@transaction.atomic
def delegation_request(
    *,
    partner: Organisation,
    requested_by: User | ServiceActor,
    partner_link: PartnerLink,
    catalog_role: CatalogRole,
    reason: str,
    ends_at: dt.datetime | None,
    starts_at: dt.datetime | None = None,
    cloud_account: CloudAccount | None = None,
    fleet: FleetGrant | None = None,
) -> Delegation:
    """A partner admin, or one of the partner's service accounts, asks an owner (found through
    `partner_link`) for a catalogue role, from now or from `starts_at` (scheduled access), in
    one of the owner's accounts (`cloud_account`, default the role's home account).

    `fleet`: the fleet grant this request is one account of; the fleet's request used the
    partner link once for all its accounts, so it is not used again here."""
    require_admin(user=requested_by, organisation=partner, doing=gettext("request access"))
    if fleet is None:
        link = partner_link_use(link=partner_link, partner=partner, used_by=requested_by)
    elif fleet.partner_link_id != partner_link.pk or fleet.partner_id != partner.pk:
        raise ValueError("A fleet's account is requested through the fleet's own partner link.")
    else:
        link = partner_link
    owner = link.organisation
    if catalog_role.organisation_id != owner.pk:
        raise ValidationError(
            {"catalog_role": gettext("This role is not in the owner's catalogue.")}
        )
    now = timezone.now()
    reason = clean_reason(reason, field="reason")
    validate_ends_at(ends_at, now=now)
    starts_at = validated_start(starts_at, ends_at=ends_at, now=now)
    validate_grantable(
        owner=owner, partner=partner, catalog_role=catalog_role, cloud_account=cloud_account
    )
    validate_no_open_duplicate(
        partner=partner, catalog_role=catalog_role, cloud_account=cloud_account
    )
    return create_delegation(
        owner=owner,
        partner=partner,
        catalog_role=catalog_role,
        cloud_account=cloud_account,
        fleet=fleet,
        created_by=requested_by,
        actor_organisation=partner,
        action=AuditAction.DELEGATION_REQUESTED,
        reason=reason,
        ends_at=ends_at,
        fields={
            "status": Status.REQUESTED,
            "origin": Delegation.Origin.REQUEST,
            "partner_link": link,
            "starts_at": starts_at,
        },
        metadata={"partner_link": str(link.pk), "starts_at": starts_at},
    )


def create_delegation(
    *,
    owner: Organisation,
    partner: Organisation,
    catalog_role: CatalogRole,
    cloud_account: CloudAccount | None,
    fleet: FleetGrant | None,
    created_by: User | ServiceActor,
    actor_organisation: Organisation,
    action: AuditAction,
    reason: str,
    ends_at: dt.datetime | None,
    fields: dict[str, Any],
    metadata: dict[str, Any],
) -> Delegation:
    """Create a delegation and audit it; `fields` are what its origin sets beyond the rest."""
    delegation = Delegation.objects.create(
        owner=owner,
        partner=partner,
        catalog_role=catalog_role,
        managed_role=managed_role_for_catalog_role(
            catalog_role=catalog_role, partner=partner, cloud_account=cloud_account
        ),
        fleet=fleet,
        partner_account_uid=partner.account_uid,
        requested_by=actor_user(created_by),
        requested_by_label=service_label(created_by) or "",
        reason=reason,
        ends_at=ends_at,
        **{"trust_scope": catalog_role.default_trust_scope, **fields},
    )
    audit_delegation(
        delegation=delegation,
        action=action,
        actor=created_by,
        actor_organisation=actor_organisation,
        before=None,
        metadata={"ends_at": ends_at, "reason": reason, **metadata},
    )
    return delegation


@transaction.atomic
def delegation_withdraw(
    *,
    delegation: Delegation,
    withdrawn_by: User | ServiceActor,
    expected_version: int | None = None,
) -> Delegation:
    """A partner admin (or a service account of the partner) takes back their organisation's
    request before the owner decides it.

    Under the row lock, so a withdrawal racing an approval or a rejection ends with exactly
    one of them: whoever locks second finds the request no longer pending and is told."""
    locked = lock_delegation(delegation)
    require_admin(
        user=withdrawn_by, organisation=locked.partner, doing=gettext("withdraw this request")
    )
    if locked.status == Status.WITHDRAWN:
        return locked.unchanged()  # a double click, or another admin of the partner was first
    if locked.status != Status.REQUESTED:
        raise IllegalTransition(
            gettext(
                "Only a request still waiting for the owner's decision can be withdrawn; "
                "this one is %(status)s."
            )
            % {"status": locked.get_status_display().lower()}
        )
    check_version(locked, expected_version)
    return transition(
        locked,
        to=Status.WITHDRAWN,
        action=AuditAction.DELEGATION_WITHDRAWN,
        actor=withdrawn_by,
        actor_organisation=locked.partner,
        changes={
            "withdrawn_by": actor_user(withdrawn_by),
            "withdrawn_by_label": service_label(withdrawn_by) or "",
            "ended_at": timezone.now(),
        },
    )


def delegation_offer(
    *,
    owner: Organisation,
    offered_by: User,
    partner: Organisation,
    catalog_role: CatalogRole,
    reason: str,
    ends_at: dt.datetime | None,
    with_mfa: bool,
    trust_scope: str | None = None,
    cloud_account: CloudAccount | None = None,
    fleet: FleetGrant | None = None,
) -> Delegation:
    """An owner admin grants a catalogue role to a partner directly: the offer is the owner's
    decision, so it starts approved and the worker applies it. `trust_scope` overrides the
    role's default (whom the trust policy names); `cloud_account` is the owner account
    (default: the role's home).

    `fleet`: the fleet grant this offer is one account of. Such an account starts scheduled
    (approved, nothing in the cloud yet) and the fleet starts it in its turn."""
    trust_fields = trust_scope_fields(trust_scope)
    require_admin(user=offered_by, organisation=owner, doing=gettext("offer access"))
    require_mfa(with_mfa=with_mfa)
    role = CatalogRole.objects.select_related("cloud_account").get(pk=catalog_role.pk)
    # Tenancy and catalogue rules first: the cloud read below uses the role's own account.
    validate_grantable(owner=owner, partner=partner, catalog_role=role, cloud_account=cloud_account)
    _check_offer_rules(owner=owner, partner=partner, catalog_role=role, offered_by=offered_by)
    unconfirmed = unconfirmed_partner_problem(partner=partner)
    if unconfirmed is not None:
        raise ValidationError({"partner": unconfirmed})
    problem = policies_problem(catalog_role=role, cloud_account=cloud_account)
    if problem is not None:
        raise ValidationError({"catalog_role": problem})
    with transaction.atomic():
        # The role row is locked so that an edit cannot slip in between the check above
        # and the offer.
        locked_role = catalog_role_lock(catalog_role_id=catalog_role.pk)
        check_privilege_unchanged(locked_role, privilege_snapshot(role))
        now = timezone.now()
        reason = clean_reason(reason, field="reason")
        validate_ends_at(ends_at, now=now)
        validate_grantable(
            owner=owner, partner=partner, catalog_role=locked_role, cloud_account=cloud_account
        )
        if is_member(offered_by, partner):
            raise PermissionDenied(
                gettext("You are also a member of this partner; another owner admin must offer it.")
            )
        validate_no_open_duplicate(
            partner=partner, catalog_role=locked_role, cloud_account=cloud_account
        )
        delegation = create_delegation(
            owner=owner,
            partner=partner,
            catalog_role=locked_role,
            cloud_account=cloud_account,
            fleet=fleet,
            created_by=offered_by,
            actor_organisation=owner,
            action=AuditAction.DELEGATION_OFFERED,
            reason=reason,
            ends_at=ends_at,
            fields={
                "status": Status.APPROVED if fleet is None else Status.SCHEDULED,
                "origin": Delegation.Origin.OFFER,
                "starts_at": now,
                "decided_by": offered_by,
                "decided_at": now,
                "approved_with_mfa": with_mfa,
                **trust_fields,
            },
            metadata={"with_mfa": with_mfa, **trust_fields},
        )
        if fleet is None:
            outbox_enqueue_reconcile(managed_role=delegation.managed_role)
        return delegation


def _check_offer_rules(
    *, owner: Organisation, partner: Organisation, catalog_role: CatalogRole, offered_by: User
) -> None:
    """An offer is one admin's decision: the approval rules must allow that (a member of the
    groups attached to the role or partner, and a role that needs one approval only)."""
    rules = rules_in_force(
        delegation=Delegation(
            owner=owner, catalog_role=catalog_role, partner_account_uid=partner.account_uid
        )
    )
    if rules.approver_ids is not None and offered_by.pk not in rules.approver_ids:
        raise PermissionDenied(
            gettext("Only members of %(group_names)s may grant %(role)s.")
            % {"group_names": ", ".join(rules.group_names), "role": catalog_role.role_name}
        )
    if rules.approvals_required > 1:
        raise ValidationError(
            {
                "catalog_role": gettext(
                    "%(role)s needs %(approvals_required)s approvals, so one admin cannot "
                    "offer it; ask the partner to request it."
                )
                % {"role": catalog_role.role_name, "approvals_required": rules.approvals_required}
            }
        )


class AccessRequest(TypedDict):
    """A partner's request as the web page and the API file it (see `delegation_request`)."""

    partner: Organisation
    requested_by: User | ServiceActor
    partner_link: PartnerLink
    catalog_role: CatalogRole
    reason: str
    ends_at: dt.datetime | None
    starts_at: NotRequired[dt.datetime | None]
    cloud_account: NotRequired[CloudAccount | None]


def delegation_request_submit(**request: Unpack[AccessRequest]) -> Delegation:
    """File a partner's request and let the role's auto-approval rule decide it at once where
    it covers it: whichever door the request comes through, the owner's rule applies the
    same. `changed` on the result says whether the rule approved it."""
    return delegation_auto_approve(delegation=delegation_request(**request))


def delegation_auto_approve(*, delegation: Delegation) -> Delegation:
    """Approve a fresh request by the catalogue role's auto-approval rule when it qualifies
    (time-bound, within the rule's hours, allow-listed, its policies judged now in the
    request's account: every Custom one there, none of high privilege);
    otherwise leave it for the approvers. The decision is recorded as the rule's, with its
    version. Run right after `delegation_request`, outside its transaction (it may read the
    cloud for the high-privilege check)."""
    current = Delegation.objects.select_related(
        "owner", "partner", "catalog_role__cloud_account", "managed_role__cloud_account"
    ).get(pk=delegation.pk)
    if current.status != Status.REQUESTED:
        return current.unchanged()
    rules = rules_in_force(delegation=current)
    role = current.catalog_role
    if role.allows_high_privilege or not auto_approves(
        rules, starts_at=current.starts_at, ends_at=current.ends_at
    ):
        return current.unchanged()
    # In the request's own account, which need not be the role's home.
    account = current.managed_role.cloud_account
    try:
        validate_grantable(
            owner=current.owner, partner=current.partner, catalog_role=role, cloud_account=account
        )
        if policies_problem(catalog_role=role, cloud_account=account) is not None:
            return current.unchanged()
    except ValidationError:
        return current.unchanged()  # the approvers see it, and the reason, when they decide
    checked = privilege_snapshot(role)
    with transaction.atomic():
        locked = lock_delegation(delegation)
        if locked.status != Status.REQUESTED:
            return locked.unchanged()
        check_privilege_unchanged(lock_catalog_role(locked), checked)
        now = timezone.now()
        scheduled = locked.starts_at > now + START_LEAD
        transition(
            locked,
            to=Status.SCHEDULED if scheduled else Status.APPROVED,
            action=AuditAction.DELEGATION_AUTO_APPROVED,
            actor=None,
            actor_organisation=None,
            changes={
                "decided_at": now,
                "decision_reason": f"Approved automatically: {role.role_name} approves "
                f"requests of up to {rules.auto_approve_max_hours} h by itself "
                f"(rule version {rules.rule_version}).",
            },
            metadata={
                "rule": "auto_approve",
                "rule_version": rules.rule_version,
                "auto_approve_max_hours": rules.auto_approve_max_hours,
            },
        )
        if not scheduled:
            outbox_enqueue_reconcile(managed_role=locked.managed_role)
        return locked
