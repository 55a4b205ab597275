"""Reads for break-glass, scoped to the organisation looking: the owner's emergency roles and
activations, the partner's (and which of them a person may activate), the reviews waiting,
and the break-glass windows the access report and the timeline mark.

Another organisation's ids raise Http404 exactly like missing ones.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db.models import QuerySet
from django.utils import timezone

from accounts import selectors as accounts_selectors
from accounts.models import Membership, Organisation, User
from core.web import get_or_404, parse_uuid
from delegations.models import (
    CATALOG_ROLE_ORDER,
    DESIRED_PRESENT_STATUSES,
    BreakGlassActivation,
    BreakGlassRole,
    CatalogRole,
    Delegation,
    PartnerAllowance,
)

Review = BreakGlassActivation.Review


def break_glass_roles_for_owner(*, owner: Organisation) -> QuerySet[BreakGlassRole]:
    return (
        BreakGlassRole.objects.filter(organisation=owner)
        .select_related("catalog_role__cloud_account", "partner")
        .prefetch_related("people")
    )


def break_glass_role_get_for_owner(*, owner: Organisation, marking_id: object) -> BreakGlassRole:
    return get_or_404(break_glass_roles_for_owner(owner=owner), pk=parse_uuid(marking_id))


def break_glass_roles_for_person(*, partner: Organisation, user: User) -> QuerySet[BreakGlassRole]:
    """The emergency roles offered to `partner` that `user` is named for."""
    return (
        BreakGlassRole.objects.filter(partner=partner, people=user, is_active=True)
        .select_related("catalog_role__cloud_account", "organisation")
        .order_by("catalog_role__role_name")
    )


def break_glass_roles_for_partner(*, partner: Organisation) -> QuerySet[BreakGlassRole]:
    return (
        BreakGlassRole.objects.filter(partner=partner, is_active=True)
        .select_related("catalog_role__cloud_account", "organisation")
        .prefetch_related("people")
    )


def break_glass_role_get_for_partner(
    *, partner: Organisation, marking_id: object
) -> BreakGlassRole:
    return get_or_404(
        BreakGlassRole.objects.filter(partner=partner).select_related(
            "catalog_role", "organisation", "partner"
        ),
        pk=parse_uuid(marking_id),
    )


def activations_for(*, organisation: Organisation) -> QuerySet[BreakGlassActivation]:
    """Activations the organisation is a side of (owner or partner), newest first."""
    side = {"owner": organisation} if organisation.is_owner else {"partner": organisation}
    return BreakGlassActivation.objects.filter(**side).select_related(
        "delegation__catalog_role",
        "delegation__managed_role__cloud_account",
        "partner",
        "owner",
        "activated_by",
        "reviewed_by",
    )


def live_activations(
    *, markings: Iterable[BreakGlassRole], now: dt.datetime | None = None
) -> dict[object, BreakGlassActivation]:
    """Each marking's live activation, by marking id: access the worker applies or keeps, its
    window not over, nobody ending it. A failed apply is not live: it grants nothing, and the
    person in the emergency may activate again."""
    live = BreakGlassActivation.objects.filter(
        break_glass_role__in=[marking.pk for marking in markings],
        ends_at__gt=now or timezone.now(),
        delegation__status__in=DESIRED_PRESENT_STATUSES,
        delegation__end_cause=Delegation.EndCause.NONE,
    ).select_related("break_glass_role__catalog_role", "activated_by")
    # Oldest first, so that the newest wins should two ever be live.
    return {
        activation.break_glass_role_id: activation for activation in live.order_by("activated_at")
    }


def live_activation(*, marking: BreakGlassRole) -> BreakGlassActivation | None:
    return live_activations(markings=[marking]).get(marking.pk)


def activation_get_for_owner(*, owner: Organisation, activation_id: object) -> BreakGlassActivation:
    return get_or_404(
        activations_for(organisation=owner).filter(owner=owner), pk=parse_uuid(activation_id)
    )


def reviews_waiting(*, owner: Organisation) -> QuerySet[BreakGlassActivation]:
    return activations_for(organisation=owner).filter(owner=owner, review=Review.PENDING)


def catalog_role_choices(*, owner: Organisation) -> QuerySet[CatalogRole]:
    return (
        CatalogRole.objects.filter(organisation=owner, is_active=True)
        .select_related("cloud_account")
        .order_by(*CATALOG_ROLE_ORDER)
    )


def partner_choices(*, owner: Organisation) -> QuerySet[Organisation]:
    """Partner organisations whose account is on the owner's allow-list."""
    uids = PartnerAllowance.objects.filter(organisation=owner).values_list(
        "partner_account_uid", flat=True
    )
    return accounts_selectors.organisations_confirmed(
        Organisation.objects.filter(kind=Organisation.Kind.PARTNER, account_uid__in=uids)
    ).order_by("name")


def partner_people(*, partners: Iterable[Organisation]) -> QuerySet[User]:
    return (
        User.objects.filter(memberships__organisation__in=list(partners))
        .exclude(memberships__role=Membership.Role.AUDITOR)
        .distinct()
        .order_by("email")
    )


def break_glass_windows(*, delegation_ids: Iterable[object]) -> dict[object, BreakGlassActivation]:
    """Each delegation's break-glass activation (window, who, review), for the delegations
    that are break-glass activations."""
    return {
        activation.delegation_id: activation
        for activation in BreakGlassActivation.objects.filter(
            delegation_id__in=list(delegation_ids)
        ).select_related("activated_by", "reviewed_by")
    }
