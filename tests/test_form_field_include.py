"""templates/includes/form_field.html ties help and errors to what they describe: Django does it
for single inputs; the include does it for a group of radio buttons, whose fieldset must name
its error once the form is sent back, or a screen reader announces the group without it."""

import re

from django import forms
from django.template.loader import render_to_string


class ChoiceForm(forms.Form):
    duration = forms.ChoiceField(
        choices=[("open", "Open-ended"), ("until", "Until a date")],
        widget=forms.RadioSelect,
        help_text="How long the access lasts.",
    )
    scope = forms.ChoiceField(choices=[("a", "A"), ("b", "B")], widget=forms.RadioSelect)


def _fieldset(form: forms.Form, name: str) -> tuple[str, str]:
    html = render_to_string("includes/form_field.html", {"field": form[name]})
    opening = re.search(r"<fieldset[^>]*>", html)
    assert opening, html
    return opening.group(0), html


def _described_by(opening: str) -> list[str]:
    found = re.search(r'aria-describedby="([^"]*)"', opening)
    return found.group(1).split() if found else []


def test_a_radio_group_sent_back_with_an_error_is_described_by_its_help_and_its_error() -> None:
    form = ChoiceForm(data={})
    assert not form.is_valid()

    opening, html = _fieldset(form, "duration")
    assert _described_by(opening) == ["id_duration_helptext", "id_duration_error"]
    for described in _described_by(opening):
        assert f'id="{described}"' in html

    opening, html = _fieldset(form, "scope")
    assert _described_by(opening) == ["id_scope_error"]
    assert 'id="id_scope_error"' in html


def test_a_radio_group_not_yet_sent_is_described_by_its_help_only() -> None:
    form = ChoiceForm()
    assert _described_by(_fieldset(form, "duration")[0]) == ["id_duration_helptext"]
    assert _described_by(_fieldset(form, "scope")[0]) == []
