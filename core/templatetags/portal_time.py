"""Times as people read them: in their own time zone, with the UTC instant on hover.

Every template that shows a time uses these filters, never `|date` on a stored
time:

    {% load portal_time %}
    {{ delegation.approved_at|when }}             6 Dec 2026, 09:38   (in Asia/Shanghai)
    {{ invitation.expires_at|when:"date" }}       6 Dec 2026
    {{ event.created_at|when:"seconds" }}         6 Dec 2026, 09:38:45
    {{ event.created_at|when:"short" }}           6 Dec, 09:38
    {{ call.started_at|when:"Y-m-d H:i:s.u" }}    any Django date format, when a page needs one

`when` renders `<time datetime="2026-12-06T01:38:45Z" title="2026-12-06 01:38:45 UTC">…</time>`;
`utc` is for the few places that state a UTC instant on purpose (the window an access report
was asked for in UTC, a ledger record as it was hashed): `<time datetime="…Z">2026-12-06 01:38
UTC</time>`, the "UTC" written by the filter, never by a translated sentence around it.
Table headers name the reader's zone with `{% current_zone %}` ("When (Asia/Shanghai)").
`when_text` is the plain-text form for emails and chat messages ("6 Dec 2026, 09:38
(Asia/Shanghai)"). The zone is the active one: the signed-in person's
(accounts.middleware.PersonLocaleMiddleware), or the recipient's while a message to them is
rendered (core.i18n.recipient_locale). The named formats are in the catalogue, so each language
writes dates its own way (zh-hans: 2026年12月6日 09:38). Exports (CSV, JSON, the API) never come
through here: they stay UTC ISO 8601.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from django import template
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString

from core.i18n import format_time, format_time_text, render_text

register = template.Library()


def utc_iso(value: datetime) -> str:
    """`2026-12-06T01:38:45Z`: the instant as exports and the `datetime` attribute write it."""
    if timezone.is_naive(value):
        value = timezone.make_aware(value, UTC)
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@register.filter(is_safe=True)
def when(value: datetime | date | None, style: str = "datetime") -> SafeString | str:
    if value is None or value == "":
        return ""
    if isinstance(value, datetime):
        iso = utc_iso(value)
        utc_label = iso.replace("T", " ").replace("Z", " UTC")
        return format_html(
            '<time datetime="{}" title="{}">{}</time>', iso, utc_label, format_time(value, style)
        )
    if isinstance(value, date):
        return format_html(
            '<time datetime="{}">{}</time>', value.isoformat(), format_time(value, style)
        )
    return str(value)


@register.filter(is_safe=True)
def utc(value: datetime | None, style: str = "Y-m-d H:i") -> SafeString | str:
    """A time stated in UTC on purpose, whatever the reader's zone: the value, then "UTC"."""
    if not isinstance(value, datetime):
        return "" if value is None or value == "" else str(value)
    iso = utc_iso(value)
    instant = value if timezone.is_aware(value) else timezone.make_aware(value, UTC)
    shown = format_time(instant.astimezone(UTC).replace(tzinfo=None), style)
    return format_html('<time datetime="{}">{} UTC</time>', iso, shown)


@register.simple_tag
def current_zone() -> str:
    """The zone `when` shows times in (the reader's), for a table header that names it."""
    return timezone.get_current_timezone_name()


@register.filter
def when_text(value: datetime | date | None, style: str = "datetime") -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, date):
        return format_time_text(value, style)
    return str(value)


@register.filter
def message(value: object) -> str:
    """A stored notice field (core.i18n.Text, a lazy or a plain string) in the reader's
    language."""
    return render_text(value)
