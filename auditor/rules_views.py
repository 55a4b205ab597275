"""The auditor's view of the approval rules: every rule in force with its version,
every four-eyes proposal with its author and second approver, every decision a rule made
(auto-approvals, escalations, review deadlines), break-glass windows and access-review
decisions; and the access-review report with its CSV and JSON exports (shaped like the access
report's). Read-only pages for the owner's auditors and admins; a partner's admins see the
review report of the questions their organisation was asked.
"""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    organisation_member_required,
    organisation_of_kind,
)
from auditor import exports, selectors
from auditor.downloads import download_views
from auditor.presentation import describe_event
from delegations.approvals import selectors as approvals
from delegations.breakglass import selectors as breakglass
from delegations.reviews import selectors as reviews

READERS = (ADMIN, AUDITOR)

REVIEW_COLUMNS = (
    "campaign_started_at",
    "deadline_at",
    "owner",
    "partner",
    "partner_account_uid",
    "role_name",
    "account_uid",
    "delegation_id",
    "starts_at",
    "side",
    "staff",
    "decision",
    "decided_by",
    "decided_at",
    "new_ends_at",
    "note",
)


@require_safe
@organisation_member_required(roles=READERS)
def approval_rules_record(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = organisation_of_kind(
        request,
        Organisation.Kind.OWNER,
        refusal=_("Only resource owner organisations keep approval rules."),
    )
    rules = approvals.approval_rules_by_role(owner=owner)
    roles = [
        {"role": role, "rule": rules.get(role.pk)}
        for role in approvals.catalog_role_choices(owner=owner)
    ]
    decisions = selectors.rule_decisions(organisation=owner)
    return render(
        request,
        "audit/rules.html",
        {
            "settings": approvals.approval_settings_of(owner=owner),
            "groups": approvals.approver_groups_for_owner(owner=owner),
            "roles": roles,
            "proposals": approvals.rule_proposals_for(owner=owner)[:200],
            "decisions": [(event, describe_event(event)) for event in decisions],
            "markings": breakglass.break_glass_roles_for_owner(owner=owner),
            "windows": breakglass.activations_for(organisation=owner)[:200],
            "schedule": reviews.review_schedule_of(owner=owner),
            "campaigns": reviews.campaigns_for(organisation=owner)[:20],
        },
    )


def _campaign(request: AuthenticatedHttpRequest) -> Any:
    campaign_id = request.GET.get("campaign")
    if not campaign_id:
        return None
    return reviews.campaign_get_for(organisation=request.organisation, campaign_id=campaign_id)


def _review_record(row: reviews.ReviewRow) -> dict[str, Any]:
    record = {name: getattr(row, name) for name in REVIEW_COLUMNS}
    for name in ("campaign_started_at", "deadline_at", "starts_at", "decided_at", "new_ends_at"):
        value = record[name]
        record[name] = value.isoformat() if value is not None else None
    return record


@require_safe
@organisation_member_required(roles=READERS)
def review_report(request: AuthenticatedHttpRequest) -> HttpResponse:
    campaign = _campaign(request)
    return render(
        request,
        "audit/review_report.html",
        {
            "campaign": campaign,
            "rows": reviews.review_report(organisation=request.organisation, campaign=campaign),
            "query": f"?campaign={campaign.pk}" if campaign else "",
        },
    )


def _review_export(request: AuthenticatedHttpRequest, kind: str) -> HttpResponseBase:
    organisation = request.organisation
    campaign = _campaign(request)
    rows = reviews.review_report(organisation=organisation, campaign=campaign)
    records = (_review_record(row) for row in rows)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    about = {
        "organisation": organisation.name,
        "organisation_id": str(organisation.pk),
        "generated_at": timezone.now().isoformat(),
        "generated_by": request.user.get_username(),
        "campaign": str(campaign.pk) if campaign else None,
    }
    chunks = (
        exports.csv_lines(REVIEW_COLUMNS, records)
        if kind == "csv"
        else exports.json_lines(about, "rows", records)
    )
    return exports.download(
        chunks, filename=f"access-reviews-{organisation.slug}-{stamp}", kind=kind
    )


review_report_csv, review_report_json = download_views(
    _review_export, "review_report", roles=READERS
)
