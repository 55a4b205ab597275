"""Forms of the access-review pages. They parse input; the services decide."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from core.web import datetime_local_field
from delegations.models import (
    MAX_REVIEW_DEADLINE_DAYS,
    MAX_REVIEW_EVERY_DAYS,
    ReviewItem,
    ReviewOutcome,
)

Decision = ReviewItem.Decision


class ReviewScheduleForm(forms.Form):
    every_days = forms.IntegerField(
        label=_("Review every (days)"), min_value=1, max_value=MAX_REVIEW_EVERY_DAYS, initial=90
    )
    deadline_days = forms.IntegerField(
        label=_("Reviewers have (days)"),
        min_value=1,
        max_value=MAX_REVIEW_DEADLINE_DAYS,
        initial=14,
    )
    default_outcome = forms.ChoiceField(
        label=_("When nobody answers by the deadline"),
        choices=[
            (ReviewOutcome.REMIND, _("Remind, and keep the access")),
            (ReviewOutcome.REVOKE, _("Revoke the access")),
        ],
        widget=forms.RadioSelect,
        initial=ReviewOutcome.REMIND,
    )
    next_run_at = datetime_local_field(
        label=_("Next review starts (UTC, optional)"),
        required=False,
        help_text=_("Empty: now."),
    )


class OwnerAnswerForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Still needed?"),
        choices=[
            (Decision.KEEP, _("Keep")),
            (Decision.SHORTEN, _("Shorten")),
            (Decision.REVOKE, _("Revoke")),
        ],
    )
    new_ends_at = datetime_local_field(
        label=_("New end (UTC)"),
        required=False,
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        if cleaned.get("decision") == Decision.SHORTEN and not cleaned.get("new_ends_at"):
            self.add_error("new_ends_at", _("Choose the new, earlier end."))
        if cleaned.get("decision") == Decision.REVOKE and not cleaned.get("note"):
            self.add_error("note", _("Say why the access is revoked."))
        return cleaned


class PartnerAnswerForm(forms.Form):
    decision = forms.ChoiceField(
        label=_("Does this person still need it?"),
        choices=[(Decision.KEEP, _("Keep")), (Decision.UNASSIGN, _("Unassign"))],
    )
    note = forms.CharField(label=_("Note"), required=False, max_length=2000)
