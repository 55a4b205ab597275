"""The state the portal wants for one managed RAM role, computed from the ledger.

Ground floor: the worker plans from it, the periodic drift check compares the cloud with it,
and the owner's role page previews it, so it depends on nothing above the models.
"""

from __future__ import annotations

import datetime as dt

from django.conf import settings

from cloud import policies
from delegations import role_plan as planner
from delegations.models import (
    DESIRED_PRESENT_STATUSES,
    CatalogRole,
    Delegation,
    ManagedRole,
    RoleCutOff,
)


def _catalog_role_for(managed_role: ManagedRole, delegations: list[Delegation]) -> CatalogRole:
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


def waiting_for_room_message(role_name: str, *, used: int, limit: int) -> str:
    return (
        f"Waiting for room on role {role_name}: its trust policy holds {used} of {limit} "
        "characters and this partner does not fit yet. The access goes in, in approval "
        "order, as soon as a revoke frees room."
    )


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def approval_order(delegations: list[Delegation]) -> list[Delegation]:
    """Who gets in first when a trust policy is full: the earliest approved."""
    return sorted(
        delegations, key=lambda d: (d.decided_at or d.created_at or _EPOCH, d.created_at, str(d.pk))
    )


def principal_end_times(present: list[Delegation]) -> tuple[tuple[str, str], ...]:
    """The fail-safe end time of each principal whose every wanted grant is time-bound: the
    latest of their ends, so overlapping grants never cut each other's access short."""
    ends: dict[str, dt.datetime | None] = {}
    for delegation in present:
        principal = delegation.principal_arn
        if principal in ends and ends[principal] is None:
            continue
        end = delegation.ends_at
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
    wanted = frozenset(d.principal_arn for d in present)
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
        delete_when_empty=not catalog_role.keep_role_when_empty,
        principals_in_order=tuple(d.principal_arn for d in approval_order(present)),
        max_trust_chars=trust_policy_max_chars(),
        principal_end_times=principal_end_times(present),
    )
    return desired, wanted
