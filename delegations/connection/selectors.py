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


def organisation_own_account_uids(*, organisation: Organisation) -> set[str]:
    """Every account UID that is the organisation's own: the one it registered with and each
    account it connected, one since disconnected too (it held that account's key). A partner
    under one of them would be an owner trusting itself as its partner."""
    connected = CloudAccount.objects.filter(organisation=organisation).values_list(
        "account_uid", flat=True
    )
    return {*connected, organisation.account_uid}


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


def cloud_account_sign_in_name(account: CloudAccount) -> str:
    """How the console names `account` (a switch-role link's parent, a RAM user's logon
    domain): its enterprise alias, else its UID. The organisation's own alias names its
    primary account only: lent to another of its accounts, it would send people to the
    primary."""
    if account.alias:
        return account.alias
    organisation = account.organisation
    if account.account_uid == organisation.account_uid and organisation.enterprise_alias:
        return organisation.enterprise_alias
    return account.account_uid
