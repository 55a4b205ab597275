"""What waits for a person, by their role in the current organisation.

- owner admin: requests to decide, break-glass activations to review, failed applies to
  retry, drift to resolve;
- partner admin: access granted but nobody assigned to use it yet, staff to confirm in an
  owner's access review (owner admins: delegations to keep, shorten or revoke);
- partner staff: their access ending within a day.
Reads only; scoped to the person's current organisation.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Membership, Organisation, User
from core.i18n import format_time
from delegations.connection.selectors import cloud_account_of_organisation
from delegations.models import (
    BreakGlassActivation,
    Delegation,
    DriftFinding,
    FleetGrant,
    ReviewItem,
    StaffAssignment,
)
from delegations.reviews.selectors import waiting_for

Status = Delegation.Status
LIMIT = 20


@dataclass(frozen=True)
class InboxItem:
    kind: str  # setup | decide | break_glass | review | retry | drift | assign | ending
    title: str
    detail: str
    url: str
    action: str
    since: dt.datetime | None = None


def _label(delegation: Delegation) -> str:
    return f"{delegation.role_label} · {delegation.partner.name}"


def _connection_items(organisation: Organisation) -> list[InboxItem]:
    """An organisation with no connected cloud account can grant nothing (an owner) or use
    nothing it is granted (a partner): connecting one comes before everything else."""
    if cloud_account_of_organisation(organisation=organisation) is not None:
        return []
    if organisation.is_owner:
        detail = _(
            "The portal needs an AccessKey of your account %(uid)s to create the roles you "
            "grant partners."
        )
    else:
        detail = _(
            "The portal needs an AccessKey of your account %(uid)s to let your staff use the "
            "access owners grant you."
        )
    return [
        InboxItem(
            kind="setup",
            title=_("Connect your Alibaba Cloud account"),
            detail=detail % {"uid": organisation.account_uid},
            url=reverse("delegations:cloud_account"),
            action=_("Connect"),
        )
    ]


def _owner_admin_items(organisation: Organisation, user: User) -> list[InboxItem]:
    items: list[InboxItem] = _connection_items(organisation)
    requested = (
        Delegation.objects.filter(owner=organisation, status=Status.REQUESTED)
        # Someone who is also in the requesting partner may not decide it.
        .exclude(partner__memberships__user=user)
    )
    waiting = (
        # A fleet's accounts are decided together, on the fleet's page: one item below.
        requested.filter(fleet=None)
        .select_related("catalog_role", "partner", "managed_role__cloud_account")
        .order_by("created_at")
    )
    waiting_in_fleet: dict[object, int] = dict(
        requested.exclude(fleet=None)
        .values("fleet")
        .annotate(accounts=Count("pk"))
        .values_list("fleet", "accounts")
    )
    fleets = (
        FleetGrant.objects.filter(pk__in=list(waiting_in_fleet))
        .select_related("catalog_role", "partner")
        .order_by("created_at")
    )
    for fleet in fleets[:LIMIT]:
        items.append(
            InboxItem(
                kind="decide",
                title=_("Decide: %(what)s")
                % {"what": f"{fleet.catalog_role.role_name} · {fleet.partner.name}"},
                detail=ngettext(
                    "A fleet grant: %(count)d account, decided together.",
                    "A fleet grant: %(count)d accounts, decided together.",
                    waiting_in_fleet[fleet.pk],
                )
                % {"count": waiting_in_fleet[fleet.pk]},
                url=reverse("delegations:fleet_detail", args=[fleet.pk]),
                action=_("Review"),
                since=fleet.created_at,
            )
        )
    for delegation in waiting[:LIMIT]:
        items.append(
            InboxItem(
                kind="decide",
                title=_("Decide: %(what)s") % {"what": _label(delegation)},
                detail=delegation.reason[:140],
                url=reverse("delegations:detail", args=[delegation.pk]),
                action=_("Review"),
                since=delegation.created_at,
            )
        )
    reviews = (
        BreakGlassActivation.objects.filter(
            owner=organisation, review=BreakGlassActivation.Review.PENDING
        )
        .exclude(partner__memberships__user=user)
        .select_related(
            "delegation__catalog_role",
            "delegation__partner",
            "delegation__managed_role__cloud_account",
            "partner",
            "activated_by",
        )
        .order_by("review_due_at")
    )
    for activation in reviews[:LIMIT]:
        items.append(
            InboxItem(
                kind="break_glass",
                title=_("Review break-glass: %(what)s") % {"what": _label(activation.delegation)},
                detail=_("%(who)s: %(why)s")
                % {"who": activation.activated_by.email, "why": activation.reason[:120]},
                url=reverse("delegations:break_glass") + "#reviews",
                action=_("Review"),
                since=activation.activated_at,
            )
        )
    failed = (
        Delegation.objects.filter(owner=organisation, status=Status.FAILED)
        .select_related("catalog_role", "partner", "managed_role__cloud_account")
        .order_by("updated_at")
    )
    for delegation in failed[:LIMIT]:
        items.append(
            InboxItem(
                kind="retry",
                title=_("Failed to apply: %(what)s") % {"what": _label(delegation)},
                detail=delegation.last_error_code or "",
                url=reverse("delegations:detail", args=[delegation.pk]),
                action=_("Retry"),
                since=delegation.last_error_at or delegation.updated_at,
            )
        )
    drift = DriftFinding.objects.filter(
        managed_role__cloud_account__organisation=organisation, resolved_at__isnull=True
    ).count()
    if drift:
        items.append(
            InboxItem(
                kind="drift",
                title=ngettext(
                    "%(count)d difference between the cloud and the portal",
                    "%(count)d differences between the cloud and the portal",
                    drift,
                )
                % {"count": drift},
                detail=_("A role changed outside the portal: repair it or accept it."),
                url=reverse("delegations:roles"),
                action=_("Resolve"),
            )
        )
    return items


def _review_items(organisation: Organisation, user: User) -> list[InboxItem]:
    """One line per open access review that waits for this side's answers."""
    by_campaign: dict[object, list[ReviewItem]] = {}
    for question in waiting_for(organisation=organisation, user=user):
        by_campaign.setdefault(question.campaign_id, []).append(question)
    items = []
    for campaign_id, questions in list(by_campaign.items())[:LIMIT]:
        campaign = questions[0].campaign
        items.append(
            InboxItem(
                kind="review",
                title=ngettext(
                    "Access review by %(owner)s: %(n)d answer needed",
                    "Access review by %(owner)s: %(n)d answers needed",
                    len(questions),
                )
                % {"owner": campaign.organisation.name, "n": len(questions)},
                detail=_("Deadline %(when)s.") % {"when": format_time(campaign.deadline_at)},
                url=reverse("delegations:access_review", args=[campaign_id]),
                action=_("Answer"),
                since=campaign.started_at,
            )
        )
    return items


def _partner_admin_items(organisation: Organisation) -> list[InboxItem]:
    unassigned = (
        Delegation.objects.filter(partner=organisation, status=Status.ACTIVE)
        .annotate(
            people=Count("staff_assignments", filter=Q(staff_assignments__ended_at__isnull=True))
        )
        .filter(people=0)
        .select_related("catalog_role", "owner", "partner", "managed_role__cloud_account")
        .order_by("activated_at")
    )
    return _connection_items(organisation) + [
        InboxItem(
            kind="assign",
            title=_("Assign people: %(role)s from %(owner)s")
            % {"role": delegation.role_label, "owner": delegation.owner.name},
            detail=_("Access is ready, and nobody is assigned to use it yet."),
            url=reverse("delegations:delegation_staff", args=[delegation.pk]),
            action=_("Assign"),
            since=delegation.activated_at,
        )
        for delegation in unassigned[:LIMIT]
    ]


def _staff_items(organisation: Organisation, user: User) -> list[InboxItem]:
    now = timezone.now()
    ending = (
        StaffAssignment.objects.filter(
            partner=organisation,
            user=user,
            ended_at__isnull=True,
            delegation__status=Status.ACTIVE,
            delegation__ends_at__gt=now,
            delegation__ends_at__lte=now + dt.timedelta(hours=24),
        )
        .select_related(
            "delegation__catalog_role",
            "delegation__owner",
            "delegation__managed_role__cloud_account",
        )
        .order_by("delegation__ends_at")
    )
    return [
        InboxItem(
            kind="ending",
            title=_("Ends soon: %(role)s at %(owner)s")
            % {
                "role": assignment.delegation.role_label,
                "owner": assignment.delegation.owner.name,
            },
            detail=_("Access ends %(when)s.") % {"when": format_time(assignment.delegation.ends_at)}
            if assignment.delegation.ends_at
            else "",
            url=reverse("delegations:my_access"),
            action=_("Open"),
            since=None,
        )
        for assignment in ending[:LIMIT]
    ]


def inbox_for(*, membership: Membership) -> list[InboxItem]:
    """What waits for the person of `membership` in its organisation."""
    organisation = membership.organisation
    if organisation.is_owner and membership.role == Membership.Role.ADMIN:
        return _owner_admin_items(organisation, membership.user) + _review_items(
            organisation, membership.user
        )
    if organisation.is_partner and membership.role == Membership.Role.ADMIN:
        return _partner_admin_items(organisation) + _review_items(organisation, membership.user)
    if organisation.is_partner and membership.role == Membership.Role.STAFF:
        return _staff_items(organisation, membership.user)
    return []
