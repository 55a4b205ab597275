"""Reads and tenancy checks for the catalogue, the allow-list and the partner links.

Another organisation's ids raise Http404 exactly like missing ones.
"""

from __future__ import annotations

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
    """The connected owner accounts `catalog_role` may be granted in, its home account first:
    its home, plus every other connected account when it is offered in all, else the ones
    listed."""
    connected = CloudAccount.objects.filter(
        organisation_id=catalog_role.organisation_id, is_active=True
    )
    if not catalog_role.offered_in_all_accounts:
        connected = connected.filter(
            Q(pk=catalog_role.cloud_account_id) | Q(extra_catalog_roles=catalog_role)
        )
    accounts = list(connected.distinct().order_by(*HOME_FIRST))
    accounts.sort(key=lambda account: account.pk != catalog_role.cloud_account_id)
    return accounts


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
