"""Template filters for audit pages: every label from an event goes through `visible`."""

import json
from typing import Any

from django import template
from django.utils.safestring import SafeString

from auditor.presentation import mark_invisible, visible_text

register = template.Library()


@register.filter
def visible(value: Any) -> SafeString:
    """Escaped text with bidirectional, zero-width and control characters shown as
    `[U+202E]` markers, so a label cannot pretend to be something else."""
    return mark_invisible(value)


@register.filter
def pretty_json(value: Any) -> SafeString:
    """Indented JSON, escaped and with invisible characters marked."""
    if value is None:
        return mark_invisible("null")
    return mark_invisible(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))


@register.filter
def visible_plain(value: Any) -> str:
    """`visible` for places that cannot hold markup (page titles): `[U+202E]` as text."""
    return visible_text(value)
