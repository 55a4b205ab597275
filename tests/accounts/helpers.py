import re

from django.core import mail

from audit.models import AuditEvent

LINK = re.compile(r"https?://[^\s\"'<>]+")


def links_in_last_email(to: str) -> list[str]:
    messages = [m for m in mail.outbox if to in m.to]
    assert messages, f"no email to {to}; outbox: {[m.to for m in mail.outbox]}"
    return LINK.findall(messages[-1].body)


def path_of(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def events(action: str) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action=action).order_by("sequence"))


def all_event_text() -> str:
    """Every stored field of every audit event, for "no secret in the log" assertions."""
    parts = []
    for event in AuditEvent.objects.order_by("sequence"):
        parts.extend(
            str(value)
            for value in (
                event.action,
                event.actor_label,
                event.target_label,
                event.target_id,
                event.before,
                event.after,
                event.metadata,
            )
        )
    return "\n".join(parts)
