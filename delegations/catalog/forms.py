"""Forms of the cloud-account and catalogue pages. They parse input; the services decide.

The AccessKey secret field never renders a value back (a refused form shows it empty), and
the policy choices are exactly the account's live list, so a forged name or type is a form
error before any service runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms

from accounts.models import ACCOUNT_UID_MAX_LENGTH, ENTERPRISE_ALIAS_MAX_LENGTH
from delegations.catalog.services import (
    DESCRIPTION_MAX_LENGTH,
    LABEL_MAX_LENGTH,
    AvailablePolicy,
)
from delegations.models import MAX_SESSION_DURATION, MIN_SESSION_DURATION

# Regions offered as suggestions; any well-formed region id is accepted.
COMMON_REGIONS = (
    "cn-hangzhou",
    "cn-shanghai",
    "cn-beijing",
    "cn-shenzhen",
    "cn-hongkong",
    "ap-southeast-1",
    "eu-central-1",
    "us-west-1",
)


def _secret_widget() -> forms.PasswordInput:
    return forms.PasswordInput(
        render_value=False, attrs={"autocomplete": "off", "spellcheck": "false"}
    )


class _KeyFields(forms.Form):
    alias = forms.CharField(
        label="Enterprise alias",
        max_length=ENTERPRISE_ALIAS_MAX_LENGTH,
        required=False,
        help_text="The account alias partners see in the console's switch-role page.",
    )
    region = forms.CharField(
        label="Region",
        max_length=32,
        initial="cn-hangzhou",
        widget=forms.TextInput(attrs={"list": "regions"}),
    )
    access_key_id = forms.CharField(
        label="AccessKey id",
        max_length=128,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    access_key_secret = forms.CharField(
        label="AccessKey secret",
        max_length=128,
        strip=False,
        widget=_secret_widget(),
        help_text="Stored encrypted and never shown again. Pages show its fingerprint only.",
    )


class CloudAccountConnectForm(_KeyFields):
    account_uid = forms.CharField(
        label="Alibaba Cloud account UID",
        max_length=ACCOUNT_UID_MAX_LENGTH,
        help_text="Your organisation's account. The key must belong to it.",
    )
    field_order = ["account_uid", "alias", "region", "access_key_id", "access_key_secret"]


class CloudAccountReplaceForm(_KeyFields):
    field_order = ["access_key_id", "access_key_secret", "alias", "region"]


class CatalogRoleForm(forms.Form):
    role_name = forms.CharField(
        label="Role name",
        max_length=64,
        help_text="The RAM role's name: 1 to 64 letters, digits, '.' and '-'.",
    )
    description = forms.CharField(
        label="Description",
        required=False,
        max_length=DESCRIPTION_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    policies = forms.MultipleChoiceField(
        label="Permission policies",
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "%(value)s is not one of the account's policies."},
    )
    max_session_duration = forms.IntegerField(
        label="Maximum session duration (seconds)",
        min_value=MIN_SESSION_DURATION,
        max_value=MAX_SESSION_DURATION,
        initial=MIN_SESSION_DURATION,
        help_text="3600 (1 hour) to 43200 (12 hours): the longest credentials for this role last.",
    )
    keep_role_when_empty = forms.BooleanField(
        label="Keep the RAM role when no partner uses it any more",
        required=False,
        help_text="Otherwise the portal detaches its policies and deletes the role it created.",
    )
    high_privilege_confirmed = forms.BooleanField(
        label="I understand: a partner with this role may administer RAM or the whole account",
        required=False,
    )

    def __init__(self, *args: Any, available: Sequence[AvailablePolicy], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.available = list(available)
        self.fields["policies"].choices = [(p.value, p.policy_name) for p in self.available]

    def policy_keys(self) -> list[tuple[str, str]]:
        chosen = self.cleaned_data.get("policies") or []
        return [tuple(value.split(":", 1)) for value in chosen]  # type: ignore[misc]

    def chosen_values(self) -> set[str]:
        if self.is_bound:
            return set(self.data.getlist("policies")) if hasattr(self.data, "getlist") else set()
        return set(self.initial.get("policies", []))


class CatalogRoleEditForm(CatalogRoleForm):
    """The add form without the name: the name is the RAM role's, so it never changes."""

    def __init__(self, *args: Any, available: Sequence[AvailablePolicy], **kwargs: Any) -> None:
        super().__init__(*args, available=available, **kwargs)
        del self.fields["role_name"]


class PartnerAllowanceForm(forms.Form):
    partner_account_uid = forms.CharField(
        label="Partner account UID",
        max_length=ACCOUNT_UID_MAX_LENGTH,
        strip=False,
        help_text="The partner's Alibaba Cloud account UID, digits only.",
    )
    label = forms.CharField(label="Label", max_length=LABEL_MAX_LENGTH, required=False)
