"""Reads of the API's own rows, scoped to their owner (a foreign id is 404), and the reason a
person has no access to a delegation (for the CLI's helpful denials)."""

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Organisation, User
from api.models import ApiToken, ServiceAccount
from core.web import get_or_404, parse_uuid
from delegations.catalog.partner_links import partner_link_for_partner
from delegations.lifecycle.selectors import (
    delegation_get_for_organisation,
    delegations_for_partner,
)
from delegations.models import Delegation, PartnerLink, StaffAssignment


def tokens_of_user(*, user: User) -> QuerySet[ApiToken]:
    return ApiToken.objects.filter(user=user).select_related("organisation")


def token_get_for_user(*, user: User, token_id: object) -> ApiToken:
    return get_or_404(tokens_of_user(user=user), pk=parse_uuid(token_id))


def service_accounts_of(*, organisation: Organisation) -> QuerySet[ServiceAccount]:
    return ServiceAccount.objects.filter(organisation=organisation).prefetch_related("tokens")


def service_account_get(*, organisation: Organisation, account_id: object) -> ServiceAccount:
    return get_or_404(service_accounts_of(organisation=organisation), pk=parse_uuid(account_id))


@dataclass(frozen=True)
class AccessDenial:
    """Why a person has no usable access to a delegation: `reason` is one of none, ended
    (with `status`: expired, revoked…), not-assigned."""

    reason: str
    detail: str
    status: str = ""


def access_denial(*, user: User, organisation: Organisation, delegation_id: object) -> AccessDenial:
    """Why `user` cannot use the delegation; 404 when it is not their organisation's at all."""
    try:
        delegation = delegation_get_for_organisation(
            organisation=organisation, delegation_id=delegation_id
        )
    except Http404:
        return AccessDenial("none", "You have no access with this id.")
    if delegation.partner_id != organisation.pk:
        return AccessDenial("none", "You have no access with this id.")
    name = f"{delegation.owner.name}'s {delegation.catalog_role.role_name}"
    if delegation.status != Delegation.Status.ACTIVE:
        return AccessDenial(
            "ended",
            f"{name} is {delegation.get_status_display().lower()}.",
            status=delegation.status,
        )
    ended = StaffAssignment.objects.filter(
        delegation=delegation, user=user, ended_at__isnull=False
    ).exists()
    if ended:
        return AccessDenial("not-assigned", f"Your assignment to {name} has ended.")
    return AccessDenial("not-assigned", f"You are not assigned to {name}; ask your admin.")


def partner_link_remembered(*, partner: Organisation, owner_slug: str) -> PartnerLink | None:
    """A partner link of the owner `owner_slug` that `partner` used for an earlier request
    and that is still valid for it (newest first): `pap request --owner` without a code.
    Partners still never browse owners: only an owner they reached with a code is found."""
    link_ids = (
        delegations_for_partner(partner=partner)
        .filter(owner__slug=owner_slug, partner_link__isnull=False)
        .order_by("-created_at")
        .values_list("partner_link_id", flat=True)
    )
    for link_id in dict.fromkeys(link_ids):
        link = partner_link_for_partner(link_id=link_id, partner=partner)
        if link is not None:
            return link
    return None
