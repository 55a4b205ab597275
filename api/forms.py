from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Membership
from api.models import SERVICE_ACCOUNT_SCOPES, Scope
from api.services import DEVICE_FLOW_TOKEN_DAYS, MAX_TOKEN_DAYS

ANY_ORGANISATION = ""


class TokenForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=100, help_text=_("Where you use it."))
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"), choices=Scope.choices, widget=forms.CheckboxSelectMultiple
    )
    expires_in_days = forms.IntegerField(
        label=_("Expires in (days)"), min_value=1, max_value=MAX_TOKEN_DAYS, initial=30
    )
    organisation = forms.ChoiceField(label=_("Organisation"), required=False)

    def __init__(self, *args: Any, memberships: list[Membership], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memberships = {str(m.organisation_id): m for m in memberships}
        organisation_field = self.fields["organisation"]
        assert isinstance(organisation_field, forms.ChoiceField)
        organisation_field.choices = [
            (ANY_ORGANISATION, _("Any of my organisations")),
            *[(key, m.organisation.name) for key, m in self.memberships.items()],
        ]


class ServiceAccountForm(forms.Form):
    name = forms.SlugField(label=_("Name"), max_length=80, help_text=_("e.g. ci-pipeline"))
    scopes = forms.MultipleChoiceField(
        label=_("Scopes"),
        choices=[(scope.value, scope.label) for scope in SERVICE_ACCOUNT_SCOPES],
        widget=forms.CheckboxSelectMultiple,
    )
    expires_in_days = forms.IntegerField(
        label=_("Expires in (days)"),
        min_value=1,
        max_value=MAX_TOKEN_DAYS,
        initial=DEVICE_FLOW_TOKEN_DAYS,
    )


class DecisionsForm(forms.Form):
    allow_decisions = forms.BooleanField(
        label=_("Allow approve, reject, offer and revoke through the API"), required=False
    )


class DeviceCodeForm(forms.Form):
    code = forms.CharField(label=_("Code shown by pap"), max_length=16)
