"""Reads of the API's own rows, scoped to their owner (a foreign id is 404), and the reason a
person has no access to a delegation (for the CLI's helpful denials)."""

from dataclasses import dataclass

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Organisation, User
from api.models import ApiToken, ServiceAccount
from core.web import get_or_404, parse_uuid
from delegations.lifecycle.selectors import delegation_get_for_organisation
from delegations.models import Delegation, StaffAssignment


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
