"""Reads and tenancy checks for cloud accounts, the catalogue and the allow-list.

Another organisation's ids raise Http404 exactly like missing ones.
"""

from __future__ import annotations

import uuid

from django.db.models import Count, Q, QuerySet
from django.http import Http404

from accounts.models import Organisation
from delegations.models import (
    FINAL_STATUSES,
    CatalogRole,
    CloudAccount,
    PartnerAllowance,
)


def _parse_uuid(value: object) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError, AttributeError) as exc:
        raise Http404 from exc


def cloud_account_of_organisation(*, organisation: Organisation) -> CloudAccount | None:
    """The organisation's connected account, or None."""
    return (
        CloudAccount.objects.filter(organisation=organisation, is_active=True)
        .select_related("organisation", "created_by")
        .first()
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
        .order_by("-is_active", "role_name")
    )


def catalog_role_get_for_owner(*, owner: Organisation, catalog_role_id: object) -> CatalogRole:
    try:
        return CatalogRole.objects.select_related("cloud_account", "organisation").get(
            pk=_parse_uuid(catalog_role_id), organisation=owner
        )
    except CatalogRole.DoesNotExist as exc:
        raise Http404 from exc


def partner_allowances_for_owner(*, owner: Organisation) -> QuerySet[PartnerAllowance]:
    return PartnerAllowance.objects.filter(organisation=owner).select_related("created_by")


def partner_allowance_get_for_owner(
    *, owner: Organisation, allowance_id: object
) -> PartnerAllowance:
    try:
        return PartnerAllowance.objects.select_related("organisation").get(
            pk=_parse_uuid(allowance_id), organisation=owner
        )
    except PartnerAllowance.DoesNotExist as exc:
        raise Http404 from exc
