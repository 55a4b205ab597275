"""Forms of the fleet pages. They parse input; the services decide (accounts offered, regions
that look like regions, the rate control's bounds), and their refusals land on these fields."""

from __future__ import annotations

import re
from typing import Any, cast

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from delegations.lifecycle.forms import _DurationMixin, _RoleChoiceField
from delegations.lifecycle.transitions import REASON_MAX_LENGTH
from delegations.models import MAX_FLEET_CONCURRENCY, CatalogRole, CloudAccount

_REASON_WIDGET = forms.Textarea(attrs={"rows": 3, "maxlength": REASON_MAX_LENGTH})
_SEPARATORS = re.compile(r"[\s,;]+")


class _AccountChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj: CloudAccount) -> str:
        return obj.label


def parse_regions(value: str) -> list[str]:
    """`cn-shanghai, cn-beijing` (commas, spaces or new lines) → the region ids, in order."""
    return [part for part in _SEPARATORS.split(value or "") if part]


class _FleetFields(_DurationMixin):
    catalog_role = _RoleChoiceField(
        queryset=CatalogRole.objects.none(),
        label=_("Role"),
        empty_label=None,
        widget=forms.RadioSelect,
    )
    accounts = _AccountChoiceField(
        queryset=CloudAccount.objects.none(),
        label=_("Owner accounts"),
        widget=forms.CheckboxSelectMultiple,
        help_text=_("The role is applied in each chosen account."),
    )
    regions = forms.CharField(
        label=_("Regions"),
        max_length=2000,
        help_text=_("Region ids separated by commas, e.g. cn-shanghai, cn-beijing."),
    )
    concurrency = forms.IntegerField(
        label=_("Concurrency"),
        initial=5,
        min_value=1,
        max_value=MAX_FLEET_CONCURRENCY,
        help_text=_("How many accounts are applied at the same time."),
    )
    max_errors = forms.IntegerField(
        label=_("MaxErrors"),
        initial=0,
        min_value=0,
        help_text=_(
            "Stop after more than this many accounts fail; the rest are not attempted until "
            "the owner continues."
        ),
    )
    reason = forms.CharField(
        label=_("Why?"),
        max_length=REASON_MAX_LENGTH,
        widget=_REASON_WIDGET,
    )

    def __init__(self, *args: Any, roles: Any, accounts: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["catalog_role"]).queryset = roles
        cast(forms.ModelMultipleChoiceField, self.fields["accounts"]).queryset = accounts

    def clean_regions(self) -> list[str]:
        return parse_regions(self.cleaned_data["regions"])


class FleetRequestForm(_FleetFields):
    field_order = [
        "catalog_role",
        "accounts",
        "regions",
        "concurrency",
        "max_errors",
        "reason",
        "duration",
        "ends_at",
    ]


class FleetOfferForm(_FleetFields):
    partner = forms.ModelChoiceField(
        queryset=Organisation.objects.none(), label=_("Partner"), empty_label=None
    )
    field_order = ["partner", *FleetRequestForm.field_order]

    def __init__(self, *args: Any, partners: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["partner"]).queryset = partners


class FleetApproveForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    note = forms.CharField(label=_("Note (optional)"), required=False, max_length=REASON_MAX_LENGTH)


class FleetRejectForm(forms.Form):
    version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Why not?"), max_length=REASON_MAX_LENGTH)


class FleetRevokeForm(forms.Form):
    reason = forms.CharField(label=_("Why?"), max_length=REASON_MAX_LENGTH)
