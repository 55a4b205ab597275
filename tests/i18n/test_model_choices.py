"""A model field's choice labels are what `get_FOO_display()` and forms show: a label left
as a plain string reads in English on a Chinese page (an access review's "Open" and
"Remind, and keep the access" did)."""

from __future__ import annotations

import pytest
from django.apps import apps
from django.conf import settings
from django.utils import translation
from django.utils.functional import Promise

PORTAL_APPS = {
    "accounts",
    "activity",
    "api",
    "audit",
    "delegations",
    "notifications",
    "runbooks",
}
LANGUAGE_CODES = {code for code, _name in settings.LANGUAGES}
# Labels that are not words: the same in every language.
LANGUAGE_NEUTRAL = {"—", "OK"}


def _choice_labels() -> list[tuple[str, str]]:
    labels = []
    for model in apps.get_models():
        if model._meta.app_label not in PORTAL_APPS:
            continue
        for field in model._meta.get_fields():
            choices = getattr(field, "flatchoices", None) or ()
            if {value for value, _label in choices} <= LANGUAGE_CODES:
                continue  # each language is named in its own tongue, on purpose
            for _value, label in choices:
                labels.append((f"{model._meta.label}.{field.name}", label))
    return labels


def test_every_choice_label_is_marked_for_translation() -> None:
    unmarked = sorted(
        {
            f"{where}: {label!r}"
            for where, label in _choice_labels()
            if not isinstance(label, Promise) and str(label) not in LANGUAGE_NEUTRAL
        }
    )
    assert unmarked == []


@pytest.mark.django_db
def test_every_choice_label_reads_in_chinese() -> None:
    with translation.override("zh-hans"):
        untranslated = sorted(
            {
                f"{where}: {label!s}"
                for where, label in _choice_labels()
                if str(label) not in LANGUAGE_NEUTRAL
                and translation.gettext(str(_english(label))) == str(_english(label))
            }
        )
    assert untranslated == []


def _english(label: object) -> str:
    with translation.override("en"):
        return str(label)


def test_a_status_reads_as_a_state_not_as_the_links_verb() -> None:
    from delegations.models import ReviewCampaign

    with translation.override("zh-hans"):
        assert str(ReviewCampaign.Status.OPEN.label) == "进行中"
