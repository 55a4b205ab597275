"""The REST API's endpoints: thin views over the pages' selectors and services.

Every view checks the token's scope, the caller's role and organisation kind (`ApiView`),
finds objects through the tenancy selectors (another organisation's id is 404) and calls the
same service as the page; the services write the audit events, attributed to the token.
"""

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.http import Http404
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy, ngettext
from django.views.decorators.debug import sensitive_variables
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Organisation, User
from accounts.permissions import ADMIN, AUDITOR, STAFF
from api import selectors as api_selectors
from api import serializers as s
from api.base import ApiView, whole_number_param
from api.models import Scope
from api.problems import ProblemException, conflict_unless_changed
from core.ratelimit import rate_limit_consume
from core.web import no_store, parse_uuid
from delegations.catalog import partner_links
from delegations.catalog.selectors import catalog_roles_granted_in
from delegations.connection.selectors import cloud_accounts_of_organisation
from delegations.lifecycle import selectors
from delegations.lifecycle import services as lifecycle
from delegations.lifecycle.starting import (
    delegation_offer,
    delegation_request_submit,
    delegation_withdraw,
)
from delegations.models import CatalogRole, CloudAccount, CredentialIssuance, Delegation
from delegations.partner import console_sign_in
from delegations.partner import credentials as partner_credentials
from delegations.partner import selectors as partner_selectors
from delegations.partner import services as partner_services

READERS = (ADMIN, AUDITOR)
OWNER = Organisation.Kind.OWNER
PARTNER = Organisation.Kind.PARTNER
# `owner` names no owner whose partner link the partner used and may still use: the same
# words whether or not such an owner exists.
NO_REMEMBERED_LINK = gettext_lazy(
    "Your organisation has no valid partner link of this owner; ask them for a partner link code."
)


class Pagination(LimitOffsetPagination):
    """`limit` and `offset` over one total order: the list's own sort keys, then the primary
    key. Rows tied on every key (same partner, role and creation time) would otherwise come
    back in whatever order the database picks per query (PostgreSQL's top-N sort picks a
    different one for each page's bound), so a client paging through would see some rows
    twice and others never."""

    default_limit = 50
    max_limit = 200

    # DRF reads a malformed `limit` or `offset` as absent and answers the first page; here it
    # is a 400 naming the parameter (`problem_statuses` of _PagedListView).
    def get_limit(self, request: Request) -> int:
        limit = whole_number_param(
            request.query_params.get(self.limit_query_param), name="limit", minimum=1
        )
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request: Request) -> int:
        return (
            whole_number_param(request.query_params.get(self.offset_query_param), name="offset")
            or 0
        )

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"]["minimum"] = 1
                parameter["description"] = (
                    f"Number of results to return per page (at most {self.max_limit}; more "
                    f"reads as {self.max_limit})."
                )
            else:
                parameter["schema"]["minimum"] = 0
        return parameters

    def paginate_queryset(
        self, queryset: QuerySet[Any], request: Request, view: Any = None
    ) -> list[Any] | None:
        return super().paginate_queryset(_totally_ordered(queryset), request, view)


def _totally_ordered(queryset: QuerySet[Any]) -> QuerySet[Any]:
    ordering = list(queryset.query.order_by) or list(queryset.model._meta.ordering)
    if ordering and str(ordering[-1]).lstrip("-") in ("pk", queryset.model._meta.pk.name):
        return queryset
    return queryset.order_by(*ordering, "pk")


class _PagedListView(ApiView):
    """A list answered a page at a time (`limit`, `offset`). drf-spectacular reads
    `pagination_class` to describe the page object (count, next, previous, results) and its
    query parameters in the schema, so the answer and the schema come from one paginator."""

    pagination_class: ClassVar[type[Pagination]] = Pagination
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"GET": (400,)}  # limit, offset

    def paged(self, request: Request, queryset: Any, serializer: Any) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        return paginator.get_paginated_response(serializer(page, many=True).data)


def _by_id_or_name(
    queryset: QuerySet[Any],
    value: str,
    *,
    name_field: str,
    where: Callable[[Any], str] = str,
    narrow: Callable[[QuerySet[Any]], QuerySet[Any]] | None = None,
) -> Any:
    """A row of `queryset` (already scoped by a selector) named by its UUID or by name. A
    name several rows hold (a catalogue role name in two of an owner's accounts) is taken
    only when `narrow` leaves exactly one of them; otherwise it is refused, listing each
    one's id and `where(row)`: which one is meant cannot be guessed."""
    try:
        return queryset.get(pk=parse_uuid(value))
    except (Http404, ObjectDoesNotExist):  # not a UUID, or no such id: try the name
        named = queryset.filter(**{name_field: value})
        matches = list(named)
    if not matches:
        raise ProblemException(
            "not-found", gettext("Nothing named '%(name)s'.") % {"name": value}, status_code=404
        )
    if len(matches) > 1 and narrow is not None:
        narrowed = list(narrow(named))
        if len(narrowed) == 1:
            return narrowed[0]
    if len(matches) > 1:
        raise ProblemException(
            "validation",
            gettext("Several are named '%(name)s': %(each)s. Give the id of the one you mean.")
            % {"name": value, "each": ", ".join(f"{row.pk} ({where(row)})" for row in matches)},
            status_code=400,
        )
    return matches[0]


def _catalog_role_by_id_or_name(
    roles: QuerySet[CatalogRole], value: str, *, account: CloudAccount | None = None
) -> CatalogRole:
    """A grantable catalogue role by id or name; each of the owner's accounts may hold a role
    of that name. With a chosen `account`, a name several roles hold means the one that may
    be granted there (the catalogue lets only one role of a name be granted in an account);
    a name only one role holds is that role, and the service says if it is not offered
    there."""
    return _by_id_or_name(
        roles.select_related("cloud_account"),
        value,
        name_field="role_name",
        where=lambda role: gettext("account %(uid)s") % {"uid": role.cloud_account.account_uid},
        narrow=None
        if account is None
        else lambda named: catalog_roles_granted_in(named, accounts=[account]),
    )


def _role_and_account(
    owner: Organisation, data: dict[str, Any]
) -> tuple[CatalogRole, CloudAccount | None]:
    """The grantable catalogue role and the owner account a request or an offer names
    (`catalog_role`, `account_uid`). No `account_uid` (None) is the role's home account, as on
    the pages. A UID that is not one of the owner's connected accounts is refused without
    saying whether it is anyone else's; whether the role is offered in the account is the
    service's check, the pages' too."""
    account = None
    uid = data.get("account_uid")
    if uid is not None:
        account = selectors.owner_account_by_uid(owner=owner, account_uid=uid)
        if account is None:
            message = gettext("%(owner)s has no connected cloud account with this UID.") % {
                "owner": owner.name
            }
            raise ProblemException(
                "validation", message, status_code=400, errors={"account_uid": [message]}
            )
    roles = selectors.catalog_roles_grantable(owner=owner)
    return _catalog_role_by_id_or_name(roles, data["catalog_role"], account=account), account


@contextmanager
def _chosen_account_errors() -> Iterator[None]:
    """The services name the chosen account `cloud_account`, the pages' field; an error of
    theirs on it (the role is not offered in that account) is on `account_uid` here."""
    try:
        yield
    except DjangoValidationError as error:
        if hasattr(error, "error_dict") and "cloud_account" in error.error_dict:
            error.error_dict["account_uid"] = error.error_dict.pop("cloud_account")
        raise


# --- who am I --------------------------------------------------------------------------------


class MeView(ApiView):
    @extend_schema(responses=s.MeOutput, summary="The caller: organisation, role and scopes")
    def get(self, request: Request) -> Response:
        caller = self.caller
        org = caller.organisation
        return Response(
            s.MeOutput(
                {
                    "caller": caller.label,
                    "kind": "service_account" if caller.user is None else "person",
                    "organisation": org,
                    "role": caller.role,
                    "scopes": sorted(caller.scopes),
                    "token_prefix": caller.token.prefix,
                    "token_expires_at": caller.token.expires_at,
                }
            ).data
        )


# --- delegations -----------------------------------------------------------------------------


class DelegationListView(_PagedListView):
    required_scopes: ClassVar[dict[str, str]] = {"GET": Scope.READ, "POST": Scope.REQUEST}
    roles = None  # staff get a pointer to /access/ below
    service_account_writes = frozenset({"POST"})
    # An unknown catalogue role is a 404; partner link codes have a budget.
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {
        **_PagedListView.problem_statuses,
        "POST": (404, 429),
    }

    @extend_schema(
        responses=s.DelegationOutput(many=True),
        parameters=[
            OpenApiParameter("status", str, description="Only this status."),
            OpenApiParameter("partner", str, description="Owners: only this partner's (id)."),
            OpenApiParameter("catalog_role", str, description="Owners: only this role's (id)."),
        ],
        summary="My organisation's delegations",
    )
    def get(self, request: Request) -> Response:
        org = self.organisation
        if self.caller.role == STAFF:
            raise ProblemException(
                "forbidden",
                gettext("Staff see their own access at /api/v1/access/."),
                status_code=403,
            )
        params = request.query_params
        if org.is_owner:
            queryset = selectors.delegations_for_owner(
                owner=org,
                partner_id=params.get("partner"),
                catalog_role_id=params.get("catalog_role"),
                status=params.get("status"),
            )
        else:
            queryset = selectors.delegations_for_partner(partner=org)
            wanted = params.get("status")
            if wanted:
                queryset = queryset.filter(status=wanted)
        return self.paged(request, queryset, s.DelegationOutput)

    @extend_schema(
        request=s.RequestAccessInput,
        responses={201: s.DelegationOutput},
        summary="Request access (partner admins): a partner link code and a catalogue role",
    )
    def post(self, request: Request) -> Response:
        # A partner's admins, or its service accounts (whose token holds `request`).
        if self.organisation.kind != PARTNER or self.caller.role not in (ADMIN, None):
            raise ProblemException(
                "forbidden",
                gettext(
                    "Only a partner organisation's admins and service accounts request access."
                ),
                status_code=403,
            )
        body = s.RequestAccessInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        partner = self.organisation
        link = self._partner_link(partner, data)
        role, account = _role_and_account(link.organisation, data)
        with _chosen_account_errors():
            delegation = delegation_request_submit(
                partner=partner,
                requested_by=self.actor,
                partner_link=link,
                catalog_role=role,
                reason=data["reason"],
                ends_at=data.get("ends_at"),
                cloud_account=account,
            )
        return self.created(s.DelegationOutput(delegation).data)

    def _partner_link(self, partner: Organisation, data: dict[str, Any]) -> Any:
        if data.get("owner"):
            remembered = api_selectors.partner_link_remembered(
                partner=partner, owner_slug=data["owner"]
            )
            if remembered is None:
                raise ProblemException(
                    "validation",
                    str(NO_REMEMBERED_LINK),
                    status_code=400,
                    errors={"owner": [gettext("No valid partner link; use a code.")]},
                )
            return remembered
        # Per partner organisation, before any code is looked at (as the request page does).
        wait = rate_limit_consume(
            scope="partner-link-code",
            key=str(partner.pk),
            rate=settings.PORTAL_PARTNER_LINK_CODE_RATE,
        )
        if wait is not None:
            raise ProblemException(
                "rate-limited",
                ngettext(
                    "Too many partner link codes tried; try again in %(n)d minute.",
                    "Too many partner link codes tried; try again in %(n)d minutes.",
                    math.ceil(wait / 60),
                )
                % {"n": math.ceil(wait / 60)},
                status_code=429,
                retry_after=wait,
            )
        try:
            return partner_links.partner_link_redeem(
                code=data["partner_link_code"], partner=partner, user=self.actor
            )
        except partner_links.PartnerLinkRefused as refusal:
            raise ProblemException(
                "validation",
                str(refusal),
                status_code=400,
                errors={"partner_link_code": [str(refusal)]},
            ) from None


class DelegationDetailView(ApiView):
    roles = READERS

    @extend_schema(responses=s.DelegationOutput, summary="One delegation")
    def get(self, request: Request, delegation_id: str) -> Response:
        delegation = selectors.delegation_get_for_organisation(
            organisation=self.organisation, delegation_id=delegation_id
        )
        return Response(s.DelegationOutput(delegation).data)


class OfferView(ApiView):
    required_scopes: ClassVar[dict[str, str]] = {"POST": Scope.DECIDE}
    roles = (ADMIN,)
    organisation_kind = OWNER
    kind_refusal = gettext_lazy("Only resource owner organisations offer access.")
    # An unknown partner or role is a 404; a role whose privileges changed meanwhile a 409.
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"POST": (404, 409)}

    @extend_schema(request=s.OfferInput, responses={201: s.DelegationOutput}, summary="Offer")
    def post(self, request: Request) -> Response:
        body = s.OfferInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.validated_data
        owner = self.organisation
        partner = _by_id_or_name(
            selectors.partners_offerable(owner=owner), data["partner"], name_field="slug"
        )
        role, account = _role_and_account(owner, data)
        with _chosen_account_errors():
            delegation = delegation_offer(
                owner=owner,
                offered_by=self.person,
                partner=partner,
                catalog_role=role,
                reason=data["reason"],
                ends_at=data.get("ends_at"),
                with_mfa=self.with_mfa,
                cloud_account=account,
            )
        return self.created(s.DelegationOutput(delegation).data)


class _DelegationAction(ApiView):
    """POST /delegations/<id>/<action>/: find the delegation through the tenancy selector,
    call the service, answer the delegation as it is now."""

    required_scopes: ClassVar[dict[str, str]] = {"POST": Scope.DECIDE}
    roles = (ADMIN,)
    organisation_kind: ClassVar[str | None] = OWNER
    # None: the action takes no body (and never reads one).
    input_serializer: ClassVar[type[s.StrictSerializer] | None] = s.ReasonInput
    # Decided or moved meanwhile, or not at the `expected_version` sent.
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"POST": (409,)}

    def act(self, delegation: Delegation, data: dict[str, Any]) -> Delegation:
        raise NotImplementedError

    def post(self, request: Request, delegation_id: str) -> Response:
        delegation = selectors.delegation_get_for_organisation(
            organisation=self.organisation, delegation_id=delegation_id
        )
        data: dict[str, Any] = {}
        if self.input_serializer is not None:
            body = self.input_serializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = dict(body.validated_data)
        result = self.act(delegation, data)
        result = selectors.delegation_get_for_organisation(
            organisation=self.organisation, delegation_id=result.pk
        )
        return Response(s.DelegationOutput(result).data)


@extend_schema(request=s.ApproveInput, responses=s.DelegationOutput, summary="Approve")
class ApproveView(_DelegationAction):
    input_serializer = s.ApproveInput

    def act(self, delegation: Delegation, data: dict[str, Any]) -> Delegation:
        return lifecycle.delegation_approve(
            delegation=delegation,
            approved_by=self.person,
            with_mfa=self.with_mfa,
            note=data.get("note", ""),
            expected_version=data.get("expected_version"),
        )


@extend_schema(
    request=None,
    responses=s.DelegationOutput,
    summary="Withdraw my approval (while the request still waits for its quorum)",
)
class ApprovalWithdrawView(_DelegationAction):
    """An approver takes back their own approval, as on the request page, under the same
    checks as approving through the API (scope, the organisation's switch, a fresh-MFA token,
    an admin of the owner)."""

    input_serializer = None

    def act(self, delegation: Delegation, data: dict[str, Any]) -> Delegation:
        result = lifecycle.delegation_approval_withdraw(
            delegation=delegation, withdrawn_by=self.person
        )
        conflict_unless_changed(
            result, gettext("You have no approval on this request to withdraw; nothing changed.")
        )
        return result


@extend_schema(request=s.ReasonInput, responses=s.DelegationOutput, summary="Reject")
class RejectView(_DelegationAction):
    def act(self, delegation: Delegation, data: dict[str, Any]) -> Delegation:
        return lifecycle.delegation_reject(
            delegation=delegation,
            rejected_by=self.person,
            reason=data["reason"],
            expected_version=data.get("expected_version"),
        )


@extend_schema(request=s.ReasonInput, responses=s.DelegationOutput, summary="Revoke")
class RevokeView(_DelegationAction):
    def act(self, delegation: Delegation, data: dict[str, Any]) -> Delegation:
        return lifecycle.delegation_revoke(
            delegation=delegation,
            revoked_by=self.person,
            reason=data["reason"],
            expected_version=data.get("expected_version"),
        )


@extend_schema(request=s.VersionedInput, responses=s.DelegationOutput, summary="Withdraw")
class WithdrawView(_DelegationAction):
    required_scopes: ClassVar[dict[str, str]] = {"POST": Scope.REQUEST}
    organisation_kind = PARTNER
    kind_refusal = gettext_lazy("Only the requesting partner withdraws a request.")
    input_serializer = s.VersionedInput
    service_account_writes = frozenset({"POST"})

    def act(self, delegation: Delegation, data: dict[str, Any]) -> Delegation:
        return delegation_withdraw(
            delegation=delegation,
            withdrawn_by=self.actor,
            expected_version=data.get("expected_version"),
        )


# --- catalogue and partner staff ------------------------------------------------------------


class CatalogRoleListView(_PagedListView):
    roles = READERS
    organisation_kind = OWNER
    kind_refusal = gettext_lazy(
        "Partners see the roles of an owner they requested from with a partner link code at "
        "/api/v1/owners/<owner>/catalog-roles/."
    )

    @extend_schema(responses=s.CatalogRoleOutput(many=True), summary="The owner's catalogue")
    def get(self, request: Request) -> Response:
        queryset = selectors.catalog_roles_of_owner(owner=self.organisation)
        return self.paged(request, queryset, s.CatalogRoleOutput)


class OwnerCatalogRoleListView(_PagedListView):
    """What the request page lists once a code is entered: the roles a partner may request of
    an owner and the accounts each is offered in. Partners never browse owners: only an owner
    whose partner link the partner used for a request, still valid for it, is found (as
    `owner` in a request); any other owner is the 404 of one that does not exist. A code is
    never put in a URL, so a first request still starts from the code."""

    roles = (ADMIN,)
    organisation_kind = PARTNER
    kind_refusal = gettext_lazy("Owners read their own catalogue at /api/v1/catalog-roles/.")

    @extend_schema(
        responses=s.RequestableRoleOutput(many=True),
        summary="The roles I may request of an owner I reached with a code (partner admins)",
    )
    def get(self, request: Request, owner: str) -> Response:
        link = api_selectors.partner_link_remembered(partner=self.organisation, owner_slug=owner)
        if link is None:
            raise ProblemException("not-found", str(NO_REMEMBERED_LINK), status_code=404)
        roles = selectors.catalog_roles_grantable(owner=link.organisation)
        return self.paged(request, roles, s.RequestableRoleOutput)


class CloudAccountListView(ApiView):
    roles = READERS

    @extend_schema(responses=s.CloudAccountOutput(many=True), summary="My connected accounts")
    def get(self, request: Request) -> Response:
        accounts = cloud_accounts_of_organisation(organisation=self.organisation)
        return Response(s.CloudAccountOutput(accounts, many=True).data)


class AssignmentListView(ApiView):
    required_scopes: ClassVar[dict[str, str]] = {"GET": Scope.READ, "POST": Scope.REQUEST}
    roles = (ADMIN,)
    organisation_kind = PARTNER
    kind_refusal = "Only partner organisations assign their staff."

    def _delegation(self, delegation_id: str) -> Delegation:
        return partner_selectors.partner_delegation_get(
            organisation=self.organisation, delegation_id=delegation_id
        )

    @extend_schema(responses=s.AssignmentOutput(many=True), summary="Staff assigned")
    def get(self, request: Request, delegation_id: str) -> Response:
        delegation = self._delegation(delegation_id)
        open_ones = [
            a
            for a in partner_selectors.delegation_assignments(delegation=delegation)
            if a.ended_at is None
        ]
        return Response(s.AssignmentOutput(open_ones, many=True).data)

    @extend_schema(request=s.AssignInput, responses={201: s.AssignmentOutput}, summary="Assign")
    def post(self, request: Request, delegation_id: str) -> Response:
        delegation = self._delegation(delegation_id)
        body = s.AssignInput(data=request.data)
        body.is_valid(raise_exception=True)
        staff = partner_selectors.assignable_staff(delegation=delegation)
        user = staff.filter(email__iexact=body.validated_data["user"]).first()
        if user is None:
            raise ProblemException(
                "validation",
                gettext("No unassigned staff member of your organisation has this address."),
                status_code=400,
                errors={"user": [gettext("Not an assignable staff member.")]},
            )
        assignment = partner_services.staff_assign(
            delegation=delegation, user=user, assigned_by=self.person
        )
        return self.created(s.AssignmentOutput(assignment).data)


class StaffAssignmentListView(_PagedListView):
    roles = (ADMIN,)
    organisation_kind = PARTNER
    kind_refusal = "Only partner organisations assign their staff."

    @extend_schema(
        responses=s.StaffAssignmentOutput(many=True),
        summary="Who of my staff is assigned to which delegation (partner admins)",
    )
    def get(self, request: Request) -> Response:
        queryset = partner_selectors.open_assignments_of_partner(partner=self.organisation)
        return self.paged(request, queryset, s.StaffAssignmentOutput)


class AssignmentDetailView(ApiView):
    required_scopes: ClassVar[dict[str, str]] = {"DELETE": Scope.REQUEST}
    roles = (ADMIN,)
    organisation_kind = PARTNER

    @extend_schema(responses={204: None}, summary="Unassign")
    def delete(self, request: Request, delegation_id: str, assignment_id: str) -> Response:
        delegation = partner_selectors.partner_delegation_get(
            organisation=self.organisation, delegation_id=delegation_id
        )
        assignment = partner_selectors.assignment_get_for_partner(
            organisation=self.organisation, delegation=delegation, assignment_id=assignment_id
        )
        partner_services.staff_unassign(assignment=assignment, unassigned_by=self.person)
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- my access and credentials (partner staff) ----------------------------------------------


class _StaffView(ApiView):
    roles = (STAFF,)
    service_accounts_allowed = False
    organisation_kind = PARTNER
    kind_refusal = "Only partner staff have access to use."

    def no_access(self, request: Request, delegation_id: str) -> ProblemException:
        """Why the caller cannot use this delegation: 404 when they never could, else 403."""
        denial = api_selectors.access_denial(
            user=self.person, organisation=self.organisation, delegation_id=delegation_id
        )
        return ProblemException(
            "no-access",
            denial.detail,
            status_code=404 if denial.reason == "none" else 403,
            reason=denial.reason,
            delegation_status=denial.status,
            request_url=request.build_absolute_uri(reverse("delegations:request")),
        )

    def assignment(self, request: Request, delegation_id: str) -> Any:
        try:
            return partner_selectors.my_assignment_get(
                user=self.person, organisation=self.organisation, delegation_id=delegation_id
            )
        except Http404:
            raise self.no_access(request, delegation_id) from None

    def usable_assignment(self, request: Request, delegation_id: str) -> tuple[Any, Any]:
        """The caller's assignment and its access item, refused as the pages refuse when the
        access cannot be used now."""
        assignment = self.assignment(request, delegation_id)
        item = partner_selectors.my_access_item(assignment=assignment)
        if not item.usable:
            raise self.no_access(request, delegation_id)
        return assignment, item


class AccessListView(_StaffView):
    @extend_schema(responses=s.AccessOutput(many=True), summary="My access (partner staff)")
    def get(self, request: Request) -> Response:
        items = partner_selectors.my_access(user=self.person, organisation=self.organisation)
        return Response(s.AccessOutput(items, many=True).data)


class AccessDetailView(_StaffView):
    @extend_schema(responses=s.AccessOutput, summary="One of my accesses")
    def get(self, request: Request, delegation_id: str) -> Response:
        _, item = self.usable_assignment(request, delegation_id)
        return Response(s.AccessOutput(item).data)


def _credentials_budget(user: User) -> None:
    """The same per-person budget as the credentials page: the API is another way in."""
    wait = rate_limit_consume(
        scope="credentials-page", key=str(user.pk), rate=settings.PORTAL_CREDENTIALS_PAGE_RATE
    )
    if wait is not None:
        raise ProblemException(
            "rate-limited",
            ngettext(
                "Too many credentials requested; try again in %(n)d second.",
                "Too many credentials requested; try again in %(n)d seconds.",
                int(wait),
            )
            % {"n": int(wait)},
            status_code=429,
            retry_after=wait,
        )


class ConsoleView(_StaffView):
    """`pap console`: the one-click console sign-in when the portal has
    PORTAL_CONSOLE_FEDERATION on, else the switch-role link. The federation exchange happens
    here, as on the page: the STS secret never leaves the server, the caller gets only the
    single-use login URL (about 30 seconds)."""

    required_scopes: ClassVar[dict[str, str]] = {"POST": Scope.CREDENTIALS}
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"POST": (429,)}

    @extend_schema(request=None, responses={201: s.ConsoleOutput}, summary="Open the console")
    @sensitive_variables("url")
    def post(self, request: Request, delegation_id: str) -> Response:
        assignment, item = self.usable_assignment(request, delegation_id)
        if item.not_named:
            # The cloud would refuse the switch as well: say why and whom to ask instead.
            raise ProblemException(
                "credentials-refused", item.not_named, status_code=403, code="NotNamed"
            )
        if not item.shows_open_console:
            # Federation off, or a named scope that does not trust the broker: the person
            # switches role in the console as their own RAM user, which a narrowed person
            # cannot (the switch would carry no session policy, so they are not granted it).
            if assignment.is_narrowed:
                raise ProblemException(
                    "credentials-refused",
                    gettext(
                        "This access is narrowed for you by a session policy, so you use it "
                        "only through credentials from the portal: switching role as your own "
                        "RAM user cannot carry the policy."
                    ),
                    status_code=403,
                    code="SessionPolicyNarrowed",
                )
            if not item.switch_role_url:
                raise ProblemException(
                    "not-found",
                    gettext("The portal has no console link for this access."),
                    status_code=404,
                )
            data: dict[str, object] = {
                "mode": "switch_role",
                "url": item.switch_role_url,
                "expires_in": None,
            }
            return Response(data, status=status.HTTP_201_CREATED)
        _credentials_budget(self.person)
        url = console_sign_in.console_sign_in_url(
            assignment=assignment,
            user=self.person,
            login_url=request.build_absolute_uri(reverse("delegations:my_access")),
        )
        data = {
            "mode": "federation",
            "url": url,
            "expires_in": console_sign_in.SIGNIN_TOKEN_SECONDS,
        }
        return no_store(Response(data, status=status.HTTP_201_CREATED), secret=True)


class CredentialsView(_StaffView):
    required_scopes: ClassVar[dict[str, str]] = {"POST": Scope.CREDENTIALS}
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"POST": (429,)}

    @extend_schema(
        request=s.CredentialsInput, responses={201: s.CredentialsOutput}, summary="STS credentials"
    )
    @sensitive_variables("issued", "credentials", "data")
    def post(self, request: Request, delegation_id: str) -> Response:
        assignment = self.assignment(request, delegation_id)
        body = s.CredentialsInput(data=request.data)
        body.is_valid(raise_exception=True)
        _credentials_budget(self.person)
        try:
            issued = partner_credentials.credentials_issue(
                assignment=assignment,
                user=self.person,
                # None (no duration sent): the longest allowed.
                duration_seconds=body.validated_data.get("duration_seconds"),
                via=CredentialIssuance.Via.API,
            )
        except partner_credentials.CredentialRefused as refusal:
            if refusal.code in ("NotAssigned", "DelegationNotActive", "NotStaff"):
                raise self.no_access(request, delegation_id) from None
            raise
        credentials = issued.credentials
        data = {
            "access_key_id": credentials.access_key_id,
            "access_key_secret": credentials.access_key_secret,
            "security_token": credentials.security_token,
            "expiration": issued.expiration_text,
            "region_id": issued.region_id,
            "role_arn": issued.delegation.managed_role.role_arn,
            "session_name": issued.issuance.session_name,
        }
        return no_store(Response(data, status=status.HTTP_201_CREATED), secret=True)
