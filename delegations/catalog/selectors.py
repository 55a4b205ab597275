"""Reads and tenancy checks for the catalogue, the allow-list and the partner links.

Another organisation's ids raise Http404 exactly like missing ones.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from django.db.models import Count, Q, QuerySet

from accounts.models import Organisation
from core.web import get_or_404, parse_uuid
from delegations.models import (
    CATALOG_ROLE_ORDER,
    FINAL_STATUSES,
    HOME_FIRST,
    CatalogRole,
    CloudAccount,
    Delegation,
    PartnerAllowance,
    PartnerLink,
)


def catalog_roles_for_owner(*, owner: Organisation) -> QuerySet[CatalogRole]:
    """Every catalogue role of the owner, active first, with its count of open delegations."""
    return (
        CatalogRole.objects.filter(organisation=owner)
        .select_related("cloud_account")
        .annotate(
            open_delegations=Count(
                "delegations", filter=~Q(delegations__status__in=list(FINAL_STATUSES))
            )
        )
        .order_by("-is_active", *CATALOG_ROLE_ORDER)
    )


def catalog_role_get_for_owner(*, owner: Organisation, catalog_role_id: object) -> CatalogRole:
    return get_or_404(
        CatalogRole.objects.select_related("cloud_account", "organisation"),
        pk=parse_uuid(catalog_role_id),
        organisation=owner,
    )


def partner_allowances_for_owner(*, owner: Organisation) -> QuerySet[PartnerAllowance]:
    return PartnerAllowance.objects.filter(organisation=owner).select_related("created_by")


def partner_account_allow_listed(*, owner: Organisation, partner_account_uid: str) -> bool:
    """Whether the owner's allow-list holds the partner account UID."""
    return PartnerAllowance.objects.filter(
        organisation=owner, partner_account_uid=partner_account_uid
    ).exists()


def partner_allowance_get_for_owner(
    *, owner: Organisation, allowance_id: object
) -> PartnerAllowance:
    return get_or_404(
        PartnerAllowance.objects.select_related("organisation"),
        pk=parse_uuid(allowance_id),
        organisation=owner,
    )


def partner_links_for_owner(*, owner: Organisation) -> QuerySet[PartnerLink]:
    return PartnerLink.objects.filter(organisation=owner).select_related("created_by", "used_by")


def partner_link_get_for_owner(*, owner: Organisation, link_id: object) -> PartnerLink:
    return get_or_404(PartnerLink.objects.all(), organisation=owner, pk=parse_uuid(link_id))


def catalog_role_accounts(*, catalog_role: CatalogRole) -> list[CloudAccount]:
    """The connected owner accounts `catalog_role` may be granted in, its home account first
    (`catalog_roles_offered_accounts` for one role)."""
    return catalog_roles_offered_accounts([catalog_role])[catalog_role.pk]


def catalog_roles_offered_accounts(
    roles: Iterable[CatalogRole],
) -> dict[uuid.UUID, list[CloudAccount]]:
    """Per role (by id), the connected owner accounts it may be granted in: its home, plus
    every other connected account of its owner when it is offered in all, else the ones
    listed. Its home account first, then the others in the order every account list uses
    (`HOME_FIRST`: the primary, then as they were connected). Two queries for any number of
    roles, so a page of them (the API's lists) reads no more than one role."""
    roles = list(roles)
    if not roles:
        return {}
    connected = list(
        CloudAccount.objects.filter(
            organisation_id__in={role.organisation_id for role in roles}, is_active=True
        ).order_by(*HOME_FIRST)
    )
    listed: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
    through = CatalogRole.extra_accounts.through.objects.filter(
        catalogrole_id__in=[role.pk for role in roles]
    )
    for role_id, account_id in through.values_list("catalogrole_id", "cloudaccount_id"):
        listed[role_id].add(account_id)
    offered: dict[uuid.UUID, list[CloudAccount]] = {}
    for role in roles:
        accounts = [
            account
            for account in connected
            if account.organisation_id == role.organisation_id
            and (
                role.offered_in_all_accounts
                or account.pk == role.cloud_account_id
                or account.pk in listed[role.pk]
            )
        ]
        # The home account first; the others keep their `HOME_FIRST` order.
        home = [account for account in accounts if account.pk == role.cloud_account_id]
        offered[role.pk] = home + [account for account in accounts if account not in home]
    return offered


def catalog_roles_granted_in(
    roles: QuerySet[CatalogRole], *, accounts: Iterable[CloudAccount]
) -> QuerySet[CatalogRole]:
    """Those of `roles` that may be granted in one of `accounts`: homed there, offered in
    every account, or offered there (`catalog_role_accounts` from the accounts' side). The
    catalogue never lets two roles of one name be granted in one account
    (`catalog_role_validate`, `catalog_role_validate_set_accounts`): there both would be the
    one RAM role of that name."""
    ids = [account.pk for account in accounts]
    return roles.filter(
        Q(cloud_account_id__in=ids) | Q(offered_in_all_accounts=True) | Q(extra_accounts__in=ids)
    ).distinct()


def catalog_role_reach(*, catalog_role: CatalogRole) -> list[CloudAccount]:
    """The connected owner accounts besides its home where `catalog_role`'s policies are
    attached, or may be: where it is offered, and where it has a delegation not ended (one
    granted before the role was offered there no more). An edit of its policies reaches the
    role's RAM roles in each (`catalog_role_update` reconciles them)."""
    offered = {account.pk: account for account in catalog_role_accounts(catalog_role=catalog_role)}
    not_ended = (
        Delegation.objects.filter(catalog_role=catalog_role)
        .exclude(status__in=list(FINAL_STATUSES))
        .values("managed_role__cloud_account_id")
    )
    granted = CloudAccount.objects.filter(
        organisation_id=catalog_role.organisation_id, is_active=True, pk__in=not_ended
    )
    for account in granted.order_by(*HOME_FIRST):
        offered.setdefault(account.pk, account)
    offered.pop(catalog_role.cloud_account_id, None)
    return list(offered.values())
