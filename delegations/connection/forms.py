"""Forms of the cloud-account pages. They parse input; the services decide.

The AccessKey secret field never renders a value back: a refused form shows it empty.
"""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import ACCOUNT_UID_MAX_LENGTH, ENTERPRISE_ALIAS_MAX_LENGTH

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
        label=_("Enterprise alias"),
        max_length=ENTERPRISE_ALIAS_MAX_LENGTH,
        required=False,
        help_text=_("The account alias partners see in the console's switch-role page."),
    )
    region = forms.CharField(
        label=_("Region"),
        max_length=32,
        initial="cn-hangzhou",
        widget=forms.TextInput(attrs={"list": "regions"}),
    )
    access_key_id = forms.CharField(
        label=_("AccessKey id"),
        max_length=128,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    access_key_secret = forms.CharField(
        label=_("AccessKey secret"),
        max_length=128,
        strip=False,
        widget=_secret_widget(),
        help_text=_("Stored encrypted and never shown again. Pages show its fingerprint only."),
    )


class CloudAccountConnectForm(_KeyFields):
    account_uid = forms.CharField(
        label=_("Alibaba Cloud account UID"),
        max_length=ACCOUNT_UID_MAX_LENGTH,
        help_text=_("Your organisation's account. The key must belong to it."),
    )
    field_order = ["account_uid", "alias", "region", "access_key_id", "access_key_secret"]


class CloudAccountReplaceForm(_KeyFields):
    field_order = ["access_key_id", "access_key_secret", "alias", "region"]


class CloudAccountAddForm(_KeyFields):
    """An owner's further account: any account UID, named so people tell the accounts apart."""

    account_uid = forms.CharField(
        label=_("Alibaba Cloud account UID"),
        max_length=ACCOUNT_UID_MAX_LENGTH,
        help_text=_("The other account. The key must belong to it."),
    )
    name = forms.CharField(
        label=_("Name"),
        max_length=64,
        required=False,
        help_text=_("How your people tell the accounts apart, e.g. staging."),
    )
    field_order = ["account_uid", "name", "alias", "region", "access_key_id", "access_key_secret"]
