"""Forms of the delegation pages. They parse and check input; the services decide.

Only the fields declared here are read: anything else a browser posts (a forged status,
organisation or approver) is ignored.
"""

from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from core.web import datetime_local_field
from delegations.catalog.partner_links import CODE_MAX_INPUT_LENGTH
from delegations.lifecycle.transitions import REASON_MAX_LENGTH
from delegations.models import CatalogRole, CloudAccount, DriftFinding, TrustScope


class _RoleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: CatalogRole) -> str:
        policies = ", ".join(p.get("name", "") for p in obj.policies or [])
        return f"{obj.label} — {policies}" if policies else obj.label


class _DurationMixin(forms.Form):
    """Open-ended, or until a date and time (UTC)."""

    OPEN_ENDED = "open"
    UNTIL = "until"

    duration = forms.ChoiceField(
        choices=[(OPEN_ENDED, _("Until revoked (open-ended)")), (UNTIL, _("Until a date"))],
        initial=OPEN_ENDED,
        widget=forms.RadioSelect,
        label=_("For how long"),
    )
    ends_at = datetime_local_field(
        required=False,
        label=_("Ends at (UTC)"),
        help_text=_("Access ends by itself at this time."),
    )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        if cleaned.get("duration") == self.UNTIL:
            ends_at = cleaned.get("ends_at")
            if ends_at is None and "ends_at" not in self.errors:
                self.add_error(
                    "ends_at", gettext("Choose when access ends, or make it open-ended.")
                )
            elif ends_at is not None and ends_at <= timezone.now():
                self.add_error("ends_at", gettext("The end date is in the past."))
        else:
            cleaned["ends_at"] = None
        return cleaned


_REASON_WIDGET = forms.Textarea(attrs={"rows": 3, "maxlength": REASON_MAX_LENGTH})


class _UnechoedTextInput(forms.TextInput):
    """A text box that never writes back what was posted: a refused code is not repeated
    into the page."""

    def format_value(self, value: Any) -> str | None:
        return None


class PartnerCodeForm(forms.Form):
    partner_link_code = forms.CharField(
        label=_("Partner link code"),
        max_length=CODE_MAX_INPUT_LENGTH,
        help_text=_("The code the resource owner gave you, like ABCDE-FGHJK-LMNPQ-RSTUV."),
        widget=_UnechoedTextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )


class _AccountChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: CloudAccount) -> str:
        return obj.label


def _account_field() -> forms.ModelChoiceField:
    """Which of the owner's accounts; empty: the role's home account."""
    return _AccountChoiceField(
        queryset=CloudAccount.objects.none(),
        required=False,
        label=_("Owner account"),
        empty_label=_("The role's home account"),
        help_text=_("Only for an owner with several accounts; the role must be offered there."),
    )


class RequestAccessForm(_DurationMixin):
    """A partner admin's request, to the owner whose partner link code they entered."""

    catalog_role = _RoleChoiceField(
        queryset=CatalogRole.objects.none(),
        label=_("Role"),
        empty_label=None,
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(
        label=_("Why do you need it?"),
        max_length=REASON_MAX_LENGTH,
        widget=_REASON_WIDGET,
        help_text=_("The owner's admins read this when they decide."),
    )

    # Scheduled access: empty starts when approved.
    starts_at = datetime_local_field(
        required=False,
        label=_("Starts at (UTC, optional)"),
        help_text=_("Leave empty to start as soon as the owner approves; at most 90 days ahead."),
    )

    cloud_account = _account_field()

    field_order = ["catalog_role", "cloud_account", "reason", "starts_at", "duration", "ends_at"]

    def __init__(self, *args: Any, roles: Any, accounts: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["catalog_role"]).queryset = roles
        if accounts is not None:
            cast(forms.ModelChoiceField, self.fields["cloud_account"]).queryset = accounts


def _trust_scope_field() -> forms.ChoiceField:
    return forms.ChoiceField(
        label=_("Whom the trust policy names"),
        required=False,
        choices=[("", _("The role's default")), *TrustScope.choices],
        help_text=_("Named people can be chosen and changed later on the delegation's trust page."),
    )


class OfferForm(_DurationMixin):
    """An owner admin's offer to a partner on its allow-list."""

    partner = forms.ModelChoiceField(
        queryset=Organisation.objects.none(),
        label=_("Partner organisation"),
        empty_label=_("Choose a partner…"),
        help_text=_("Partner organisations whose account is on your allow-list."),
    )
    catalog_role = _RoleChoiceField(
        queryset=CatalogRole.objects.none(), label=_("Role"), empty_label=_("Choose a role…")
    )
    reason = forms.CharField(label=_("Reason"), max_length=REASON_MAX_LENGTH, widget=_REASON_WIDGET)
    trust_scope = _trust_scope_field()
    cloud_account = _account_field()

    field_order = [
        "partner",
        "catalog_role",
        "cloud_account",
        "reason",
        "duration",
        "ends_at",
        "trust_scope",
    ]

    def __init__(
        self, *args: Any, partners: Any, roles: Any, accounts: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["partner"]).queryset = partners
        cast(forms.ModelChoiceField, self.fields["catalog_role"]).queryset = roles
        if accounts is not None:
            cast(forms.ModelChoiceField, self.fields["cloud_account"]).queryset = accounts


class _VersionedForm(forms.Form):
    # The version of the delegation the page showed; a decision on a stale page is refused.
    version = forms.IntegerField(min_value=1, max_value=2**31 - 1, widget=forms.HiddenInput)


class ApproveForm(_VersionedForm):
    trust_scope = _trust_scope_field()
    note = forms.CharField(
        label=_("Note (optional)"),
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.TextInput(attrs={"placeholder": _("e.g. agreed in the Q3 contract")}),
    )
    # The approver may shorten the access or give it an end.
    ends_at = datetime_local_field(
        label=_("End access earlier (UTC, optional)"),
        required=False,
        help_text=_("Leave empty to grant what was asked. Never later than the requested end."),
    )


class RejectForm(_VersionedForm):
    reason = forms.CharField(
        label=_("Reason for rejecting"), max_length=REASON_MAX_LENGTH, widget=_REASON_WIDGET
    )


class RevokeForm(forms.Form):
    reason = forms.CharField(
        label=_("Reason for revoking"), max_length=REASON_MAX_LENGTH, widget=_REASON_WIDGET
    )


class RetryForm(_VersionedForm):
    pass


class WithdrawForm(_VersionedForm):
    confirm = forms.BooleanField(
        required=True,
        label=_(
            "Yes, withdraw this request. The owner can no longer approve it; to get "
            "this access later, send a new request."
        ),
        error_messages={"required": _("Tick the box to confirm you want to withdraw it.")},
    )


class DriftResolveForm(forms.Form):
    resolution = forms.ChoiceField(
        choices=[
            (DriftFinding.Resolution.REPAIR, _("Repair")),
            (DriftFinding.Resolution.ACCEPT, _("Accept")),
        ]
    )
