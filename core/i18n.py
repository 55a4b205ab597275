"""Messages in the recipient's language and time zone, never the sender's.

An email or chat message is rendered while someone else's request (or a worker with no
request) is active: whatever language and zone that has are not the recipient's. Every
message to a person is rendered inside `recipient_locale(...)` with the recipient's own.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime

from django.conf import settings
from django.utils import dateformat, timezone, translation
from django.utils.functional import Promise, lazy
from django.utils.translation import pgettext_lazy

from core.time_zones import zone_or_utc


def supported_language(language: str | None) -> str:
    """`language` when the portal speaks it, else the default (English)."""
    codes = dict(settings.LANGUAGES)
    return language if language and language in codes else settings.LANGUAGE_CODE


@contextmanager
def recipient_locale(*, language: str | None, time_zone: str | None) -> Iterator[None]:
    """Render inside this: translations in `language` (the default for none), times in
    `time_zone` (UTC for none)."""
    with (
        translation.override(supported_language(language)),
        timezone.override(zone_or_utc(time_zone)),
    ):
        yield


# --- Times as text, in the active language and zone -----------------------------------------

# Named styles; translators give each language its own order ("Y年n月j日 H:i").
TIME_FORMATS = {
    "datetime": pgettext_lazy("date and time format (Django date syntax)", "j M Y, H:i"),
    "seconds": pgettext_lazy("date and time with seconds (Django date syntax)", "j M Y, H:i:s"),
    "date": pgettext_lazy("date format (Django date syntax)", "j M Y"),
    "short": pgettext_lazy("day and time without the year (Django date syntax)", "j M, H:i"),
}


def format_time(value: date, style: str = "datetime") -> str:
    """`value` in the active time zone (an aware datetime) and language: a named style of
    TIME_FORMATS or any Django date format."""
    if isinstance(value, datetime) and timezone.is_aware(value):
        value = timezone.localtime(value)
    return dateformat.format(value, str(TIME_FORMATS.get(style, style)))


def format_time_text(value: date, style: str = "datetime") -> str:
    """For emails and chat messages, where nothing hovers: the time with its zone's name,
    "6 Dec 2026, 09:38 (Asia/Shanghai)"."""
    if not isinstance(value, datetime):
        return format_time(value, style)
    return f"{format_time(value, style)} ({timezone.get_current_timezone_name()})"


# --- Messages rendered when read ----------------------------------------------------------------


class Text:
    """A message with parameters, written in whatever language is active when it is read.

    `gettext("%(person)s left") % {...}` fixes the language at the moment it is built, which is
    the sender's. `Text(gettext_lazy("%(person)s left %(organisation)s"), person=..., ...)`
    waits: `str()` translates the message in the active language and fills in the parameters;
    a parameter that is itself lazy or a Text is rendered the same way, and a datetime is
    written in the active time zone. Notices to people are built from these, then rendered
    once per recipient inside `recipient_locale`.
    """

    __slots__ = ("message", "params")

    def __init__(self, message: str | Promise, /, **params: object) -> None:
        self.message = message
        self.params = params

    def __str__(self) -> str:
        if not self.params:
            return str(self.message)
        return str(self.message) % {key: _param(value) for key, value in self.params.items()}

    def __repr__(self) -> str:
        return f"Text({self.message!r}, **{self.params!r})"


def _param(value: object) -> object:
    if isinstance(value, datetime | date):
        return format_time_text(value)
    if isinstance(value, Text | Promise):
        return str(value)
    return value  # numbers stay numbers, for %(count)d


# A label in lower case inside a sentence ("invited x as admin"), lowered when it is read.
lower_lazy = lazy(lambda value: str(value).lower(), str)


def render_text(value: object) -> str:
    """A notice's or a row's field, in the active language: a Text, a lazy string, a stored
    sentence (read_stored) or any other plain string."""
    if isinstance(value, str) and not isinstance(value, Promise):
        return read_stored(value)
    return str(_param(value))


# --- Sentences the portal stores, read in the reader's language ---------------------------------
#
# The worker writes some of the portal's own sentences into the database (a delegation's last
# error, a verification's verdict, a feed's problem): one row is read by people in several
# languages, and the API, the exports and the audit log keep the words as stored. So the row
# holds the English sentence, rendered from a registered message; a page reads it back through
# `read_stored`, which recognises the message, takes its parameters out and writes it again in
# the active language. A text no registered message produced (a cloud's own error message, a
# row truncated to its field) is shown as it is.

_PLACEHOLDER = re.compile(r"%\((\w+)\)([sd])|%%")
_STORED: dict[str, tuple[re.Pattern[str], dict[str, str]]] = {}
# A text can only be a message's rendering if it starts with the message's words before its
# first placeholder: `read_stored` tries only the messages whose first `_START_CHARS`
# characters the text starts with, and those that start (almost) with a placeholder (in every
# list), instead of every message for every string a page or a notice renders.
_START_CHARS = 4
_STORED_BY_START: dict[str, list[str]] = {}
_STORED_ANY_START: list[str] = []


def stored_message(msgid: str) -> str:
    """Register an English message (mark it with gettext_noop so it is in the catalogue; only
    %(name)s and %(name)d placeholders) whose renderings are stored in the database."""
    kinds: dict[str, str] = {}
    parts: list[str] = []
    end = 0
    for match in _PLACEHOLDER.finditer(msgid):
        parts.append(re.escape(msgid[end : match.start()]))
        if match.group(0) == "%%":
            parts.append("%")
        else:
            name, kind = match.groups()
            if name in kinds:
                parts.append(f"(?P={name})")
            else:
                kinds[name] = kind
                parts.append(rf"(?P<{name}>-?\d+)" if kind == "d" else rf"(?P<{name}>.+?)")
        end = match.end()
    parts.append(re.escape(msgid[end:]))
    known = msgid in _STORED
    _STORED[msgid] = (re.compile("".join(parts), re.DOTALL), kinds)
    if not known:
        _index_stored(msgid)
    return msgid


def _index_stored(msgid: str) -> None:
    # Each list keeps registration order, the order in which one list of all was tried.
    first = _PLACEHOLDER.search(msgid)
    literal_start = msgid if first is None else msgid[: first.start()]
    if len(literal_start) >= _START_CHARS:
        key = literal_start[:_START_CHARS]
        _STORED_BY_START.setdefault(key, list(_STORED_ANY_START)).append(msgid)
    else:
        _STORED_ANY_START.append(msgid)
        for candidates in _STORED_BY_START.values():
            candidates.append(msgid)


def stored_text(msgid: str, /, **params: object) -> str:
    """What to store: the registered `msgid` with its parameters, in English whatever language
    is active (the database holds one language; `read_stored` translates when read)."""
    if msgid not in _STORED:
        raise ValueError(f"not a stored message: {msgid!r}")
    return msgid % params


def read_stored(text: str) -> str:
    """A stored sentence in the active language: a registered message's rendering is written
    again with the translation (parameters that are themselves stored sentences too)."""
    for msgid in _STORED_BY_START.get(text[:_START_CHARS], _STORED_ANY_START):
        pattern, kinds = _STORED[msgid]
        match = pattern.fullmatch(text)
        if match is None:
            continue
        params: dict[str, object] = {}
        for name, value in match.groupdict().items():
            params[name] = int(value) if kinds[name] == "d" else read_stored(value)
        return translation.gettext(msgid) % params
    return text
