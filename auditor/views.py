"""The history pages: event browser, event detail, delegation timeline, access report,
exports and chain verification.

Every page is read-only (GET/HEAD) but one: "Verify now" (POST) starts a background
verification of the chain. The one write of a GET is the ledger's own: a verifiable JSON
export of events is recorded in the organisation's chain once written, so the file can be
checked against that record (`auditor.services.audit_export_record`). Readers are the owner
organisation's auditors and admins and partner organisations' admins; each sees only events
scoped to its own organisation, and another organisation's event or delegation answers 404.
Auditors cannot do anything else anywhere: `auditor.middleware.AuditorReadOnlyMiddleware`
refuses their unsafe requests.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError
from django.http import HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.http import require_POST, require_safe

from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    current_organisation_of,
    organisation_member_required,
)
from audit.checkpoints import checkpoint_directory, checkpoint_key, checkpoints_load
from audit.context import current_origin
from audit.models import AuditVerification
from audit.services import AuditError
from audit.verification import audit_verification_start, is_stale
from audit.verify import read_head
from auditor import exports, selectors, services
from auditor.downloads import download_views
from auditor.forms import AccessReportForm, EventFilterForm
from auditor.named_people import named_people_for_report
from auditor.presentation import describe_event
from auditor.reports import access_report
from core.web import whole_number
from delegations.lifecycle.selectors import delegation_get_for_organisation

logger = logging.getLogger(__name__)

HISTORY_READERS = (ADMIN, AUDITOR)
PAGE_SIZE = 50
TIMELINE_PAGE_SIZE = 200
# How often a run's page reloads itself while the worker walks the chain.
VERIFY_REFRESH_SECONDS = 2


def _entries(events: list[Any]) -> list[tuple[Any, Any]]:
    return [(event, describe_event(event)) for event in events]


def _about(request: AuthenticatedHttpRequest, **extra: Any) -> dict[str, Any]:
    organisation = request.organisation
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
def event_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = request.organisation
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
def event_detail(request: AuthenticatedHttpRequest, sequence: str) -> HttpResponse:
    event = selectors.audit_event_get_for_organisation(
        organisation=request.organisation, sequence=sequence
    )
    return render(
        request,
        "audit/event_detail.html",
        {"event": event, "description": describe_event(event)},
    )


def _events_export(request: AuthenticatedHttpRequest, kind: str) -> HttpResponseBase:
    organisation = request.organisation
    form = EventFilterForm(request.GET, organisation=organisation)
    if not form.is_valid():
        return render(
            request, "audit/events.html", {"form": form, "organisation": organisation}, status=400
        )
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    filename = f"audit-events-{organisation.slug}-{stamp}"
    if kind == "csv":
        events = selectors.audit_events_for_export(
            organisation=organisation, filters=form.filters()
        )
        return exports.events_export_csv(events, filename=filename)
    chain = selectors.audit_export_chain(organisation=organisation, filters=form.filters())
    attest = functools.partial(
        services.audit_export_record,
        organisation=organisation,
        exported_by=request.user,
        origin=current_origin(),
    )
    return exports.events_export_json(
        chain,
        about=_about(request, filters=form.query_without_cursor()),
        filename=filename,
        attest=attest,
    )


events_export_csv, events_export_json = download_views(
    _events_export, "events_export", roles=HISTORY_READERS
)


# --- delegation timeline ---------------------------------------------------------------------


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def delegation_timeline(request: AuthenticatedHttpRequest, delegation_id: Any) -> HttpResponse:
    organisation = request.organisation
    delegation = delegation_get_for_organisation(
        organisation=organisation, delegation_id=delegation_id
    )
    after_text = request.GET.get("after", "")
    after = None
    if after_text:
        after = whole_number(after_text)
        if after is None:
            return render(
                request,
                "audit/timeline.html",
                {"delegation": delegation, "bad_cursor": True},
                status=400,
            )
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


def _report(request: AuthenticatedHttpRequest) -> tuple[AccessReportForm, Any]:
    organisation = request.organisation
    form = AccessReportForm(request.GET or None, organisation=organisation)
    if not form.is_bound or not form.is_valid():
        return form, None
    report = access_report(organisation=organisation, now=timezone.now(), **form.report_arguments())
    return form, report


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def access_report_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    form, report = _report(request)
    status = 400 if form.is_bound and report is None else 200
    named_people = []
    if report is not None:
        # Delegations whose trust policy named people in the window list them one by one,
        # with when each was in it, from the record of the trust-policy writes.
        named_people = named_people_for_report(
            organisation=request.organisation, **form.report_arguments()
        )
    return render(
        request,
        "audit/access_report.html",
        {
            "form": form,
            "report": report,
            "query": urlencode(form.query()),
            "named_people": named_people,
        },
        status=status,
    )


def _report_export(request: AuthenticatedHttpRequest, kind: str) -> HttpResponseBase:
    form, report = _report(request)
    if report is None:
        return render(
            request,
            "audit/access_report.html",
            {"form": form, "report": None, "query": ""},
            status=400,
        )
    organisation = request.organisation
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


access_report_csv, access_report_json = download_views(
    _report_export, "access_report", roles=HISTORY_READERS
)


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


_owner_only = current_organisation_of(
    Organisation.Kind.OWNER,
    refusal=gettext_lazy("Verifying the audit log is for the owner's auditors and admins."),
)


@dataclass(frozen=True)
class VerificationRow:
    """A run as the page shows it: stale runs read as failed, and who asked is named only
    to the asker's own organisation (runs are about the shared chain, not a tenant's data)."""

    run: AuditVerification
    stale: bool
    requested_by: str

    @property
    def status(self) -> str:
        return "stale" if self.stale else self.run.status

    @property
    def in_progress(self) -> bool:
        return self.run.in_flight and not self.stale


def _row(run: AuditVerification, organisation: Organisation) -> VerificationRow:
    return VerificationRow(
        run=run,
        stale=is_stale(run),
        requested_by=run.requested_by_label
        if run.organisation_id == organisation.pk
        else "someone in another owner organisation",
    )


def _verify_context(organisation: Organisation) -> dict[str, Any]:
    head, top = read_head()
    return {
        "head": head,
        "top": top,
        "checkpoints": _checkpoint_status(),
        "runs": [_row(run, organisation) for run in selectors.audit_verifications_recent()],
    }


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def verify(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The chain head, the signed checkpoints, "Verify now" and the last runs. Walking the
    chain takes minutes, so it runs in the worker (`audit.verification`)."""
    organisation = _owner_only(request)
    in_flight = selectors.audit_verification_in_flight()
    context = _verify_context(organisation)
    context["current"] = _row(in_flight, organisation) if in_flight else None
    return render(request, "audit/verify.html", context)


@require_POST
@organisation_member_required(roles=HISTORY_READERS)
def verify_start(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Start a verification, or show the one already queued or running. Open to auditors
    on purpose (see `auditor.middleware.AUDITOR_ALLOWED_POSTS`): it changes nothing but adds
    a verification run and its audit events."""
    organisation = _owner_only(request)
    try:
        run, started = audit_verification_start(user=request.user, organisation=organisation)
    except (DatabaseError, AuditError):
        # Starting is audited, and the log refuses new events: a forged row sits where the
        # next one goes. The walk from a shell still names it.
        logger.exception("Could not start an audit verification.")
        messages.error(
            request,
            gettext(
                "The audit log refuses new events, so a verification cannot be recorded: "
                "the log has probably been tampered with. Run `python manage.py "
                "audit_verify` on the server to find the first bad sequence number."
            ),
        )
        return redirect("audit:verify")
    if not started:
        messages.info(request, gettext("A verification is already running; here is its progress."))
    return redirect("audit:verify_run", verification_id=run.pk)


@require_safe
@organisation_member_required(roles=HISTORY_READERS)
def verify_run(request: AuthenticatedHttpRequest, verification_id: Any) -> HttpResponse:
    """One run: its progress (the page reloads itself while it is in flight), then the
    verdict, with the last runs below."""
    organisation = _owner_only(request)
    run = selectors.audit_verification_get(verification_id=verification_id)
    context = _verify_context(organisation)
    context.update(row=_row(run, organisation), refresh_seconds=VERIFY_REFRESH_SECONDS)
    return render(request, "audit/verify_run.html", context)
