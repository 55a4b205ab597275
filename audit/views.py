"""The history pages: event browser, event detail, delegation timeline, access report,
exports and chain verification.

Every page is read-only (GET/HEAD). Readers are the owner organisation's auditors and admins
and partner organisations' admins; each sees only events scoped to its own organisation, and
another organisation's event or delegation answers 404. Auditors cannot do anything else
anywhere: `audit.middleware.AuditorReadOnlyMiddleware` refuses their unsafe requests.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured, PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_safe

from accounts.models import Organisation
from accounts.permissions import ADMIN, AUDITOR, organisation_member_required
from audit import exports, selectors
from audit.checkpoints import checkpoint_directory, checkpoint_key, checkpoints_load
from audit.forms import AccessReportForm, EventFilterForm
from audit.presentation import describe_event
from audit.reports import access_report
from audit.verify import read_head, verify_chain
from delegations.selectors import delegation_get_for_organisation

HISTORY_READERS = (ADMIN, AUDITOR)
PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 200
VERIFY_LOCK = "audit:verify-running"
VERIFY_LOCK_SECONDS = 15 * 60


def _organisation(request: HttpRequest) -> Organisation:
    return request.organisation  # type: ignore[attr-defined, no-any-return]


def _entries(events: list[Any]) -> list[tuple[Any, Any]]:
    return [(event, describe_event(event)) for event in events]


def _about(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    organisation = _organisation(request)
    return {
        "organisation": organisation.name,
        "organisation_id": str(organisation.pk),
        "generated_at": timezone.now().isoformat(),
        "generated_by": request.user.get_username(),
        **extra,
    }


# --- event browser ---------------------------------------------------------------------------


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def event_list(request: HttpRequest) -> HttpResponse:
    organisation = _organisation(request)
    form = EventFilterForm(request.GET, organisation=organisation)
    context: dict[str, Any] = {"form": form, "organisation": organisation}
    if not form.is_valid():
        return render(request, "audit/events.html", context, status=400)
    data = form.cleaned_data
    page = selectors.audit_event_page(
        organisation=organisation,
        filters=form.filters(),
        before=data.get("before"),
        after=data.get("after"),
        limit=PAGE_SIZE,
    )
    query = form.query_without_cursor()
    context.update(
        entries=_entries(page.events),
        page=page,
        query=urlencode(query),
        filtered=bool(query),
        at_newest=data.get("before") is None and data.get("after") is None,
    )
    return render(request, "audit/events.html", context)


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def event_detail(request: HttpRequest, sequence: str) -> HttpResponse:
    event = selectors.audit_event_get_for_organisation(
        organisation=_organisation(request), sequence=sequence
    )
    return render(
        request,
        "audit/event_detail.html",
        {"event": event, "description": describe_event(event)},
    )


def _events_export(request: HttpRequest, kind: str) -> HttpResponse:
    organisation = _organisation(request)
    form = EventFilterForm(request.GET, organisation=organisation)
    if not form.is_valid():
        return render(
            request, "audit/events.html", {"form": form, "organisation": organisation}, status=400
        )
    events = selectors.audit_events_for_export(organisation=organisation, filters=form.filters())
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    return exports.events_export(
        events,
        kind=kind,
        about=_about(request, filters=form.query_without_cursor()),
        filename=f"audit-events-{organisation.slug}-{stamp}",
    )


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def events_export_csv(request: HttpRequest) -> HttpResponse:
    return _events_export(request, "csv")


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def events_export_json(request: HttpRequest) -> HttpResponse:
    return _events_export(request, "json")


# --- delegation timeline ---------------------------------------------------------------------


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def delegation_timeline(request: HttpRequest, delegation_id: Any) -> HttpResponse:
    organisation = _organisation(request)
    delegation = delegation_get_for_organisation(
        organisation=organisation, delegation_id=delegation_id
    )
    after_text = request.GET.get("after", "")
    after = None
    if after_text:
        if not after_text.isdigit() or int(after_text) > selectors.MAX_SEQUENCE:
            return render(
                request,
                "audit/timeline.html",
                {"delegation": delegation, "bad_cursor": True},
                status=400,
            )
        after = int(after_text)
    events = selectors.delegation_events(organisation=organisation, delegation=delegation)
    page = selectors.delegation_timeline_page(events=events, after=after, limit=TIMELINE_PAGE_SIZE)
    summary = selectors.delegation_timeline_summary(
        organisation=organisation, delegation=delegation, events=events
    )
    return render(
        request,
        "audit/timeline.html",
        {
            "delegation": delegation,
            "entries": _entries(page.events),
            "page": page,
            "summary": summary,
            "is_owner_side": delegation.owner_id == organisation.pk,
            "continued": after is not None,
        },
    )


# --- access report ---------------------------------------------------------------------------


def _report(request: HttpRequest) -> tuple[AccessReportForm, Any]:
    organisation = _organisation(request)
    form = AccessReportForm(request.GET or None, organisation=organisation)
    if not form.is_bound or not form.is_valid():
        return form, None
    report = access_report(organisation=organisation, now=timezone.now(), **form.report_arguments())
    return form, report


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def access_report_view(request: HttpRequest) -> HttpResponse:
    form, report = _report(request)
    status = 400 if form.is_bound and report is None else 200
    return render(
        request,
        "audit/access_report.html",
        {"form": form, "report": report, "query": urlencode(form.query())},
        status=status,
    )


def _report_export(request: HttpRequest, kind: str) -> HttpResponse:
    form, report = _report(request)
    if report is None:
        return render(
            request,
            "audit/access_report.html",
            {"form": form, "report": None, "query": ""},
            status=400,
        )
    organisation = _organisation(request)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    about = _about(
        request,
        account_uid=report.account_uid,
        role=report.role_name or None,
        since=report.since.isoformat(),
        until=report.until.isoformat(),
        per_person_data=report.per_person_data,
    )
    return exports.report_export(
        report,
        kind=kind,
        about=about,
        filename=f"access-report-{organisation.slug}-{report.account_uid}-{stamp}",
    )


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def access_report_csv(request: HttpRequest) -> HttpResponse:
    return _report_export(request, "csv")


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def access_report_json(request: HttpRequest) -> HttpResponse:
    return _report_export(request, "json")


# --- verification ----------------------------------------------------------------------------


def _checkpoint_status() -> dict[str, Any]:
    """What the page says about signed checkpoints, and what verification should use."""
    try:
        key = checkpoint_key()
    except ImproperlyConfigured as error:
        return {"state": "misconfigured", "message": str(error), "valid": [], "invalid": []}
    if key is None:
        return {"state": "off", "valid": [], "invalid": []}
    try:
        valid, invalid = checkpoints_load(directory=checkpoint_directory(), key=key)
    except FileNotFoundError:
        return {"state": "none", "valid": [], "invalid": []}
    return {
        "state": "on" if valid or invalid else "none",
        "valid": valid,
        "invalid": invalid,
        "latest": max(valid, key=lambda c: (c.sequence, c.created_at)) if valid else None,
    }


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def verify(request: HttpRequest) -> HttpResponse:
    """Shows the chain head; `?run=1` walks the whole chain (in batches) and says whether it
    is intact or names the first bad sequence number. Verification changes nothing, so it is
    a GET; one runs at a time."""
    if not _organisation(request).is_owner:
        raise PermissionDenied("Verifying the audit log is for the owner's auditors and admins.")
    checkpoints = _checkpoint_status()
    result = None
    busy = False
    if request.GET.get("run") == "1":
        if cache.add(VERIFY_LOCK, True, VERIFY_LOCK_SECONDS):
            try:
                result = verify_chain(
                    checkpoints=checkpoints["valid"], invalid_checkpoints=checkpoints["invalid"]
                )
            finally:
                cache.delete(VERIFY_LOCK)
        else:
            busy = True
    head, top = read_head()
    return render(
        request,
        "audit/verify.html",
        {
            "result": result,
            "busy": busy,
            "head": head,
            "top": top,
            "checkpoints": checkpoints,
            "ran_at": timezone.now() if result else None,
        },
    )
