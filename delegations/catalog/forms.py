"""Forms of the catalogue, allow-list and partner-link pages. They parse input; the services
decide.

The policy choices are exactly the account's live list, so a forged name or type is a form
error before any service runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, cast

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import ACCOUNT_UID_MAX_LENGTH
from delegations.catalog.account_policies import AvailablePolicy
from delegations.catalog.allow_list import LABEL_MAX_LENGTH
from delegations.catalog.partner_links import DEFAULT_EXPIRY_DAYS, MAX_EXPIRY_DAYS
from delegations.catalog.services import DESCRIPTION_MAX_LENGTH
from delegations.models import MAX_SESSION_DURATION, MIN_SESSION_DURATION, TrustScope

EXPIRY_CHOICES_DAYS = (1, 7, DEFAULT_EXPIRY_DAYS, 30, MAX_EXPIRY_DAYS)


class CatalogRoleForm(forms.Form):
    role_name = forms.CharField(
        label=_("Role name"),
        max_length=64,
        help_text=_("The RAM role's name: 1 to 64 letters, digits, '.' and '-'."),
    )
    description = forms.CharField(
        label=_("Description"),
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    policies = forms.MultipleChoiceField(
        label=_("Permission policies"),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": _("%(value)s is not one of the account's policies.")},
    )
    max_session_duration = forms.IntegerField(
        label=_("Maximum session duration (seconds)"),
        min_value=MIN_SESSION_DURATION,
        max_value=MAX_SESSION_DURATION,
        initial=MIN_SESSION_DURATION,
        help_text=_(
            "3600 (1 hour) to 43200 (12 hours): the longest credentials for this role last."
        ),
    )
    keep_role_when_empty = forms.BooleanField(
        label=_("Keep the RAM role when no partner uses it any more"),
        required=False,
        help_text=_("Otherwise the portal detaches its policies and deletes the role it created."),
    )
    default_trust_scope = forms.ChoiceField(
        label=_("Whom the trust policy names, by default"),
        choices=TrustScope.choices,
        initial=TrustScope.PARTNER_ACCOUNT,
        required=False,
        help_text=_(
            "Each delegation starts with this; the owner may choose otherwise when "
            "approving or offering, and later."
        ),
    )
    one_role_per_partner = forms.BooleanField(
        label=_("One role per partner"),
        required=False,
        help_text=(
            _(
                "Each partner gets its own RAM role, named <role>-<partner alias>, "
                "instead of a place in one shared trust policy: no limit on how many "
                "partners, and each partner's activity in the cloud shows under its own "
                "role. Cannot be changed later."
            )
        ),
    )
    high_privilege_confirmed = forms.BooleanField(
        label=_("I understand: a partner with this role may administer RAM or the whole account"),
        required=False,
    )

    def __init__(self, *args: Any, available: Sequence[AvailablePolicy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.available = list(available)
        cast(forms.ChoiceField, self.fields["policies"]).choices = [
            (p.value, p.policy_name) for p in self.available
        ]

    def policy_keys(self) -> list[tuple[str, str]]:
        chosen = self.cleaned_data.get("policies") or []
        return [tuple(value.split(":", 1)) for value in chosen]

    def chosen_values(self) -> set[str]:
        if self.is_bound:
            return set(self.data.getlist("policies")) if hasattr(self.data, "getlist") else set()
        return set(self.initial.get("policies", []))


class CatalogRoleEditForm(CatalogRoleForm):
    """The add form without the name: the name is the RAM role's, so it never changes."""

    def __init__(self, *args: Any, available: Sequence[AvailablePolicy], **kwargs: Any) -> None:
        super().__init__(*args, available=available, **kwargs)
        del self.fields["role_name"]
        del self.fields["one_role_per_partner"]


class PartnerAllowanceForm(forms.Form):
    partner_account_uid = forms.CharField(
        label=_("Partner account UID"),
        max_length=ACCOUNT_UID_MAX_LENGTH,
        strip=False,
        help_text=_("The partner's Alibaba Cloud account UID, digits only."),
    )
    label = forms.CharField(label=_("Label"), max_length=LABEL_MAX_LENGTH, required=False)


class PartnerLinkForm(forms.Form):
    label = forms.CharField(
        label=_("Label"),
        max_length=200,
        required=False,
        help_text=_("Who it is for, e.g. “Company B operations”. Only you see it."),
    )
    expires_in = forms.TypedChoiceField(
        label=_("Valid for"),
        choices=[(days, f"{days} day{'s' if days > 1 else ''}") for days in EXPIRY_CHOICES_DAYS],
        coerce=int,
        initial=DEFAULT_EXPIRY_DAYS,
    )
    partner_account_uid = forms.CharField(
        label=_("Only for partner account (optional)"),
        max_length=ACCOUNT_UID_MAX_LENGTH,
        required=False,
        help_text=_("An account UID on your allow-list. Empty: any partner on your allow-list."),
    )
    single_use = forms.BooleanField(
        label=_("Single use: the code stops working after the first request sent with it"),
        required=False,
    )

    def expires_at(self) -> dt.datetime:
        return timezone.now() + dt.timedelta(days=self.cleaned_data["expires_in"])
