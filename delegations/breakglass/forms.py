"""Forms of the break-glass pages. They parse input (choices scoped to the organisation, so a
foreign or forged id is a form error); the services decide."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.validators import MaxValueValidator
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from delegations.breakglass import selectors
from delegations.models import MAX_BREAK_GLASS_HOURS, MIN_BREAK_GLASS_REASON


class BreakGlassRoleForm(forms.Form):
    catalog_role = forms.ModelChoiceField(
        label=_("Catalogue role"), queryset=selectors.catalog_role_choices(owner=Organisation())
    )
    partner = forms.ModelChoiceField(
        label=_("Partner"), queryset=selectors.partner_choices(owner=Organisation())
    )
    people = forms.ModelMultipleChoiceField(
        label=_("Who may activate it (the partner's people)"),
        queryset=selectors.partner_people(partners=[]),
        widget=forms.CheckboxSelectMultiple,
        error_messages={
            "required": _("Name at least one of the partner's people who may activate it.")
        },
    )
    max_hours = forms.IntegerField(
        label=_("Longest window (hours)"),
        min_value=1,
        max_value=MAX_BREAK_GLASS_HOURS,
        initial=4,
        error_messages={
            "min_value": _("A break-glass window is 1 to 24 hours."),
            "max_value": _("A break-glass window is 1 to 24 hours."),
        },
    )

    def __init__(self, *args: Any, owner: Organisation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        fields: Any = self.fields
        partners = selectors.partner_choices(owner=owner)
        fields["catalog_role"].queryset = selectors.catalog_role_choices(owner=owner)
        fields["catalog_role"].label_from_instance = lambda role: role.label
        fields["partner"].queryset = partners
        fields["people"].queryset = selectors.partner_people(partners=partners)
        fields["people"].label_from_instance = lambda user: user.email


class ActivationForm(forms.Form):
    hours = forms.IntegerField(label=_("For how many hours"), min_value=1)
    reason = forms.CharField(
        label=_("What is the emergency?"),
        widget=forms.Textarea(attrs={"rows": 3}),
        min_length=MIN_BREAK_GLASS_REASON,
        max_length=2000,
        error_messages={
            "required": _("Say what the emergency is: an owner admin reviews it."),
            "min_length": _(
                "Say what the emergency is, in at least %(limit_value)d characters: an owner "
                "admin reviews it."
            ),
        },
    )

    def __init__(self, *args: Any, max_hours: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field: Any = self.fields["hours"]
        field.max_value = max_hours
        field.initial = min(max_hours, 1)
        field.validators.append(MaxValueValidator(max_hours))
        field.error_messages["max_value"] = _("Choose 1 to %(limit_value)s hours.")
        field.widget.attrs["max"] = max_hours


class ReviewForm(forms.Form):
    note = forms.CharField(
        label=_("Review note"),
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
    )
