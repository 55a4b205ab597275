"""Extensions through the API: the partner admin asks for more time on a delegation, both
sides list its extensions, and the owner's approvers approve or reject one (and take back
their own approval while it waits for its quorum).

Thin views over `delegations.lifecycle.extensions` (the same services as the delegation
page): the delegation is found through the tenancy selector (another organisation's id is
404), the extension must belong to it, and deciding goes through the same `decide` scope,
API policy and fresh-MFA token checks as approving a request (`ApiView`).
"""

from typing import Any, ClassVar

from django.utils.translation import gettext, gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import Organisation
from accounts.permissions import ADMIN, AUDITOR
from api import serializers as s
from api.base import ApiView
from api.models import Scope
from api.problems import ProblemException, conflict_unless_changed
from delegations.lifecycle import selectors
from delegations.lifecycle.extensions import (
    extension_approval_withdraw,
    extension_approve,
    extension_reject,
    extension_request,
)
from delegations.models import Delegation, DelegationExtension


class _ExtensionsOfDelegation(ApiView):
    def delegation(self, delegation_id: str) -> Delegation:
        return selectors.delegation_get_for_organisation(
            organisation=self.organisation, delegation_id=delegation_id
        )

    def answer(self, extension: DelegationExtension, *, created: bool = False) -> Response:
        fresh = selectors.extension_get_for_delegation(
            delegation=extension.delegation, extension_id=extension.pk
        )
        data = s.ExtensionOutput(fresh).data
        return self.created(data) if created else Response(data)


class ExtensionListView(_ExtensionsOfDelegation):
    required_scopes: ClassVar[dict[str, str]] = {"GET": Scope.READ, "POST": Scope.REQUEST}
    roles = (ADMIN, AUDITOR)

    @extend_schema(responses=s.ExtensionOutput(many=True), summary="A delegation's extensions")
    def get(self, request: Request, delegation_id: str) -> Response:
        delegation = self.delegation(delegation_id)
        extensions = selectors.extensions_of_delegation(delegation=delegation)
        return Response(s.ExtensionOutput(extensions, many=True).data)

    @extend_schema(
        request=s.ExtensionRequestInput,
        responses={201: s.ExtensionOutput},
        summary="Ask for more time (partner admins)",
    )
    def post(self, request: Request, delegation_id: str) -> Response:
        delegation = self.delegation(delegation_id)
        if self.caller.role != ADMIN or self.organisation.kind != Organisation.Kind.PARTNER:
            raise ProblemException(
                "forbidden",
                gettext("Only the partner's admins ask for more time."),
                status_code=403,
            )
        body = s.ExtensionRequestInput(data=request.data)
        body.is_valid(raise_exception=True)
        extension = extension_request(
            delegation=delegation,
            requested_by=self.person,
            new_ends_at=body.validated_data["new_ends_at"],
            reason=body.validated_data["reason"],
        )
        return self.answer(extension, created=True)


class ExtensionDetailView(_ExtensionsOfDelegation):
    roles = (ADMIN, AUDITOR)

    @extend_schema(responses=s.ExtensionOutput, summary="One extension")
    def get(self, request: Request, delegation_id: str, extension_id: str) -> Response:
        extension = selectors.extension_get_for_delegation(
            delegation=self.delegation(delegation_id), extension_id=extension_id
        )
        return Response(s.ExtensionOutput(extension).data)


class _ExtensionDecision(_ExtensionsOfDelegation):
    """POST …/extensions/<id>/<decision>/: the owner's approvers, like approving a request."""

    required_scopes: ClassVar[dict[str, str]] = {"POST": Scope.DECIDE}
    roles = (ADMIN,)
    organisation_kind = Organisation.Kind.OWNER
    kind_refusal = gettext_lazy("Only the owner's approvers decide extensions.")
    problem_statuses: ClassVar[dict[str, tuple[int, ...]]] = {"POST": (409,)}  # decided meanwhile
    # None: the action takes no body (and never reads one).
    input_serializer: ClassVar[type[s.StrictSerializer] | None]

    def decide(self, extension: DelegationExtension, data: dict[str, Any]) -> DelegationExtension:
        raise NotImplementedError

    def post(self, request: Request, delegation_id: str, extension_id: str) -> Response:
        delegation = self.delegation(delegation_id)
        extension = selectors.extension_get_for_delegation(
            delegation=delegation, extension_id=extension_id
        )
        data: dict[str, Any] = {}
        if self.input_serializer is not None:
            body = self.input_serializer(data=request.data)
            body.is_valid(raise_exception=True)
            data = dict(body.validated_data)
        return self.answer(self.decide(extension, data))


@extend_schema(
    request=s.ExtensionApproveInput,
    responses=s.ExtensionOutput,
    summary="Approve an extension (status stays requested while a quorum needs more)",
)
class ExtensionApproveView(_ExtensionDecision):
    input_serializer = s.ExtensionApproveInput

    def decide(self, extension: DelegationExtension, data: dict[str, Any]) -> DelegationExtension:
        return extension_approve(
            extension=extension,
            approved_by=self.person,
            with_mfa=self.with_mfa,
            note=data.get("note", ""),
        )


@extend_schema(
    request=None,
    responses=s.ExtensionOutput,
    summary="Withdraw my approval of an extension (while it still waits for its quorum)",
)
class ExtensionApprovalWithdrawView(_ExtensionDecision):
    """An approver takes back their own approval of an extension, as on the delegation page,
    under the same checks as approving it."""

    input_serializer = None

    def decide(self, extension: DelegationExtension, data: dict[str, Any]) -> DelegationExtension:
        result = extension_approval_withdraw(extension=extension, withdrawn_by=self.person)
        conflict_unless_changed(
            result,
            gettext("You have no approval on this extension to withdraw; nothing changed."),
        )
        return result


@extend_schema(
    request=s.ExtensionRejectInput, responses=s.ExtensionOutput, summary="Reject an extension"
)
class ExtensionRejectView(_ExtensionDecision):
    input_serializer = s.ExtensionRejectInput

    def decide(self, extension: DelegationExtension, data: dict[str, Any]) -> DelegationExtension:
        return extension_reject(extension=extension, rejected_by=self.person, reason=data["reason"])
