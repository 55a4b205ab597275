"""Forms of the notification pages. They parse input; the services decide. The webhook URL
and the signing secret never render back."""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from notifications.events import channel_event_choices, preference_event_choices
from notifications.models import Channel
from notifications.webhook_urls import MAX_SECRET_LENGTH, MAX_URL_LENGTH


def _url_field(**options: Any) -> forms.CharField:
    """A webhook URL: write-only. One character more than allowed, so the service's clear
    message is what people read."""
    return forms.CharField(
        max_length=MAX_URL_LENGTH + 1,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        **options,
    )


def _secret_field(**options: Any) -> forms.CharField:
    """A signing secret: write-only and optional."""
    return forms.CharField(
        max_length=MAX_SECRET_LENGTH + 1,
        required=False,
        strip=False,
        widget=forms.PasswordInput(
            render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
        ),
        **options,
    )


def _events_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        label=_("Send these notifications"),
        choices=channel_event_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=Channel.Kind.choices)
    name = forms.CharField(label=_("Name"), max_length=80)
    url = _url_field(
        label=_("Webhook URL"),
        help_text=_("Stored encrypted and never shown again: it is the key to post to the chat."),
    )
    secret = _secret_field(
        label=_("Signing secret (optional)"),
        help_text=_(
            "DingTalk's and Lark's bot signing secret, or your own for the generic webhook "
            "(X-Portal-Signature). Stored encrypted and never shown again."
        ),
    )
    # Not required: a form without it (an older page, a script) gets the default language.
    language = forms.ChoiceField(
        label=_("Language of its messages"),
        choices=settings.LANGUAGES,
        initial=settings.LANGUAGE_CODE,
        required=False,
    )
    events = _events_field()


class ChannelEditForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    url = _url_field(
        label=_("New webhook URL"),
        required=False,
        help_text=_("Leave empty to keep the stored one."),
    )
    secret = _secret_field(
        label=_("New signing secret"), help_text=_("Leave empty to keep the stored one.")
    )
    remove_secret = forms.BooleanField(label=_("Stop signing messages"), required=False)
    is_active = forms.BooleanField(label=_("Active"), required=False)
    language = forms.ChoiceField(
        label=_("Language of its messages"), choices=settings.LANGUAGES, required=False
    )
    events = _events_field()


class PreferencesForm(forms.Form):
    email = forms.MultipleChoiceField(
        label=_("Email me about"),
        choices=preference_event_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Security notices (credentials issued to you) always arrive."),
    )


class EscalationForm(forms.Form):
    contact = forms.ModelChoiceField(
        label=_("Escalation contact"),
        queryset=User.objects.none(),
        required=False,
        empty_label=_("Nobody"),
        help_text=_("Also hears the daily reminders about requests nobody decided."),
    )

    def __init__(self, *args: object, members: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["contact"].queryset = members  # type: ignore[attr-defined]
