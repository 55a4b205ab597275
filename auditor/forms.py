"""Filter forms of the auditor's pages. Everything arrives in the query string, so every value
is untrusted: unknown choices, malformed dates, huge cursors and megabytes of text become
form errors (the page answers 400 with the message), never an exception."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Collection, Mapping
from typing import Any, cast

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.models import Organisation
from audit.models import AuditEvent
from auditor import selectors
from auditor.presentation import visible_text
from auditor.reports import report_accounts

# Longer values are dropped before validation (and not echoed back into the page).
MAX_VALUE_LENGTH = 500
ACTION_PREFIX_RE = re.compile(r"\A[a-z0-9_.]{1,100}\Z")
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")
TIME_HELP = "Use a date like 2026-03-01, or 2026-03-01 14:30 (UTC)."
MAX_REPORT_DAYS = 3660


def parse_utc(value: str, *, end_of_day: bool = False) -> dt.datetime:
    """`2026-03-01`, `2026-03-01 14:30[:05]` or `2026-03-01T14:30` as aware UTC.

    A bare date as an end bound means the end of that day, so "until 2026-03-01" includes
    the whole of the 1st."""
    text = value.strip().replace("T", " ")
    for time_format in TIME_FORMATS:
        try:
            parsed = dt.datetime.strptime(text, time_format)
        except ValueError:
            continue
        parsed = parsed.replace(tzinfo=dt.UTC)
        if time_format == "%Y-%m-%d" and end_of_day:
            try:
                parsed += dt.timedelta(days=1)
            except OverflowError as exc:
                raise ValidationError(TIME_HELP, code="invalid_time") from exc
        return parsed
    raise ValidationError(TIME_HELP, code="invalid_time")


class _UntrustedQueryForm(forms.Form):
    """Keeps only the last value of each known field, drops oversized ones with an error."""

    def __init__(self, data: Mapping[str, Any] | None = None, **kwargs: Any) -> None:
        self.too_long: list[str] = []
        cleaned: dict[str, str] | None = None
        if data is not None:
            cleaned = {}
            for name in self.base_fields:
                value = data.get(name)
                if value is None:
                    continue
                value = str(value)
                if len(value) > MAX_VALUE_LENGTH:
                    self.too_long.append(name)
                    continue
                cleaned[name] = value
        super().__init__(cleaned, **kwargs)

    def _time(self, name: str, *, end_of_day: bool = False) -> dt.datetime | None:
        value = self.cleaned_data.get(name) or ""
        if not value.strip():
            return None
        return parse_utc(value, end_of_day=end_of_day)

    def _clean_window(self, cleaned: dict[str, Any]) -> dt.timedelta | None:
        """`since` and `until` parsed into `since_time` and `until_time` (a bad one is an
        error on its own field); the window's length when both are given, or an error on
        `until` when the end is not after the beginning."""
        for name, end_of_day in (("since", False), ("until", True)):
            if name in self.errors:
                continue
            try:
                cleaned[f"{name}_time"] = self._time(name, end_of_day=end_of_day)
            except ValidationError as error:
                self.add_error(name, error)
        since, until = cleaned.get("since_time"), cleaned.get("until_time")
        if not (since and until):
            return None
        if since >= until:
            self.add_error("until", gettext("The end must be after the beginning."))
            return None
        return until - since

    def query(self, *, leaving_out: Collection[str] = ()) -> dict[str, str]:
        """The values given (but those named in `leaving_out`), for links to other pages and
        the exports."""
        if not self.is_bound:
            return {}
        return {
            name: str(self.data[name])
            for name in self.base_fields
            if name not in leaving_out and self.data.get(name) not in (None, "")
        }

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        for name in self.too_long:
            self.add_error(
                name,
                gettext("This value is longer than %(MAX_VALUE_LENGTH)s characters.")
                % {"MAX_VALUE_LENGTH": MAX_VALUE_LENGTH},
            )
        return cleaned


def _uuid_choice(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


class EventFilterForm(_UntrustedQueryForm):
    since = forms.CharField(label=_("From (UTC)"), required=False, max_length=40)
    until = forms.CharField(label=_("To (UTC)"), required=False, max_length=40)
    partner = forms.ChoiceField(label=_("Partner"), required=False)
    delegation = forms.ChoiceField(label=_("Delegation"), required=False)
    role = forms.ChoiceField(label=_("Role"), required=False)
    person = forms.ChoiceField(label=_("Person (who acted)"), required=False)
    action = forms.CharField(label=_("Action (or its beginning)"), required=False, max_length=100)
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        required=False,
        choices=[("", _("Any")), *AuditEvent.Outcome.choices],
    )
    q = forms.CharField(label=_("Search names"), required=False, max_length=200)
    before = forms.IntegerField(required=False, min_value=1, max_value=selectors.MAX_SEQUENCE)
    after = forms.IntegerField(required=False, min_value=0, max_value=selectors.MAX_SEQUENCE)

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, organisation: Organisation
    ) -> None:
        super().__init__(data)
        self.organisation = organisation
        self.fields["partner"].label = (
            gettext("Partner") if organisation.is_owner else gettext("Owner")
        )
        counterparties = selectors.audit_counterparties(organisation=organisation)
        delegations = selectors.audit_delegation_choices(organisation=organisation)
        roles = selectors.audit_catalog_roles(organisation=organisation)
        people = selectors.audit_people(organisation=organisation)
        # Only ids the tenancy selectors returned can be chosen: anything else is an error.
        self.allowed = {
            "partner": {str(pk): pk for pk, _ in counterparties},
            "delegation": {str(pk): pk for pk, _ in delegations},
            "role": {str(r.pk): r.pk for r in roles},
        }
        # Option labels cannot hold markup: invisible characters become "[U+202E]" text.
        cast(forms.ChoiceField, self.fields["partner"]).choices = [("", gettext("Any"))] + [
            (str(pk), visible_text(n)) for pk, n in counterparties
        ]
        cast(forms.ChoiceField, self.fields["delegation"]).choices = [("", gettext("Any"))] + [
            (str(pk), visible_text(label)) for pk, label in delegations
        ]
        cast(forms.ChoiceField, self.fields["role"]).choices = [("", gettext("Any"))] + [
            (str(r.pk), r.label) for r in roles
        ]
        cast(forms.ChoiceField, self.fields["person"]).choices = [("", gettext("Anyone"))] + [
            (str(pk), visible_text(label)) for pk, label in people
        ]
        self.fields["q"].widget.attrs["placeholder"] = gettext("person, partner, role…")
        self.fields["action"].widget.attrs["placeholder"] = gettext(
            "delegation. or cloud.call_result"
        )
        for name in ("since", "until"):
            self.fields[name].widget.attrs["placeholder"] = "YYYY-MM-DD [HH:MM]"
        if self.is_bound:
            for name in ("delegation", "role", "partner"):
                if name in self.data:
                    self.data = {**self.data, name: _uuid_choice(self.data[name])}

    def clean_action(self) -> str:
        value = (self.cleaned_data.get("action") or "").strip()
        if value and not ACTION_PREFIX_RE.match(value):
            raise ValidationError(
                gettext(
                    "Actions are lowercase words joined by dots, like delegation. or "
                    "delegation.approved."
                ),
                code="invalid_action",
            )
        return value

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        self._clean_window(cleaned)
        if cleaned.get("before") and cleaned.get("after") is not None:
            self.add_error(
                None, gettext("This page link is not valid; start again from the newest.")
            )
        return cleaned

    def filters(self) -> selectors.EventFilters:
        """The validated filters (call only when the form is valid)."""
        data = self.cleaned_data
        person = data.get("person")
        return selectors.EventFilters(
            since=data.get("since_time"),
            until=data.get("until_time"),
            counterparty_id=self.allowed["partner"].get(data.get("partner") or ""),
            delegation_id=self.allowed["delegation"].get(data.get("delegation") or ""),
            catalog_role_id=self.allowed["role"].get(data.get("role") or ""),
            person_id=int(person) if person else None,
            action_prefix=data.get("action") or "",
            outcome=data.get("outcome") or "",
            text=(data.get("q") or "").strip(),
        )

    def query_without_cursor(self) -> dict[str, str]:
        """The filter values, for links to other pages and the exports."""
        return self.query(leaving_out=("before", "after"))


class AccessReportForm(_UntrustedQueryForm):
    account = forms.ChoiceField(label=_("Cloud account"))
    role = forms.ChoiceField(label=_("Role"), required=False)
    since = forms.CharField(label=_("From (UTC)"), max_length=40)
    until = forms.CharField(label=_("To (UTC, inclusive)"), max_length=40)

    def __init__(
        self, data: Mapping[str, Any] | None = None, *, organisation: Organisation
    ) -> None:
        super().__init__(data)
        self.organisation = organisation
        self.accounts = report_accounts(organisation=organisation)
        self.roles = {
            str(r.pk): r for r in selectors.audit_catalog_roles(organisation=organisation)
        }
        account_choices = list(self.accounts.items())
        cast(forms.ChoiceField, self.fields["account"]).choices = account_choices
        cast(forms.ChoiceField, self.fields["role"]).choices = [("", gettext("Any role"))] + [
            (pk, r.label) for pk, r in self.roles.items()
        ]
        for name in ("since", "until"):
            self.fields[name].widget = forms.DateInput(attrs={"type": "date"})
        today = timezone.now().date()
        self.initial = {
            "since": (today - dt.timedelta(days=7)).isoformat(),
            "until": today.isoformat(),
            "account": next(iter(account_choices), ("", ""))[0],
        }
        if self.is_bound and "role" in self.data:
            self.data = {**self.data, "role": _uuid_choice(self.data["role"])}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        length = self._clean_window(cleaned)
        if length is not None and length > dt.timedelta(days=MAX_REPORT_DAYS):
            self.add_error("until", gettext("Choose a window of at most ten years."))
        role = self.roles.get(cleaned.get("role") or "")
        account = cleaned.get("account")
        if role is not None and account and role.cloud_account.account_uid != account:
            self.add_error("role", gettext("This role is not in the chosen account."))
        return cleaned

    def report_arguments(self) -> dict[str, Any]:
        data = self.cleaned_data
        return {
            "account_uid": data["account"],
            "catalog_role": self.roles.get(data.get("role") or ""),
            "since": data["since_time"],
            "until": data["until_time"],
        }
