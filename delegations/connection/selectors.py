"""Reads of an organisation's connected cloud accounts."""

from __future__ import annotations

from django.http import Http404

from accounts.models import Organisation
from delegations.models import HOME_FIRST, CloudAccount


def cloud_account_of_organisation(*, organisation: Organisation) -> CloudAccount | None:
    """The organisation's primary connected account (a partner's only one), or None."""
    return (
        CloudAccount.objects.filter(organisation=organisation, is_active=True, is_primary=True)
        .select_related("organisation", "created_by")
        .first()
    )


def cloud_accounts_of_organisation(*, organisation: Organisation) -> list[CloudAccount]:
    """Every connected account of the organisation, the primary first."""
    return list(
        CloudAccount.objects.filter(organisation=organisation, is_active=True)
        .select_related("organisation", "created_by")
        .order_by(*HOME_FIRST)
    )


def cloud_account_get_for_organisation(
    *, organisation: Organisation, cloud_account_id: object
) -> CloudAccount:
    """One connected account of `organisation`; another organisation's (or a disconnected
    one) is 404, like a missing id."""
    account = (
        CloudAccount.objects.filter(
            organisation=organisation, is_active=True, pk=str(cloud_account_id)
        )
        .select_related("organisation", "created_by")
        .first()
    )
    if account is None:
        raise Http404("No such cloud account.")
    return account
