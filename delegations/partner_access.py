"""Who in a partner's cloud account may assume which role: the ground-floor rules both the
lifecycle (a delegation enters or leaves `active`) and the partner-side worker (what one RAM
user's `portal-assume-<user>` policy must grant) read.

Every partner RAM user the portal manages has one `PartnerUserPolicy` row; a change of what it
should grant bumps the row's `desired_version` and enqueues a reconcile through the outbox, in
the caller's transaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable

from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from cloud import policies
from delegations.models import (
    DESIRED_PRESENT_STATUSES,
    HOME_FIRST,
    NOT_NARROWED,
    CloudAccount,
    Delegation,
    ManagedRole,
    OutboxMessage,
    PartnerUserPolicy,
    StaffAssignment,
    StaffRamUserLink,
    TrustScope,
)
from delegations.outbox import outbox_enqueue, outbox_enqueue_reconcile

Status = Delegation.Status

POLICY_PREFIX = "portal-assume-"
_PLAIN_POLICY_SUFFIX = re.compile(r"[A-Za-z0-9-]{1,64}")


def is_staff_member(*, user: User, organisation: Organisation) -> bool:
    return Membership.objects.filter(
        user=user, organisation=organisation, role=Membership.Role.STAFF
    ).exists()


def partner_cloud_account(*, organisation: Organisation) -> CloudAccount | None:
    # The primary first, without the model's default order by organisation name (the same
    # for every row here, and a join on every credential issuance).
    account = (
        CloudAccount.objects.filter(organisation=organisation, is_active=True)
        .order_by(*HOME_FIRST)
        .first()
    )
    if account is not None:
        account.organisation = organisation  # the caller's object: no second read of the row
    return account


# --- the managed policy per RAM user ---------------------------------------------------------


def policy_name_for(ram_user_name: str) -> str:
    """`portal-assume-<user>`: RAM policy names allow only letters, digits and '-', so a user
    name with '.' or '_' gets those replaced and a short digest that keeps names apart."""
    policies.validate_ram_user_name(ram_user_name)
    if _PLAIN_POLICY_SUFFIX.fullmatch(ram_user_name):
        return POLICY_PREFIX + ram_user_name
    cleaned = re.sub(r"[^A-Za-z0-9-]", "-", ram_user_name)
    digest = hashlib.sha256(ram_user_name.encode()).hexdigest()[:8]
    return f"{POLICY_PREFIX}{cleaned}-{digest}"


def broker_user_name(cloud_account: CloudAccount) -> str | None:
    """The RAM user whose key the portal holds for a partner account (the "broker" that calls
    AssumeRole for staff), or None for a root key (roots need no grant, and cannot assume
    roles at all)."""
    arn = cloud_account.caller_arn or ""
    prefix = f"acs:ram::{cloud_account.account_uid}:user/"
    if arn.startswith(prefix):
        name = arn[len(prefix) :]
        try:
            return policies.validate_ram_user_name(name)
        except policies.PolicyError:
            return None
    return None


def partner_user_policy_for(
    *, cloud_account: CloudAccount, ram_user_name: str
) -> PartnerUserPolicy:
    existing = PartnerUserPolicy.objects.filter(
        cloud_account=cloud_account, ram_user_name__iexact=ram_user_name
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            return PartnerUserPolicy.objects.create(
                cloud_account=cloud_account,
                ram_user_name=ram_user_name,
                policy_name=policy_name_for(ram_user_name),
            )
    except IntegrityError:
        return PartnerUserPolicy.objects.get(
            cloud_account=cloud_account, ram_user_name__iexact=ram_user_name
        )


def partner_user_policy_request(*, policy: PartnerUserPolicy) -> OutboxMessage:
    """The desired state of `policy` changed: bump its version and ask for a reconcile, in the
    caller's transaction."""
    PartnerUserPolicy.objects.filter(pk=policy.pk).update(desired_version=F("desired_version") + 1)
    return outbox_enqueue(kind=OutboxMessage.Kind.RECONCILE_PARTNER_USER, object_id=policy.pk)


def partner_user_policies_request(
    *, cloud_account: CloudAccount | None, names: Iterable[str]
) -> None:
    if cloud_account is None:
        return
    seen: set[str] = set()
    for name in names:
        if not name or name.lower() in seen:
            continue
        seen.add(name.lower())
        partner_user_policy_request(
            policy=partner_user_policy_for(cloud_account=cloud_account, ram_user_name=name)
        )
    if seen:
        _partner_managed_trust_follows(cloud_account=cloud_account)


def _partner_managed_trust_follows(*, cloud_account: CloudAccount) -> None:
    """Staff were assigned or unassigned, or their RAM users relinked: a partner-managed
    trust scope names exactly them, so the owner's roles those scopes cover are reconciled
    too (one reconcile each, in the same transaction; the worker computes whom to name)."""
    roles = ManagedRole.objects.filter(
        delegations__partner_id=cloud_account.organisation_id,
        delegations__trust_scope=TrustScope.NAMED_PARTNER_MANAGED,
        delegations__status__in=DESIRED_PRESENT_STATUSES,
    ).distinct()
    for managed_role in roles:
        outbox_enqueue_reconcile(managed_role=managed_role)


def partner_access_delegation_changed(*, delegation: Delegation) -> None:
    """Called by the lifecycle, in the transaction of a transition into or out of `active`:
    the broker and every assigned person's RAM user must gain or lose `sts:AssumeRole` on the
    role. Writes outbox rows only."""
    partner_access_delegations_changed(delegations=[delegation])


def partner_access_delegations_changed(*, delegations: list[Delegation]) -> None:
    """`partner_access_delegation_changed` for many delegations (the worker activating a
    role's partners together): the partners' cloud accounts and the assigned people's RAM
    users are read once for all of them; each partner account's policies are then bumped once
    for the names of all its delegations."""
    partner_ids = {delegation.partner_id for delegation in delegations}
    if not partner_ids:
        return
    accounts: dict[object, CloudAccount] = {}
    for account in CloudAccount.objects.filter(
        organisation_id__in=partner_ids, is_active=True
    ).order_by("organisation_id", "pk"):
        accounts.setdefault(account.organisation_id, account)
    if not accounts:
        return
    by_partner: dict[object, Organisation] = {
        delegation.partner_id: delegation.partner for delegation in delegations
    }
    concerned = {d.pk: d.partner_id for d in delegations if d.partner_id in accounts}
    names: dict[object, list[str]] = {partner_id: [] for partner_id in accounts}
    for delegation_id, organisation_id, account_id, name in StaffRamUserLink.objects.filter(
        organisation_id__in=list(accounts),
        cloud_account__in=list(accounts.values()),
        user__staff_assignments__delegation__in=list(concerned),
        user__staff_assignments__ended_at__isnull=True,
    ).values_list(
        "user__staff_assignments__delegation",
        "organisation_id",
        "cloud_account_id",
        "ram_user_name",
    ):
        account = accounts[organisation_id]
        if account.pk == account_id and concerned.get(delegation_id) == organisation_id:
            names[organisation_id].append(name)
    for partner_id, account in accounts.items():
        account.organisation = by_partner[partner_id]  # the caller's object: no second read
        broker = broker_user_name(account)
        partner_user_policies_request(
            cloud_account=account, names=[*names[partner_id], *([broker] if broker else [])]
        )


def _usable_delegations(now: dt.datetime) -> Q:
    return Q(delegation__status=Status.ACTIVE) & (
        Q(delegation__ends_at__isnull=True) | Q(delegation__ends_at__gt=now)
    )


def partner_user_desired_role_arns(
    *, cloud_account: CloudAccount, ram_user_name: str, now: dt.datetime | None = None
) -> list[str]:
    """Every role ARN `ram_user_name` should be allowed to assume now: all usable delegations
    of the partner for the broker, the user's open assignments for a linked staff member,
    except the narrowed ones (`StaffAssignment.is_narrowed`): switching role in the console or
    AssumeRole with the person's own key carries no session policy, so a narrowed person's
    RAM user must not be able to assume the role at all."""
    now = now or timezone.now()
    if not cloud_account.is_active:
        return []
    organisation = cloud_account.organisation
    arns: set[str] = set()
    broker = broker_user_name(cloud_account)
    if broker is not None and broker.lower() == ram_user_name.lower():
        for delegation in (
            Delegation.objects.filter(partner=organisation, status=Status.ACTIVE)
            .filter(Q(ends_at__isnull=True) | Q(ends_at__gt=now))
            .select_related("managed_role__cloud_account")
        ):
            arns.add(delegation.managed_role.role_arn)
    link = StaffRamUserLink.objects.filter(
        cloud_account=cloud_account, ram_user_name__iexact=ram_user_name
    ).first()
    if link is not None and is_staff_member(user=link.user, organisation=organisation):
        for assignment in (
            StaffAssignment.objects.filter(
                user=link.user, partner=organisation, ended_at__isnull=True
            )
            .filter(NOT_NARROWED)
            .filter(_usable_delegations(now))
            .select_related("delegation__managed_role__cloud_account")
        ):
            arns.add(assignment.delegation.managed_role.role_arn)
    return sorted(arns)
