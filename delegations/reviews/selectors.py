"""Reads for access reviews, scoped to the organisation looking: an owner sees its schedule,
rounds and every question; a partner sees the rounds that asked it something and only its own
questions (the owner's answers about its delegations too, so it knows what was decided).

Another organisation's ids raise Http404 exactly like missing ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, Q, QuerySet

from accounts.models import Organisation, User
from core.web import get_or_404, parse_uuid
from delegations.models import ReviewCampaign, ReviewItem, ReviewSchedule

Decision = ReviewItem.Decision


def review_schedule_of(*, owner: Organisation) -> ReviewSchedule | None:
    return ReviewSchedule.objects.filter(organisation=owner).first()


def campaigns_for(*, organisation: Organisation) -> QuerySet[ReviewCampaign]:
    if organisation.is_owner:
        campaigns = ReviewCampaign.objects.filter(organisation=organisation)
    else:
        campaigns = ReviewCampaign.objects.filter(items__partner=organisation).distinct()
    mine = Q(items__partner=organisation) if organisation.is_partner else Q()
    return campaigns.select_related("organisation", "started_by").annotate(
        questions=Count("items", filter=mine, distinct=True),
        waiting=Count("items", filter=mine & Q(items__decision=Decision.PENDING), distinct=True),
    )


def campaign_get_for(*, organisation: Organisation, campaign_id: object) -> ReviewCampaign:
    return get_or_404(campaigns_for(organisation=organisation), pk=parse_uuid(campaign_id))


def items_for(*, organisation: Organisation, campaign: ReviewCampaign) -> QuerySet[ReviewItem]:
    items = ReviewItem.objects.filter(campaign=campaign)
    if not organisation.is_owner:
        items = items.filter(partner=organisation)
    return items.select_related(
        "delegation__catalog_role",
        "delegation__owner",
        "delegation__managed_role__cloud_account",
        "partner",
        "assignment__user",
        "decided_by",
    ).order_by(
        "side",
        "delegation__catalog_role__role_name",
        "delegation__managed_role__cloud_account__account_uid",
        "partner__name",
        "pk",
    )


def item_get_for(*, organisation: Organisation, item_id: object) -> ReviewItem:
    items = ReviewItem.objects.select_related("campaign", "partner", "delegation")
    if organisation.is_owner:
        items = items.filter(campaign__organisation=organisation)
    else:
        items = items.filter(partner=organisation, side=ReviewItem.Side.PARTNER)
    return get_or_404(items, pk=parse_uuid(item_id))


def waiting_for(*, organisation: Organisation, user: User) -> QuerySet[ReviewItem]:
    """Questions of open rounds this organisation's side owes an answer to."""
    items = ReviewItem.objects.filter(
        decision=Decision.PENDING, campaign__status=ReviewCampaign.Status.OPEN
    )
    if organisation.is_owner:
        items = items.filter(
            campaign__organisation=organisation, side=ReviewItem.Side.OWNER
        ).exclude(partner__memberships__user=user)
    else:
        items = items.filter(partner=organisation, side=ReviewItem.Side.PARTNER)
    return items.select_related(
        "campaign__organisation", "delegation__catalog_role", "partner"
    ).order_by("campaign__deadline_at", "pk")


@dataclass(frozen=True)
class ReviewRow:
    """One line of the review report: what was asked, of whom, and who decided what."""

    campaign_started_at: object
    deadline_at: object
    owner: str
    partner: str
    partner_account_uid: str
    role_name: str
    # The owner's account the role is in: one role name can be granted in several (a fleet).
    account_uid: str
    delegation_id: str
    # When the access starts: after `campaign_started_at` for a grant approved for later.
    starts_at: object
    side: str
    staff: str
    decision: str
    decided_by: str
    decided_at: object
    new_ends_at: object
    note: str
    # The access had not started when the round asked about it (approved for a later start).
    not_started_when_asked: bool = False


def review_report(
    *, organisation: Organisation, campaign: ReviewCampaign | None = None
) -> list[ReviewRow]:
    """Every question of the organisation's rounds (one round, or all), newest round first."""
    items = ReviewItem.objects.select_related(
        "campaign__organisation",
        "delegation__catalog_role",
        "delegation__managed_role__cloud_account",
        "partner",
        "assignment__user",
        "decided_by",
    )
    if organisation.is_owner:
        items = items.filter(campaign__organisation=organisation)
    else:
        items = items.filter(partner=organisation)
    if campaign is not None:
        items = items.filter(campaign=campaign)
    return [
        ReviewRow(
            campaign_started_at=item.campaign.started_at,
            deadline_at=item.campaign.deadline_at,
            owner=item.campaign.organisation.name,
            partner=item.partner.name,
            partner_account_uid=item.delegation.partner_account_uid,
            role_name=item.delegation.catalog_role.role_name,
            account_uid=item.delegation.managed_role.cloud_account.account_uid,
            delegation_id=str(item.delegation_id),
            starts_at=item.delegation.starts_at,
            side=item.side,
            staff=item.assignment.user.email if item.assignment else "",
            decision=item.decision,
            decided_by=item.decided_by.email if item.decided_by else "",
            decided_at=item.decided_at,
            new_ends_at=item.new_ends_at,
            note=item.note,
            not_started_when_asked=item.delegation.starts_at > item.campaign.started_at,
        )
        for item in items.order_by("-campaign__started_at", "side", "pk")
    ]
