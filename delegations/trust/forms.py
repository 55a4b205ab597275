"""Forms of the trust page. The ExternalId is never a field: only the portal makes one."""

from django import forms
from django.utils.translation import gettext_lazy as _

from delegations.models import MAX_NAMED_PEOPLE_CAP, TrustScope

# Whether a named scope trusts the partner's broker: from the delegation's use, or the owner's.
BROKER_BY_USE, BROKER_YES, BROKER_NO = "use", "yes", "no"


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

    trust_broker = forms.ChoiceField(
        label=_("Named scopes: trust the partner's broker too"),
        choices=[
            (
                BROKER_BY_USE,
                _("Only if this access is used through the portal (recommended)"),
            ),
            (BROKER_YES, _("Yes: the portal issues credentials and console sessions")),
            (BROKER_NO, _("No: the named people switch role in the console themselves")),
        ],
        initial=BROKER_BY_USE,
        required=False,  # left out: by use
        widget=forms.RadioSelect,
        help_text=_(
            "The broker is the partner's RAM user the portal works through: credentials, "
            "credentials URIs and one-click console sign-in need it in the trust policy; "
            "people who switch role in the console as their own RAM users do not. By use, "
            "it is trusted when the portal has already issued credentials for this access "
            "or a credentials URI key is live, and not otherwise."
        ),
    )

    def clean_trust_broker(self) -> bool | None:
        """None: decided from the delegation's use; True or False: the owner's choice."""
        return {BROKER_YES: True, BROKER_NO: False}.get(self.cleaned_data["trust_broker"])


class ProposePersonForm(forms.Form):
    ram_user_name = forms.CharField(
        label=_("RAM user in your account"),
        max_length=64,
        widget=forms.TextInput(attrs={"placeholder": _("Alice"), "autocomplete": "off"}),
    )


class RejectPersonForm(forms.Form):
    reason = forms.CharField(label=_("Reason for refusing"), max_length=2000)
