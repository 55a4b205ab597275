"""Reads of an organisation's connected cloud account."""

from __future__ import annotations

from accounts.models import Organisation
from delegations.models import CloudAccount


def cloud_account_of_organisation(*, organisation: Organisation) -> CloudAccount | None:
    """The organisation's connected account, or None."""
    return (
        CloudAccount.objects.filter(organisation=organisation, is_active=True)
        .select_related("organisation", "created_by")
        .first()
    )
