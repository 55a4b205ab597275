"""Forms of the notification pages. They parse input; the services decide. The webhook URL
and the signing secret never render back."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from notifications.events import channel_event_choices, preference_event_choices
from notifications.models import Channel
from notifications.webhook_urls import MAX_SECRET_LENGTH, MAX_URL_LENGTH


def _secret_widget() -> forms.PasswordInput:
    return forms.PasswordInput(
        render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
    )


class ChannelForm(forms.Form):
    kind = forms.ChoiceField(label=_("Kind"), choices=Channel.Kind.choices)
    name = forms.CharField(label=_("Name"), max_length=80)
    # One character more than allowed, so the service's clear message is what people read.
    url = forms.CharField(
        label=_("Webhook URL"),
        max_length=MAX_URL_LENGTH + 1,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Stored encrypted and never shown again: it is the key to post to the chat."),
    )
    secret = forms.CharField(
        label=_("Signing secret (optional)"),
        max_length=MAX_SECRET_LENGTH + 1,
        required=False,
        strip=False,
        widget=_secret_widget(),
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
    events = forms.MultipleChoiceField(
        label=_("Send these notifications"),
        choices=channel_event_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


class ChannelEditForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=80)
    url = forms.CharField(
        label=_("New webhook URL"),
        max_length=MAX_URL_LENGTH + 1,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Leave empty to keep the stored one."),
    )
    secret = forms.CharField(
        label=_("New signing secret"),
        max_length=MAX_SECRET_LENGTH + 1,
        required=False,
        strip=False,
        widget=_secret_widget(),
        help_text=_("Leave empty to keep the stored one."),
    )
    remove_secret = forms.BooleanField(label=_("Stop signing messages"), required=False)
    is_active = forms.BooleanField(label=_("Active"), required=False)
    language = forms.ChoiceField(
        label=_("Language of its messages"), choices=settings.LANGUAGES, required=False
    )
    events = forms.MultipleChoiceField(
        label=_("Send these notifications"),
        choices=channel_event_choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )


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
