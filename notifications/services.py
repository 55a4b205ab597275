"""Who hears about what: `notify` (called by the floors above inside the transaction of the
event), the chat channels an organisation's admins manage, each person's preferences, the
escalation contact, and the worker's side: one attempt at one delivery.

Deliveries are not audit events: they keep their own log (`Delivery`). Changes to channels
and to the escalation contact are audited.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.emails import person_locale
from accounts.models import Membership, Organisation, User
from accounts.permissions import require_admin_member
from audit.actions import AuditAction
from audit.services import audit_record
from core.after_response import after_response
from core.broker import publish_urgent
from core.crypto import encrypt_secret
from core.db import insert_rows
from core.i18n import Text, recipient_locale, render_text
from notifications.events import NotificationEvent, channel_event_choices
from notifications.models import Channel, Delivery, Escalation, NoticeMark, Preference
from notifications.outbox import deliveries_publish
from notifications.selectors import muted_by_user
from notifications.webhook_urls import (
    url_hint,
    validate_signing_secret,
    validate_webhook_url,
)

logger = logging.getLogger(__name__)

CHANNEL_NAME_MAX_LENGTH = 80


# --- the notice and notify() -------------------------------------------------------------


# A notice's words: `Text(gettext_lazy("%(person)s left %(organisation)s"), person=...)` or a
# lazy string, so each recipient reads them in their own language and time zone.
# A plain str is sent as it is, in whatever language it was built in.
Message = str | Text | Promise


@dataclass(frozen=True)
class Notice:
    """What a message says. Built by the caller from facts safe to send: never a secret, a
    credential, a partner-link code or an ExternalId."""

    event: NotificationEvent
    title: Message
    summary: Message
    link_path: str
    # A fact's value may be a datetime: each recipient reads it in their own time zone.
    facts: tuple[tuple[Message, Message | dt.datetime], ...] = ()

    def content(self, organisation: Organisation) -> dict[str, Any]:
        """The message as the outbox stores it, written in the active language and time zone:
        `notify()` renders it once per recipient inside their `recipient_locale`."""
        return {
            "event": self.event.value,
            "title": render_text(self.title),
            "summary": render_text(self.summary),
            "facts": [[render_text(label), render_text(value)] for label, value in self.facts],
            "link": absolute_url(self.link_path),
            "organisation": organisation.name,
        }


def _channel_content(notice: Notice, channel: Channel) -> dict[str, Any]:
    # A channel's readers are a team: its chosen language, times in UTC (named as such).
    with recipient_locale(language=channel.language, time_zone="UTC"):
        return notice.content(channel.organisation)


def absolute_url(path: str) -> str:
    return settings.PORTAL_BASE_URL.rstrip("/") + "/" + path.lstrip("/")


def delivery_key(*parts: str) -> str:
    """A delivery's idempotency key of at most 255 characters (a long one ends in its hash)."""
    key = "|".join(parts)
    if len(key) <= 255:
        return key
    return key[:180] + "#" + hashlib.sha256(key.encode()).hexdigest()


# The deliveries this thread wrote and has not published yet. A transaction that announces
# many events (the worker activating a role's 100 partners, a bulk approval) publishes them
# all from its first commit callback, with one read, one broker connection and one update,
# instead of once per event; the other callbacks find nothing left. Keys of a rolled-back
# transaction may linger until the next publish: their rows do not exist (or are someone
# else's pending rows with the same key, which may be published anyway), so the read drops
# them.
# In a web request the publish waits until the response has been sent (`after_response`): an
# email can start a few milliseconds later, the person's page should not wait for a read, a
# broker round trip and an update (the credentials page among them). Rows a dead process
# never published are the dispatcher's, as when the broker is down.
_unpublished = threading.local()


def deliveries_enqueue(rows: list[Delivery]) -> list[str]:
    """Write deliveries (from `deliveries_render`) in the transaction of the event they
    announce, to be published after its commit; a key already written is skipped. Returns
    their idempotency keys."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("notify() must run inside the transaction of the event it announces.")
    insert_rows(rows, ignore_conflicts=True)
    keys = [row.idempotency_key for row in rows]
    if keys:
        pending: list[str] | None = getattr(_unpublished, "keys", None)
        if pending is None:
            pending = _unpublished.keys = []
        pending.extend(keys)
        transaction.on_commit(_publish_after_response)
    return keys


def _publish_after_response() -> None:
    after_response(_publish_pending)


def _publish_pending() -> None:
    # What other outboxes committed with these deliveries goes first (reconciles before the
    # emails about them: `core.broker.publish_urgent`).
    publish_urgent()
    keys: list[str] = getattr(_unpublished, "keys", None) or []
    _unpublished.keys = []
    if keys:
        _publish_new(keys)


def _publish_new(keys: list[str]) -> None:
    ids = Delivery.objects.filter(
        idempotency_key__in=keys, status=Delivery.Status.PENDING, dispatched_at__isnull=True
    ).values_list("id", flat=True)
    deliveries_publish(delivery_ids=list(ids))


@dataclass(frozen=True)
class Announcement:
    """One `notify` call's arguments, for `notify_many`."""

    key: str
    notice: Notice
    organisation: Organisation
    people: tuple[User, ...] = ()
    to_channels: bool = True


def notify(
    *,
    key: str,
    notice: Notice,
    organisation: Organisation,
    people: Iterable[User] = (),
    to_channels: bool = True,
) -> list[str]:
    """Announce `notice` to `people` by email (as their preferences allow) and to
    `organisation`'s channels subscribed to its event. `key` names the event once: calling
    again with the same key writes nothing. Runs inside the caller's transaction; the worker
    sends after the commit. Returns the deliveries' idempotency keys."""
    return notify_many(
        [
            Announcement(
                key=key,
                notice=notice,
                organisation=organisation,
                people=tuple(people),
                to_channels=to_channels,
            )
        ]
    )


def notify_many(announcements: Iterable[Announcement]) -> list[str]:
    """`notify` for many announcements at once, with the same deliveries, in a number of
    statements that does not grow with them (the worker announcing a role's hundred partners
    active)."""
    return deliveries_enqueue([row for rows in deliveries_render(announcements) for row in rows])


def deliveries_render(announcements: Iterable[Announcement]) -> list[list[Delivery]]:
    """The deliveries `notify_many` writes, one list per announcement, not written yet: the
    people's preferences in one read, the organisations' channels in one. It only reads, so
    a caller may render ahead of the transaction that announces and write them there with
    `deliveries_enqueue` (the worker renders its activation notices while its verifying reads
    are out)."""
    announcements = list(announcements)
    # Preferences matter only to notices a person may mute (security notices always arrive).
    people = {
        person.pk
        for announcement in announcements
        if not announcement.notice.event.info.security
        for person in announcement.people
        if person.email and person.is_active
    }
    muted = muted_by_user(user_ids=list(people))
    with_channels = {
        announcement.organisation.pk
        for announcement in announcements
        if announcement.to_channels and announcement.notice.event.info.for_channels
    }
    channels: dict[Any, list[Channel]] = {}
    if with_channels:
        for channel in Channel.objects.filter(organisation_id__in=with_channels, is_active=True):
            channels.setdefault(channel.organisation_id, []).append(channel)
    return [
        _deliveries(announcement, muted=muted, channels=channels) for announcement in announcements
    ]


def _deliveries(
    announcement: Announcement, *, muted: dict[Any, list[str]], channels: dict[Any, list[Channel]]
) -> list[Delivery]:
    key, notice, organisation = announcement.key, announcement.notice, announcement.organisation
    event = notice.event
    rows: list[Delivery] = []
    seen: set[object] = set()
    for person in announcement.people:
        if person.pk in seen or not person.email or not person.is_active:
            continue
        seen.add(person.pk)
        if not event.info.security and event.value in muted.get(person.pk, ()):
            continue
        with person_locale(person):
            content = notice.content(organisation)
        rows.append(
            Delivery(
                idempotency_key=delivery_key(key, f"user:{person.pk}"),
                event=event.value,
                organisation=organisation,
                recipient=person,
                recipient_email=person.email,
                content=content,
            )
        )
    if announcement.to_channels and event.info.for_channels:
        for channel in channels.get(organisation.pk, ()):
            if event.value in (channel.events or []):
                rows.append(
                    Delivery(
                        idempotency_key=delivery_key(key, f"channel:{channel.pk}"),
                        event=event.value,
                        organisation=organisation,
                        channel=channel,
                        content=_channel_content(notice, channel),
                    )
                )
    return rows


def notice_mark_once(*, key: str) -> bool:
    """True the first time `key` is marked (so the caller sends its notice), False after."""
    _mark, created = NoticeMark.objects.get_or_create(key=key[:255])
    return created


def notices_untold(
    rows: Iterable[tuple[Any, ...]], *, key: Callable[..., str | None], limit: int
) -> list[Any]:
    """The ids (first items) of the first `limit` rows whose notice is due (`key(*row)` is
    not None) and not marked yet. A sweep's `limit` then bounds the notices it sends, not the
    rows it looks at: rows told already (a request nobody decides is reminded daily) are
    passed over, their marks read a chunk at a time, and never hold up the rows behind them.
    `notice_mark_once` still decides who sends."""
    chosen: list[Any] = []
    pending = iter(rows)
    while len(chosen) < limit and (chunk := list(islice(pending, limit))):
        keys = [(row[0], due[:255]) for row in chunk if (due := key(*row)) is not None]
        marked = set(
            NoticeMark.objects.filter(key__in={due for _id, due in keys}).values_list(
                "key", flat=True
            )
        )
        chosen.extend(row_id for row_id, due in keys if due not in marked)
    return chosen[:limit]


def organisation_admins(organisation: Organisation) -> list[User]:
    return organisations_admins(organisation_ids=[organisation.pk]).get(organisation.pk, [])


def organisations_admins(*, organisation_ids: Iterable[Any]) -> dict[Any, list[User]]:
    """Each organisation's admins (organisation id -> users), in one read."""
    admins: dict[Any, list[User]] = {}
    for membership in Membership.objects.filter(
        organisation_id__in=list(organisation_ids), role=Membership.Role.ADMIN
    ).select_related("user"):
        admins.setdefault(membership.organisation_id, []).append(membership.user)
    return admins


# --- channels ---------------------------------------------------------------------------


def _require_admin(*, user: User, organisation: Organisation) -> None:
    require_admin_member(
        user,
        organisation,
        refusal=_("Only an admin of the organisation manages its notifications."),
    )


def _clean_name(name: str) -> str:
    name = " ".join((name or "").split())
    if not name:
        raise ValidationError({"name": _("Give the channel a name.")})
    if len(name) > CHANNEL_NAME_MAX_LENGTH:
        raise ValidationError({"name": _("A channel name is at most 80 characters.")})
    return name


def _clean_events(events: Iterable[str]) -> list[str]:
    allowed = {value for value, _label in channel_event_choices()}
    chosen = sorted(set(events))
    unknown = [event for event in chosen if event not in allowed]
    if unknown:
        raise ValidationError({"events": _("Unknown notification type.")})
    return chosen


def _clean_language(language: str) -> str:
    if language not in dict(settings.LANGUAGES):
        raise ValidationError({"language": _("Choose one of the offered languages.")})
    return language


def _channel_snapshot(channel: Channel) -> dict[str, Any]:
    # The URL's host and whether a secret is set; never the URL's path (Slack and WeCom keys
    # live there) nor the secret.
    return {
        "name": channel.name,
        "kind": channel.kind,
        "url_hint": channel.url_hint,
        "signed": channel.has_secret,
        "events": list(channel.events),
        "is_active": channel.is_active,
        "language": channel.language,
    }


def _audit_channel(
    channel: Channel, *, action: AuditAction, actor: User, before: dict[str, Any] | None
) -> None:
    audit_record(
        action=action,
        actor=actor,
        organisation=channel.organisation,
        target=channel,
        target_label=channel.name,
        before=before,
        after=None
        if action == AuditAction.NOTIFICATION_CHANNEL_DELETED
        else _channel_snapshot(channel),
    )


def _checked_destination(*, url: str, secret: str, url_required: bool) -> tuple[str, str]:
    """The webhook URL and signing secret, validated, every problem named on its field at
    once; an empty value (not required) stays empty: nothing to change."""
    errors: dict[str, Any] = {}
    if url or url_required:
        try:
            url = validate_webhook_url(url)
        except ValidationError as error:
            errors["url"] = error.messages
    try:
        secret = validate_signing_secret(secret)
    except ValidationError as error:
        errors["secret"] = error.messages
    if errors:
        raise ValidationError(errors)
    return url, secret


@transaction.atomic
def channel_create(
    *,
    organisation: Organisation,
    created_by: User,
    kind: str,
    name: str,
    url: str,
    secret: str = "",
    events: Iterable[str] = (),
    language: str = "",
) -> Channel:
    _require_admin(user=created_by, organisation=organisation)
    if kind not in Channel.Kind.values:
        raise ValidationError({"kind": _("Choose a kind of channel.")})
    language = _clean_language(language or settings.LANGUAGE_CODE)
    url, secret = _checked_destination(url=url, secret=secret, url_required=True)
    channel = Channel.objects.create(
        organisation=organisation,
        kind=kind,
        name=_clean_name(name),
        url_ciphertext=encrypt_secret(url),
        url_hint=url_hint(url),
        secret_ciphertext=encrypt_secret(secret) if secret else "",
        events=_clean_events(events),
        language=language,
        created_by=created_by,
    )
    _audit_channel(
        channel, action=AuditAction.NOTIFICATION_CHANNEL_CREATED, actor=created_by, before=None
    )
    return channel


@transaction.atomic
def channel_update(
    *,
    channel: Channel,
    changed_by: User,
    name: str,
    events: Iterable[str],
    is_active: bool,
    url: str = "",
    secret: str = "",
    remove_secret: bool = False,
    language: str = "",
) -> Channel:
    """Change a channel; an empty `url` or `secret` keeps the stored one (never shown)."""
    locked = Channel.objects.select_for_update().select_related("organisation").get(pk=channel.pk)
    _require_admin(user=changed_by, organisation=locked.organisation)
    before = _channel_snapshot(locked)
    locked.name = _clean_name(name)
    locked.events = _clean_events(events)
    locked.is_active = bool(is_active)
    if language:
        locked.language = _clean_language(language)
    url, secret = _checked_destination(url=url, secret=secret, url_required=False)
    if url:
        locked.url_ciphertext = encrypt_secret(url)
        locked.url_hint = url_hint(url)
    if secret:
        locked.secret_ciphertext = encrypt_secret(secret)
    elif remove_secret:
        locked.secret_ciphertext = ""
    if url or before["is_active"] != locked.is_active:
        # A new address or a re-enabled channel deserves a fresh start.
        locked.consecutive_failures = 0
        locked.unhealthy_since = None
    locked.save()
    if _channel_snapshot(locked) != before or url or secret:
        _audit_channel(
            locked, action=AuditAction.NOTIFICATION_CHANNEL_CHANGED, actor=changed_by, before=before
        )
    return locked


@transaction.atomic
def channel_delete(*, channel: Channel, deleted_by: User) -> None:
    locked = Channel.objects.select_for_update().select_related("organisation").get(pk=channel.pk)
    _require_admin(user=deleted_by, organisation=locked.organisation)
    _audit_channel(
        locked,
        action=AuditAction.NOTIFICATION_CHANNEL_DELETED,
        actor=deleted_by,
        before=_channel_snapshot(locked),
    )
    locked.delete()


@transaction.atomic
def channel_send_test(*, channel: Channel, sent_by: User, link_path: str) -> Delivery:
    """Queue one test message to `channel` (whatever its event choices)."""
    _require_admin(user=sent_by, organisation=channel.organisation)
    notice = Notice(
        event=NotificationEvent.CHANNEL_TEST,
        title=gettext_lazy("Test message from the Partner Access Portal"),
        summary=Text(
            gettext_lazy("%(person)s sent this to check the channel %(channel)s."),
            person=sent_by.get_full_name() or sent_by.email,
            channel=channel.name,
        ),
        link_path=link_path,
    )
    row = Delivery(
        idempotency_key=delivery_key("channel.test", str(uuid.uuid4()), f"channel:{channel.pk}"),
        event=notice.event.value,
        organisation=channel.organisation,
        channel=channel,
        content=_channel_content(notice, channel),
    )
    deliveries_enqueue([row])
    audit_record(
        action=AuditAction.NOTIFICATION_CHANNEL_TESTED,
        actor=sent_by,
        organisation=channel.organisation,
        target=channel,
        target_label=channel.name,
    )
    return Delivery.objects.get(idempotency_key=row.idempotency_key)


@transaction.atomic
def delivery_retry(*, delivery: Delivery, retried_by: User) -> Delivery:
    """Send a failed delivery again (an admin's button); a sent one is never sent twice."""
    locked = Delivery.objects.select_for_update().get(pk=delivery.pk)
    _require_admin(user=retried_by, organisation=locked.organisation)
    if locked.status != Delivery.Status.FAILED:
        return locked
    locked.status = Delivery.Status.PENDING
    locked.available_at = timezone.now()
    locked.dispatched_at = None
    locked.save(update_fields=["status", "available_at", "dispatched_at"])
    delivery_id = locked.pk
    transaction.on_commit(lambda: deliveries_publish(delivery_ids=[delivery_id]))
    return locked


# --- preferences and escalation ---------------------------------------------------------


@transaction.atomic
def preferences_update(*, user: User, muted: Iterable[str]) -> Preference:
    muteable = {event.value for event in NotificationEvent if not event.info.security}
    chosen = sorted(set(muted))
    if any(event not in muteable for event in chosen):
        raise ValidationError(_("Security notices cannot be turned off."))
    preference, _created = Preference.objects.select_for_update().get_or_create(user=user)
    preference.email_muted = chosen
    preference.save(update_fields=["email_muted", "updated_at"])
    return preference


@transaction.atomic
def escalation_set(
    *, organisation: Organisation, contact: User | None, changed_by: User
) -> Escalation:
    _require_admin(user=changed_by, organisation=organisation)
    if (
        contact is not None
        and not Membership.objects.filter(user=contact, organisation=organisation).exists()
    ):
        raise ValidationError({"contact": _("Choose a member of this organisation.")})
    escalation, _created = Escalation.objects.select_for_update().get_or_create(
        organisation=organisation
    )
    before = {"contact": escalation.contact.email if escalation.contact else None}
    escalation.contact = contact
    escalation.save()
    audit_record(
        action=AuditAction.NOTIFICATION_ESCALATION_CHANGED,
        actor=changed_by,
        organisation=organisation,
        target=escalation,
        target_label=organisation.name,
        before=before,
        after={"contact": contact.email if contact else None},
    )
    return escalation


# --- the worker's side: one attempt at one delivery -------------------------------------
