"""Forms of the partner-side pages. They parse input; the services decide.

Only declared fields are read: a posted role, policy list, duration of the delegation or
organisation id is ignored (AZ-11). Person choices are limited to the organisation's own staff,
so a forged id is a form error (400) and nothing is written (AZ-03).
"""

from __future__ import annotations

from typing import Any, cast

from django import forms
from django.db.models import QuerySet
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from delegations.lifecycle.transitions import REASON_MAX_LENGTH
from delegations.models import StaffAssignment
from delegations.partner.services import CUSTOM_POLICY_MAX_INPUT, URI_MAX_DAYS

PolicyKind = StaffAssignment.SessionPolicyKind


class _PersonField(forms.ModelChoiceField):
    def label_from_instance(self, obj: User) -> str:
        name = obj.get_full_name()
        return f"{name} <{obj.email}>" if name else obj.email


class StaffLinkForm(forms.Form):
    user = _PersonField(queryset=User.objects.none(), label=_("Staff member"))
    ram_user_name = forms.CharField(
        max_length=64,
        label=_("RAM user name"),
        help_text=_("As it appears in your account's RAM users list (for example Alice)."),
        widget=forms.TextInput(attrs={"list": "ram-users", "autocomplete": "off"}),
    )

    def __init__(self, *args: Any, staff: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["user"]).queryset = staff


class SessionPolicyForm(forms.Form):
    session_policy_kind = forms.ChoiceField(
        choices=PolicyKind.choices,
        required=False,
        initial=PolicyKind.NONE,
        widget=forms.RadioSelect,
        label=_("What their credentials may do"),
        help_text=_(
            "A session policy narrows the role for this person only: the credentials "
            "can do what both the role and this policy allow. They then use the role only "
            "through credentials from the portal, not by switching role as their own RAM user."
        ),
    )
    ecs_instance_ids = forms.CharField(
        required=False,
        max_length=2000,
        label=_("ECS instance ids"),
        help_text=_("For “Only listed ECS instances”: ids separated by spaces or commas."),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    custom_policy = forms.CharField(
        required=False,
        max_length=CUSTOM_POLICY_MAX_INPUT,
        label=_("Custom session policy (JSON)"),
        help_text=_(
            'For “Custom session policy”: {"Version": "1", "Statement": [...]}, at '
            "most 2048 characters once minified."
        ),
        widget=forms.Textarea(attrs={"rows": 5, "spellcheck": "false", "class": "mono"}),
        strip=False,
    )


class AssignForm(SessionPolicyForm):
    user = _PersonField(queryset=User.objects.none(), label=_("Staff member"))

    field_order = ["user", "session_policy_kind", "ecs_instance_ids", "custom_policy"]

    def __init__(self, *args: Any, staff: QuerySet[User], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["user"]).queryset = staff


class CredentialsForm(forms.Form):
    # Parsed by the service (parse_duration) so every bad value gets the same clear message.
    duration_seconds = forms.CharField(max_length=20, label=_("Valid for (seconds)"))


class UriKeyForm(forms.Form):
    label = forms.CharField(
        max_length=100,
        required=False,
        label=_("Label"),
        help_text=_("Where you will use it, e.g. “laptop aliyun CLI”."),
    )
    valid_days = forms.IntegerField(
        min_value=1,
        max_value=URI_MAX_DAYS,
        initial=30,
        label=_("The URI works for (days)"),
        help_text=_("Never longer than the delegation itself."),
    )


class CutOffForm(forms.Form):
    reason = forms.CharField(
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2}),
        label=_("Why (recorded in the audit log)"),
    )
    confirm = forms.BooleanField(
        required=True,
        label=_(
            "I understand: the role's permission policies are detached now, for "
            "every partner on this role, and credentials already issued stop working."
        ),
    )
