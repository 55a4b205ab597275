"""Reads of the notification pages, scoped to the person's organisation (foreign ids: 404)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import Organisation, User
from core.web import get_or_404, parse_uuid, whole_number
from notifications.models import Channel, Delivery, Escalation, Preference

RECENT_DELIVERIES = 20


def channels_of_organisation(*, organisation: Organisation) -> QuerySet[Channel]:
    return Channel.objects.filter(organisation=organisation)


def channel_get_for_organisation(*, organisation: Organisation, channel_id: object) -> Channel:
    return get_or_404(
        channels_of_organisation(organisation=organisation).select_related("organisation"),
        pk=parse_uuid(channel_id),
    )


def channel_recent_deliveries(*, channel: Channel) -> list[Delivery]:
    deliveries = Delivery.objects.filter(channel=channel).order_by("-created_at", "-id")
    return list(deliveries[:RECENT_DELIVERIES])


def delivery_get_for_channel(*, channel: Channel, delivery_id: str) -> Delivery:
    pk = whole_number(delivery_id)
    if pk is None:
        raise Http404
    return get_or_404(Delivery.objects.filter(channel=channel), pk=pk)


def muted_for(*, user: User) -> list[str]:
    return muted_by_user(user_ids=[user.pk]).get(user.pk, [])


def muted_by_user(*, user_ids: list[Any]) -> dict[Any, list[str]]:
    """What each person muted (user id -> events; nothing for who never chose), in one read."""
    if not user_ids:
        return {}
    return {
        user_id: list(muted or [])
        for user_id, muted in Preference.objects.filter(user_id__in=user_ids).values_list(
            "user_id", "email_muted"
        )
    }


def escalation_contact_of(*, organisation: Organisation) -> User | None:
    """The organisation's escalation contact while they are still one of its members."""
    escalation = Escalation.objects.filter(
        organisation=organisation, contact__memberships__organisation=organisation
    ).select_related("contact")
    found = escalation.first()
    return found.contact if found else None
