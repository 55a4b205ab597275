"""Every kind of notification the portal sends, in one registry: what people choose in their
preferences and what a channel subscribes to."""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from core.registry import InfoEnum


@dataclass(frozen=True)
class EventInfo:
    label: str | Promise
    # A security notice reaches the person whatever their preferences say.
    security: bool = False
    # Offered to chat channels (a personal security notice never goes to a group chat).
    for_channels: bool = True


class NotificationEvent(InfoEnum):
    info: EventInfo

    DELEGATION_REQUESTED = ("delegation.requested", EventInfo(_("Access requested")))
    DELEGATION_REMINDER = ("delegation.reminder", EventInfo(_("Request still waiting")))
    DELEGATION_OFFERED = ("delegation.offered", EventInfo(_("Access offered")))
    DELEGATION_APPROVED = ("delegation.approved", EventInfo(_("Access approved")))
    # An approver took back their approval of a request still waiting for its quorum.
    APPROVAL_WITHDRAWN = ("delegation.approval_withdrawn", EventInfo(_("Approval withdrawn")))
    DELEGATION_REJECTED = ("delegation.rejected", EventInfo(_("Request rejected")))
    DELEGATION_WITHDRAWN = ("delegation.withdrawn", EventInfo(_("Request withdrawn")))
    DELEGATION_ACTIVE = ("delegation.active", EventInfo(_("Access ready to use")))
    DELEGATION_FAILED = ("delegation.failed", EventInfo(_("Access failed to apply")))
    DELEGATION_REVOKED = ("delegation.revoked", EventInfo(_("Access revoked")))
    DELEGATION_EXPIRING = ("delegation.expiring", EventInfo(_("Access ends soon")))
    DELEGATION_EXPIRED = ("delegation.expired", EventInfo(_("Access expired")))
    EXTENSION_REQUESTED = ("delegation.extension_requested", EventInfo(_("More time requested")))
    DELEGATION_EXTENDED = ("delegation.extended", EventInfo(_("Access extended")))
    EXTENSION_REJECTED = ("delegation.extension_rejected", EventInfo(_("More time refused")))
    # Break-glass: an activation reaches every owner admin at once, whatever their
    # preferences; reminders and the escalation of an unreviewed one are security notices too.
    BREAK_GLASS_ACTIVATED = (
        "break_glass.activated",
        EventInfo(_("Break-glass access activated"), security=True),
    )
    BREAK_GLASS_REVIEW_DUE = (
        "break_glass.review_due",
        EventInfo(_("Break-glass activation waiting for review"), security=True),
    )
    BREAK_GLASS_REVIEWED = ("break_glass.reviewed", EventInfo(_("Break-glass activation reviewed")))
    # Access reviews: a question for you, reminders, and what the deadline did.
    ACCESS_REVIEW_REQUESTED = (
        "access_review.requested",
        EventInfo(_("Access review: your answer is needed")),
    )
    ACCESS_REVIEW_REMINDER = (
        "access_review.reminder",
        EventInfo(_("Access review still waiting for you")),
    )
    ACCESS_REVIEW_CLOSED = ("access_review.closed", EventInfo(_("Access review closed")))
    CREDENTIALS_ISSUED = (
        "credentials.issued",
        EventInfo(_("Credentials issued to you"), security=True, for_channels=False),
    )
    MEMBER_INVITED = ("member.invited", EventInfo(_("Member invited")))
    MEMBER_REMOVED = ("member.removed", EventInfo(_("Member removed")))
    CHANNEL_UNHEALTHY = (
        "channel.unhealthy",
        EventInfo(_("A chat channel keeps failing"), security=True, for_channels=False),
    )
    CHANNEL_TEST = ("channel.test", EventInfo(_("Test message"), for_channels=False))
    # Partner activity from ActionTrail (activity): denied calls, use after the end, writes
    # under a read-only role, sessions the portal never issued.
    ACTIVITY_ALERT = (
        "activity.alert",
        EventInfo(_("Partner activity alert"), security=True),
    )

    @classmethod
    def lookup(cls, value: object) -> NotificationEvent | None:
        member = cls._value2member_map_.get(value) if isinstance(value, str) else None
        return member if isinstance(member, cls) else None


def channel_event_choices() -> list[tuple[str, str]]:
    return [(e.value, str(e.info.label)) for e in NotificationEvent if e.info.for_channels]


def preference_event_choices() -> list[tuple[str, str]]:
    """The notifications a person may turn off by email (never a security notice)."""
    return [
        (e.value, str(e.info.label))
        for e in NotificationEvent
        if not e.info.security and e is not NotificationEvent.CHANNEL_TEST
    ]
