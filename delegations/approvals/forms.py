"""Forms of the approval-rules page. They parse input (choices scoped to the owner, so a
foreign or forged id is a form error); the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from delegations.approvals import selectors
from delegations.models import (
    APPROVER_GROUP_NAME_MAX_LENGTH,
    MAX_APPROVALS_REQUIRED,
    MAX_AUTO_APPROVE_HOURS,
)


class ApproverGroupForm(forms.Form):
    name = forms.CharField(label=_("Group name"), max_length=APPROVER_GROUP_NAME_MAX_LENGTH)
    members = forms.ModelMultipleChoiceField(
        label=_("Members (admins of your organisation)"),
        queryset=selectors.owner_admins(owner=Organisation()),
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": _("An approver group needs at least one member.")},
    )
    catalog_roles = forms.ModelMultipleChoiceField(
        label=_("Decides requests for these catalogue roles"),
        queryset=selectors.catalog_role_choices(owner=Organisation()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )
    partner_allowances = forms.ModelMultipleChoiceField(
        label=_("…and for these partners"),
        queryset=selectors.partner_allowance_choices(owner=Organisation()),
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text=_(
            "Only members of the groups attached to a request's role or partner may decide it; "
            "a request no group covers may be decided by any admin."
        ),
    )

    def __init__(self, *args: Any, owner: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields: Any = self.fields
        fields["members"].queryset = selectors.owner_admins(owner=owner)
        fields["members"].label_from_instance = lambda user: user.email
        fields["catalog_roles"].queryset = selectors.catalog_role_choices(owner=owner)
        fields["catalog_roles"].label_from_instance = lambda role: role.label
        fields["partner_allowances"].queryset = selectors.partner_allowance_choices(owner=owner)


class QuorumForm(forms.Form):
    approvals_required = forms.IntegerField(
        label=_("Approvals needed"),
        min_value=1,
        max_value=MAX_APPROVALS_REQUIRED,
        error_messages={
            "min_value": _("Choose between 1 and 5 approvals."),
            "max_value": _("Choose between 1 and 5 approvals."),
        },
    )
    auto_approve_max_hours = forms.IntegerField(
        label=_("Auto-approve up to (hours)"),
        required=False,
        min_value=1,
        max_value=MAX_AUTO_APPROVE_HOURS,
        help_text=_("Empty: never. Only time-bound requests, never high-privilege roles."),
    )
