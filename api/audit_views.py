"""The auditor's reads through the API (scope `audit`): the organisation's events, a
delegation's timeline and the access report, over the auditor console's selectors."""

import dataclasses
from typing import Any, ClassVar

from django.utils import timezone
from django.utils.translation import gettext
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from api import serializers as s
from api.base import ApiView, whole_number_param
from api.models import Scope
from api.problems import ProblemException
from api.views import READERS
from auditor import selectors as audit_selectors
from auditor.forms import AccessReportForm
from auditor.named_people import named_people_for_report
from auditor.reports import access_report
from core.web import parse_uuid
from delegations.lifecycle import selectors


class AuditEventListView(ApiView):
    required_scopes: ClassVar[dict[str, str]] = {"GET": Scope.AUDIT}
    roles = READERS
    # A malformed cursor or page size; a `delegation` not the organisation's.
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"GET": (400, 404)}

    @extend_schema(
        responses=s.AuditEventPageOutput,
        parameters=[
            OpenApiParameter("action", str, description="Action prefix, e.g. 'delegation.'"),
            OpenApiParameter("delegation", str, description="Only this delegation's events."),
            OpenApiParameter("before", int, description="Cursor: older than this sequence."),
            OpenApiParameter("limit", int),
        ],
        summary="The organisation's audit events, newest first",
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        delegation_id = params.get("delegation")
        if delegation_id:
            selectors.delegation_get_for_organisation(
                organisation=self.organisation, delegation_id=delegation_id
            )
        filters = audit_selectors.EventFilters(
            action_prefix=params.get("action", "")[:100],
            delegation_id=parse_uuid(delegation_id) if delegation_id else None,
        )
        before = whole_number_param(
            params.get("before"), name="before", maximum=audit_selectors.MAX_SEQUENCE
        )
        limit = whole_number_param(params.get("limit"), name="limit") or 50
        page = audit_selectors.audit_event_page(
            organisation=self.organisation, filters=filters, before=before, limit=limit
        )
        next_query = None
        if page.older_cursor is not None:
            query = params.copy()
            query["before"] = str(page.older_cursor)
            next_query = query.urlencode()
        return _events_answer(request, page.events, next_query=next_query)


class TimelineView(ApiView):
    required_scopes: ClassVar[dict[str, str]] = {"GET": Scope.AUDIT}
    roles = READERS
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"GET": (400,)}  # the cursor

    @extend_schema(
        responses=s.AuditEventPageOutput,
        parameters=[OpenApiParameter("after", int, description="Cursor: later than this.")],
        summary="A delegation's timeline, oldest first",
    )
    def get(self, request: Request, delegation_id: str) -> Response:
        delegation = selectors.delegation_get_for_organisation(
            organisation=self.organisation, delegation_id=delegation_id
        )
        after = whole_number_param(
            request.query_params.get("after"), name="after", maximum=audit_selectors.MAX_SEQUENCE
        )
        events = audit_selectors.delegation_events(
            organisation=self.organisation, delegation=delegation
        )
        page = audit_selectors.delegation_timeline_page(events=events, after=after)
        next_query = None if page.later_cursor is None else f"after={page.later_cursor}"
        return _events_answer(request, page.events, next_query=next_query)


class AccessReportView(ApiView):
    """The auditor's access report: who could act in an account (and role) between dates."""

    required_scopes: ClassVar[dict[str, str]] = {"GET": Scope.AUDIT}
    roles = READERS
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"GET": (400,)}  # the parameters

    @extend_schema(
        responses=s.AccessReportOutput,
        parameters=[
            OpenApiParameter("account", str, required=True, description="Cloud account UID."),
            OpenApiParameter("role", str, description="Catalogue role id."),
            OpenApiParameter("since", str, required=True, description="From (UTC)."),
            OpenApiParameter("until", str, required=True, description="To (UTC, inclusive)."),
        ],
        summary="Who could act in an account between two dates",
    )
    def get(self, request: Request) -> Response:
        form = AccessReportForm(request.query_params, organisation=self.organisation)
        if not form.is_valid():
            raise ProblemException(
                "validation",
                gettext("Some parameters are not valid; see `errors`."),
                status_code=400,
                errors={field: list(messages) for field, messages in form.errors.items()},
            )
        arguments = form.report_arguments()
        report = access_report(organisation=self.organisation, now=timezone.now(), **arguments)
        named = named_people_for_report(organisation=self.organisation, **arguments)
        return Response(
            {
                **dataclasses.asdict(report),
                "named_people": [
                    {
                        "delegation_id": line.delegation.pk,
                        "role_name": line.delegation.catalog_role.role_name,
                        "partner_name": line.delegation.partner.name,
                        "scope": line.delegation.trust_scope,
                        "could_act": [dataclasses.asdict(spell) for spell in line.could_act],
                    }
                    for line in named
                ],
            }
        )


def _events_answer(request: Request, events: Any, *, next_query: str | None) -> Response:
    """A page of events and the URL of the next one (this path with `next_query`), if any."""
    next_url = request.build_absolute_uri(f"{request.path}?{next_query}") if next_query else None
    return Response({"next": next_url, "results": s.AuditEventOutput(events, many=True).data})
