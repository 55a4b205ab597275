"""A delegation's Activity: what its partner's sessions did in the owner's account.

For the owner organisation's admins and auditors (the partner side answers 404: the calls
happened in the owner's account). Filters arrive in the query string and are untrusted; a bad
value is a 400 with the form's message. Exports stream the filtered rows as CSV or JSON, like
the history's.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, cast
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_POST, require_safe

from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    organisation_member_required,
)
from activity import selectors
from activity.models import ActivityEvent
from activity.services import activity_propose_narrower_role
from auditor.downloads import download_views
from auditor.exports import EXPORT_CHUNK_SIZE, csv_lines, download, json_lines
from auditor.forms import _UntrustedQueryForm
from auditor.presentation import visible_text
from core.web import report_refusal
from delegations.models import Delegation

ACTIVITY_READERS = (ADMIN, AUDITOR)
PAGE_SIZE = 100
EXPORT_COLUMNS = (
    "event_time",
    "person",
    "via",
    "action",
    "service",
    "read_write",
    "outcome",
    "error_code",
    "resource",
    "resource_type",
    "region",
    "source_ip",
    "request_id",
    "event_id",
    "session",
    "access_key_id",
    "partner_account_uid",
    "alerts",
    "problems",
)


class ActivityFilterForm(_UntrustedQueryForm):
    person = forms.ChoiceField(label=_("Person"), required=False)
    action = forms.ChoiceField(label=_("Action"), required=False)
    rw = forms.ChoiceField(
        label=_("Read/write"),
        required=False,
        choices=[("", _("Any")), ("Read", _("Read")), ("Write", _("Write"))],
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        required=False,
        choices=[("", _("Any")), *ActivityEvent.Outcome.choices],
    )
    since = forms.CharField(label=_("From (UTC)"), required=False, max_length=40)
    until = forms.CharField(label=_("To (UTC)"), required=False, max_length=40)
    q = forms.CharField(label=_("Text"), required=False, max_length=200)
    alerts = forms.BooleanField(label=_("Alerts only"), required=False)
    after = forms.CharField(required=False, max_length=80)

    def __init__(self, data: Mapping[str, Any] | None = None, *, delegation: Delegation) -> None:
        super().__init__(data)
        choices = selectors.activity_choices(delegation=delegation)
        cast(forms.ChoiceField, self.fields["person"]).choices = [("", _("Anyone"))] + [
            (label, visible_text(label)) for label in choices["people"]
        ]
        cast(forms.ChoiceField, self.fields["action"]).choices = [("", _("Any"))] + [
            (name, name) for name in choices["actions"]
        ]
        for name in ("since", "until"):
            self.fields[name].widget.attrs["placeholder"] = "YYYY-MM-DD [HH:MM]"

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        for name in ("since", "until"):
            try:
                cleaned[f"{name}_at"] = self._time(name, end_of_day=name == "until")
            except forms.ValidationError as error:
                self.add_error(name, error)
        after = cleaned.get("after") or ""
        cleaned["after_cursor"] = selectors.parse_cursor(after) if after else None
        if after and cleaned["after_cursor"] is None:
            self.add_error("after", _("This page link is not valid."))
        return cleaned

    def filters(self) -> selectors.ActivityFilters:
        data = self.cleaned_data
        return selectors.ActivityFilters(
            person=data.get("person") or "",
            action=data.get("action") or "",
            rw=data.get("rw") or "",
            outcome=data.get("outcome") or "",
            since=data.get("since_at"),
            until=data.get("until_at"),
            text=data.get("q") or "",
            alerts_only=bool(data.get("alerts")),
        )

    def query_without_cursor(self) -> dict[str, str]:
        """The filter values, for links to other pages and the exports."""
        return self.query(leaving_out=("after",))


def _time(value: dt.datetime | None) -> str | None:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if value else None


def activity_record(row: ActivityEvent, *, with_event: bool = False) -> dict[str, Any]:
    """One call as the exports write it; `with_event` adds the whole event as ActionTrail
    reported it (the JSON export's, for forensics: the request's parameters, the session's
    context), which the page and the CSV leave out."""
    record: dict[str, Any] = {
        "event_time": _time(row.event_time),
        "person": row.person_label,
        "via": row.via,
        "action": row.action,
        "service": row.service_name,
        "read_write": row.event_rw,
        "outcome": row.outcome,
        "error_code": row.error_code,
        "resource": row.resource_name,
        "resource_type": row.resource_type,
        "region": row.region,
        "source_ip": row.source_ip,
        "request_id": row.request_id,
        "event_id": row.event_id,
        "session": row.user_name,
        "access_key_id": row.access_key_id,
        "partner_account_uid": row.partner_account_uid,
        "alerts": list(row.alerts),
        "problems": list(row.problems),
    }
    if with_event:
        record["event"] = row.raw_event
    return record


def _form(
    request: AuthenticatedHttpRequest, delegation_id: Any
) -> tuple[Delegation, ActivityFilterForm]:
    delegation = selectors.activity_delegation_get(
        organisation=request.organisation, delegation_id=delegation_id
    )
    return delegation, ActivityFilterForm(request.GET, delegation=delegation)


@require_safe
@organisation_member_required(roles=ACTIVITY_READERS)
def delegation_activity(request: AuthenticatedHttpRequest, delegation_id: Any) -> HttpResponse:
    delegation, form = _form(request, delegation_id)
    context: dict[str, Any] = {
        "delegation": delegation,
        "form": form,
        "cursor": selectors.activity_cursor_for(delegation=delegation),
        "alert_labels": {
            "denied": _("denied"),
            "after_end": _("after the grant ended"),
            "write_read_only": _("write under a read-only role"),
            "unknown_session": _("session not issued by the portal"),
        },
    }
    if not form.is_valid():
        return render(request, "audit/activity.html", context, status=400)
    events = selectors.activity_events(delegation=delegation, filters=form.filters())
    page = selectors.activity_page(
        events=events, after=form.cleaned_data["after_cursor"], limit=PAGE_SIZE
    )
    context.update(
        page=page,
        chart=selectors.activity_chart(delegation=delegation, filters=form.filters()).rows(),
        right_sizing=selectors.activity_right_sizing(delegation=delegation),
        query=urlencode(form.query_without_cursor()),
        text_search_bound=selectors.activity_text_search_bound() if form.filters().text else None,
    )
    return render(request, "audit/activity.html", context)


def _export(request: AuthenticatedHttpRequest, kind: str, delegation_id: Any) -> HttpResponseBase:
    delegation, form = _form(request, delegation_id)
    if not form.is_valid():
        return render(
            request,
            "audit/activity.html",
            {"delegation": delegation, "form": form},
            status=400,
        )
    events = selectors.activity_events(delegation=delegation, filters=form.filters())
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    # The owner's account too: a fleet's role has one name in each of its accounts.
    account_uid = delegation.managed_role.cloud_account.account_uid
    filename = f"activity-{delegation.catalog_role.role_name}-{account_uid}-{delegation.pk}-{stamp}"
    if kind == "csv":
        rows = events.defer("raw").iterator(chunk_size=EXPORT_CHUNK_SIZE)
        records = (activity_record(row) for row in rows)
        return download(csv_lines(EXPORT_COLUMNS, records), filename=filename, kind="csv")
    records = (
        activity_record(row, with_event=True)
        for row in events.iterator(chunk_size=EXPORT_CHUNK_SIZE)
    )
    about = {
        "organisation": request.organisation.name,
        "delegation_id": str(delegation.pk),
        "role": delegation.catalog_role.role_name,
        "account_uid": account_uid,
        "partner_account_uid": delegation.partner_account_uid,
        "generated_at": timezone.now().isoformat(),
        "generated_by": request.user.get_username(),
        "filters": form.query_without_cursor(),
    }
    return download(json_lines(about, "events", records), filename=filename, kind="json")


@require_POST
@organisation_member_required(roles=(ADMIN,))
def delegation_propose_narrower_role(
    request: AuthenticatedHttpRequest, delegation_id: Any
) -> HttpResponse:
    """The owner admin turns the right-sizing into a narrower catalogue role (see
    `activity_propose_narrower_role`); the refusal, if any, is shown on the Activity page."""
    delegation = selectors.activity_delegation_get(
        organisation=request.organisation, delegation_id=delegation_id
    )
    try:
        role = activity_propose_narrower_role(delegation=delegation, proposed_by=request.user)
    except ValidationError as error:
        report_refusal(request, error)
        return redirect("audit:activity", delegation_id=delegation.pk)
    messages.success(
        request,
        _("The catalogue now has %(role)s with exactly the used actions. Offer it when ready.")
        % {"role": role.role_name},
    )
    return redirect("delegations:catalog")


delegation_activity_csv, delegation_activity_json = download_views(
    _export, "delegation_activity", roles=ACTIVITY_READERS
)
