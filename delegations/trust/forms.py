"""Forms of the trust page. The ExternalId is never a field: only the portal makes one."""

from django import forms
from django.utils.translation import gettext_lazy as _

from delegations.models import MAX_NAMED_PEOPLE_CAP, TrustScope


class TrustScopeForm(forms.Form):
    trust_scope = forms.ChoiceField(
        label=_("Whom the trust policy names"),
        choices=TrustScope.choices,
        widget=forms.RadioSelect,
    )
    named_people_cap = forms.IntegerField(
        label=_("At most this many named people"),
        min_value=1,
        max_value=MAX_NAMED_PEOPLE_CAP,
        initial=5,
    )
    require_external_id = forms.BooleanField(
        label=_(
            "Require an ExternalId (the portal generates it and passes it on every "
            "AssumeRole it brokers)"
        ),
        required=False,
    )

    trust_broker = forms.BooleanField(
        label=_(
            "Named scopes: also trust the partner's broker, so the portal can issue "
            "credentials and console sessions for the named people"
        ),
        required=False,
        help_text=_(
            "Off, only the named people's own RAM users are trusted: they switch role "
            "in the console themselves (the partner holds the broker's key too)."
        ),
    )


class ProposePersonForm(forms.Form):
    ram_user_name = forms.CharField(
        label=_("RAM user in your account"),
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": _("Alice"), "autocomplete": "off"}),
    )


class RejectPersonForm(forms.Form):
    reason = forms.CharField(label=_("Reason for refusing"), max_length=2000)
