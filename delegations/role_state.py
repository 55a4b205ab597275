"""The state the portal wants for one managed RAM role, computed from the ledger.

Ground floor: the worker plans from it, the periodic drift check compares the cloud with it,
and the owner's role page previews it, so it depends on nothing above the models.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils.translation import gettext_noop

from accounts.models import Organisation
from cloud import policies
from core.crypto import decrypt_secret
from core.i18n import stored_message, stored_text
from delegations import role_plan as planner
from delegations.models import (
    DESIRED_PRESENT_STATUSES,
    NAMED_SCOPES,
    ROLE_NAME_MAX_LENGTH,
    CatalogRole,
    CloudAccount,
    Delegation,
    ManagedRole,
    RoleCutOff,
    StaffAssignment,
    StaffRamUserLink,
    TrustedPerson,
    TrustScope,
)


def partner_role_name(role_name: str, partner_alias: str) -> str:
    """The RAM role of one partner for a catalogue role marked one role per partner:
    `<role>-<partner alias>`, the role's part shortened so the whole stays within RAM's 64
    characters (the alias, at most 32 characters, is kept whole so partners stay apart)."""
    room = ROLE_NAME_MAX_LENGTH - len(partner_alias) - 1
    return f"{role_name[:room]}-{partner_alias}"


def partner_alias(partner: Organisation) -> str:
    """How a partner is named in its own role's name: its enterprise alias, else its account
    UID (both already valid in a RAM role name)."""
    return partner.enterprise_alias or partner.account_uid


def catalog_roles_of(managed_role: ManagedRole) -> QuerySet[CatalogRole]:
    """The catalogue role(s) a managed role serves: the one it was made for (one role per
    partner), else those naming it (without regard to case, as RAM does)."""
    if managed_role.catalog_role_id is not None:
        return CatalogRole.objects.filter(pk=managed_role.catalog_role_id)
    # A role in another of the owner's accounts than the catalogue role's home (a fleet
    # grant's) is found through the delegations on it.
    return CatalogRole.objects.filter(
        Q(cloud_account_id=managed_role.cloud_account_id, role_name__iexact=managed_role.role_name)
        | Q(pk__in=Delegation.objects.filter(managed_role=managed_role).values("catalog_role_id"))
    )


def _catalog_role_for(managed_role: ManagedRole, delegations: list[Delegation]) -> CatalogRole:
    if managed_role.catalog_role_id is not None:
        return managed_role.catalog_role  # type: ignore[return-value]
    for delegation in delegations:
        if delegation.catalog_role.is_active:
            return delegation.catalog_role
    found = (
        CatalogRole.objects.filter(
            cloud_account=managed_role.cloud_account, role_name__iexact=managed_role.role_name
        )
        .order_by("-is_active", "-updated_at")
        .first()
    )
    if found is not None:
        return found
    if delegations:
        return delegations[0].catalog_role
    raise CatalogRole.DoesNotExist(f"No catalogue role names {managed_role.role_name}.")


def _policy_keys(catalog_role: CatalogRole) -> frozenset[tuple[str, str]]:
    return frozenset(
        (str(p.get("type")), str(p.get("name"))) for p in catalog_role.policies or [] if p
    )


def trust_policy_max_chars() -> int:
    """The size limit of a trust policy (`PORTAL_TRUST_POLICY_MAX_CHARS`, RAM's 4,096)."""
    return int(getattr(settings, "PORTAL_TRUST_POLICY_MAX_CHARS", 4096))


# `Delegation.last_error_code` of an approved access the role's full trust policy keeps out.
WAITING_FOR_ROOM = "WaitingForRoom"


WAITING_FOR_ROOM_MESSAGE = stored_message(
    gettext_noop(
        "Waiting for room on role %(role)s: its trust policy holds %(used)d of %(limit)d "
        "characters and this partner does not fit yet. The access goes in, in approval "
        "order, as soon as a revoke frees room."
    )
)


def waiting_for_room_message(role_name: str, *, used: int, limit: int) -> str:
    """Stored as the delegation's last error (in English); pages read it in their language."""
    return stored_text(WAITING_FOR_ROOM_MESSAGE, role=role_name, used=used, limit=limit)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def approval_order(delegations: list[Delegation]) -> list[Delegation]:
    """Who gets in first when a trust policy is full: the earliest approved."""
    return sorted(
        delegations, key=lambda d: (d.decided_at or d.created_at or _EPOCH, d.created_at, str(d.pk))
    )


# --- whom one delegation puts into the trust policy --------------------------------------------
def named_ram_users(delegation: Delegation, *, capped: bool = True) -> list[str]:
    """The partner RAM user names a named-people scope trusts, in the order they got in.

    Partner-managed: the RAM users linked to the staff the partner admin assigned, the first
    `named_people_cap` by assignment time. Owner-approved: the people the owner approved.
    Whole account: none. `capped=False` lists everyone, to refuse a cap below it."""
    cap = delegation.named_people_cap if capped else None
    if delegation.trust_scope == TrustScope.NAMED_OWNER_APPROVED:
        return list(
            TrustedPerson.objects.filter(
                delegation=delegation, status=TrustedPerson.Status.APPROVED
            )
            .order_by("decided_at", "ram_user_name")
            .values_list("ram_user_name", flat=True)[:cap]
        )
    if delegation.trust_scope != TrustScope.NAMED_PARTNER_MANAGED:
        return []
    assigned = list(
        StaffAssignment.objects.filter(delegation=delegation, ended_at__isnull=True)
        .order_by("assigned_at", "pk")
        .values_list("user_id", flat=True)
    )
    links = dict(
        StaffRamUserLink.objects.filter(
            organisation_id=delegation.partner_id, user_id__in=assigned
        ).values_list("user_id", "ram_user_name")
    )
    names = [links[user_id] for user_id in assigned if user_id in links]
    return list(dict.fromkeys(names))[:cap]


def broker_principal(delegation: Delegation) -> str | None:
    """The partner's broker (the RAM user the portal connects to the partner account as), when
    it is a user of the partner's account: a named scope trusts it too, so the portal can
    broker credentials and console sessions for the named people (and only for them: the
    portal refuses anyone else, and stamps every session with SourceIdentity)."""
    account = CloudAccount.objects.filter(
        organisation_id=delegation.partner_id, is_active=True
    ).first()
    if account is None or not account.caller_arn:
        return None
    try:
        principal = policies.parse_principal(account.caller_arn)
    except policies.PolicyError:
        return None
    if principal.kind != "user" or principal.account != delegation.partner_account_uid:
        return None
    return account.caller_arn


def oos_service_role_principal(delegation: Delegation) -> str | None:
    """`acs:ram::<partner>:role/OOSServiceRole` once the partner's admin has allowed runbooks
    and the portal has set that role up: a named scope admits it so the partner's runbooks
    reach this role through OOS (the account-wide scope already admits every partner role)."""
    ready = CloudAccount.objects.filter(
        organisation_id=delegation.partner_id,
        is_active=True,
        account_uid=delegation.partner_account_uid,
        oos_service_role_ready_at__isnull=False,
    ).exists()
    if not ready:
        return None
    return policies.role_arn(delegation.partner_account_uid, policies.OOS_SERVICE_ROLE_NAME)


def delegation_principals(delegation: Delegation) -> frozenset[str]:
    """The RAM principals this delegation wants in the role's trust policy."""
    if delegation.trust_scope == TrustScope.PARTNER_ACCOUNT:
        return frozenset({delegation.principal_arn})
    names = named_ram_users(delegation)
    if not names:
        return frozenset()
    arns = {policies.ram_user_arn(delegation.partner_account_uid, name) for name in names}
    broker = broker_principal(delegation) if delegation.named_scope_trusts_broker else None
    if broker is not None:
        arns.add(broker)
    oos_role = oos_service_role_principal(delegation)
    if oos_role is not None:
        arns.add(oos_role)
    return frozenset(arns)


def delegation_external_id(delegation: Delegation) -> str | None:
    """The ExternalId the delegation's trust statement requires, or None."""
    if not delegation.external_id_ciphertext:
        return None
    return decrypt_secret(delegation.external_id_ciphertext)


def _conditions(delegation: Delegation, principals: frozenset[str]) -> dict[str, dict[str, Any]]:
    external_id = delegation_external_id(delegation)
    if external_id is None:
        return {}
    condition = policies.external_id_condition(external_id)
    return dict.fromkeys(principals, condition)


def principal_end_times(
    present: list[Delegation], principals: Mapping[Any, frozenset[str]]
) -> tuple[tuple[str, str], ...]:
    """The fail-safe end time of each principal whose every wanted grant is time-bound: the
    latest of their ends, so overlapping grants never cut each other's access short.
    `principals`: each delegation's principals by pk (`delegation_principals`)."""
    ends: dict[str, dt.datetime | None] = {}
    for delegation in present:
        end = delegation.ends_at
        for principal in principals[delegation.pk]:
            if principal in ends and ends[principal] is None:
                continue
            ends[principal] = None if end is None else max(end, ends.get(principal) or end)
    return tuple(
        sorted(
            (principal, policies.trust_end_time(end))
            for principal, end in ends.items()
            if end is not None
        )
    )


def desired_role_for(
    managed_role: ManagedRole, delegations: list[Delegation]
) -> tuple[planner.DesiredRole, frozenset[str]]:
    """The role the portal wants, from every delegation on it, and the wanted principals."""
    present = [d for d in delegations if d.status in DESIRED_PRESENT_STATUSES]
    principals = {d.pk: delegation_principals(d) for d in present}
    wanted = frozenset().union(*principals.values())
    conditions: dict[str, dict[str, Any]] = {}
    for delegation in present:
        conditions.update(_conditions(delegation, principals[delegation.pk]))
    catalog_role = _catalog_role_for(managed_role, present or delegations)
    policy_keys = _policy_keys(catalog_role)
    # An owner's emergency cut-off keeps the role's permission policies detached until lifted.
    cut_off = RoleCutOff.objects.filter(managed_role=managed_role, lifted_at__isnull=True).exists()
    desired = planner.DesiredRole(
        role_name=managed_role.role_name,
        owner_account_uid=managed_role.cloud_account.account_uid,
        managed_principals_wanted=wanted,
        managed_principals_known=frozenset(managed_role.known_principals or ()),
        policies_wanted=frozenset() if cut_off else policy_keys,
        managed_policies_known=policy_keys
        | frozenset((str(kind), str(name)) for kind, name in managed_role.known_policies or ()),
        max_session_duration=catalog_role.max_session_duration,
        description=catalog_role.description,
        # A live delegation whose named scope names nobody yet keeps the role (parked) for
        # the people still to come, rather than deleting it under them.
        delete_when_empty=not catalog_role.keep_role_when_empty
        and not any(d.trust_scope in NAMED_SCOPES for d in present),
        principals_in_order=tuple(
            arn for d in approval_order(present) for arn in sorted(principals[d.pk])
        ),
        max_trust_chars=trust_policy_max_chars(),
        principal_conditions=conditions,
        principal_end_times=principal_end_times(present, principals),
    )
    return desired, wanted
