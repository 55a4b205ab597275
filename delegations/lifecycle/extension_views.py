"""Extension pages: the partner admin's "ask for more time" and the owner approvers' decision,
shown on the delegation's page. Thin views over `lifecycle.extensions`.

POST-only with CSRF; the delegation is found through the tenancy-scoped selector (foreign ids
are 404) and the extension must belong to it. Approving needs a recent sign-in (with MFA
when the portal requires it). A refusal or a form error comes back as a message on the
delegation's page; nothing is saved.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from accounts.form_posts import say_changed
from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AuthenticatedHttpRequest,
    is_admin_of,
    organisation_member_required,
    step_up,
)
from core.web import (
    datetime_local_field,
    get_or_404,
    parse_uuid,
    refusal_text,
    report_refusal,
)
from delegations.approvals import selectors as approval_selectors
from delegations.approvals.rules import decision_refusal
from delegations.lifecycle import extensions, selectors
from delegations.lifecycle.extensions import (
    EXTENDABLE_STATUSES,
    extension_approve,
    extension_reject,
    extension_request,
)
from delegations.lifecycle.transitions import REASON_MAX_LENGTH, DelegationConflict
from delegations.models import Delegation, DelegationExtension


class ExtensionRequestForm(forms.Form):
    new_ends_at = datetime_local_field(
        label=gettext_lazy("New end (UTC)"),
    )
    reason = forms.CharField(
        label=gettext_lazy("Why do you need more time?"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": REASON_MAX_LENGTH}),
    )


class ExtensionDecisionForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Reason (needed to reject)"),
        required=False,
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 2, "maxlength": REASON_MAX_LENGTH}),
    )


def extension_panel(request: AuthenticatedHttpRequest, delegation: Delegation) -> dict[str, Any]:
    """What the delegation page shows about extensions, for the person looking."""
    partner_admin = is_admin_of(request, delegation.partner_id)
    owner_admin = is_admin_of(request, delegation.owner_id)
    waiting = (
        DelegationExtension.objects.filter(
            delegation=delegation, status=DelegationExtension.Status.REQUESTED
        )
        .select_related("requested_by")
        .first()
    )
    refusal = None
    approved_by_me = False
    if waiting is not None and owner_admin:
        approvers = approval_selectors.extension_approver_ids(extension=waiting)
        refusal = decision_refusal(
            approval_selectors.rules_in_force(delegation=delegation),
            approval_selectors.candidate(delegation=delegation, user=request.user),
            already_approved=approvers,
        )
        approved_by_me = request.user.pk in approvers
    return {
        "waiting": waiting,
        "history": list(
            DelegationExtension.objects.filter(delegation=delegation)
            .exclude(status=DelegationExtension.Status.REQUESTED)
            .select_related("decided_by")[:5]
        ),
        "can_ask": partner_admin
        and waiting is None
        and delegation.ends_at is not None
        and delegation.status in EXTENDABLE_STATUSES,
        "can_decide": owner_admin and waiting is not None,
        "refusal": refusal,
        # The person's own approval, which they may withdraw while the quorum is not complete.
        "own_approval": approved_by_me,
        "request_form": ExtensionRequestForm(),
        "decision_form": ExtensionDecisionForm(),
    }


def _delegation(request: AuthenticatedHttpRequest, delegation_id: str) -> Delegation:
    return selectors.delegation_get_for_organisation(
        organisation=request.organisation, delegation_id=delegation_id
    )


def _extension(delegation: Delegation, extension_id: str) -> DelegationExtension:
    return get_or_404(
        DelegationExtension.objects.filter(delegation=delegation), pk=parse_uuid(extension_id)
    )


def _back(delegation: Delegation) -> HttpResponse:
    return redirect("delegations:detail", delegation_id=delegation.pk)


def _owner_extension(
    request: AuthenticatedHttpRequest, delegation_id: str, extension_id: str
) -> tuple[Delegation, DelegationExtension]:
    delegation = _delegation(request, delegation_id)
    if delegation.owner_id != request.organisation.pk:
        raise PermissionDenied(_("Only the owner's approvers decide extensions."))
    return delegation, _extension(delegation, extension_id)


def _form_refusal(request: AuthenticatedHttpRequest, form: forms.Form) -> None:
    problems = [str(error) for errors in form.errors.values() for error in errors]
    messages.error(request, " ".join(problems))


@require_POST
@organisation_member_required(roles=[ADMIN])
def delegation_extend(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = _delegation(request, delegation_id)
    if request.organisation.kind != Organisation.Kind.PARTNER:
        raise PermissionDenied(_("Only the partner asks for more time."))
    form = ExtensionRequestForm(request.POST)
    if not form.is_valid():
        _form_refusal(request, form)
        return _back(delegation)
    try:
        extension_request(
            delegation=delegation,
            requested_by=request.user,
            new_ends_at=form.cleaned_data["new_ends_at"],
            reason=form.cleaned_data["reason"],
        )
    except (ValidationError, PermissionDenied) as error:
        report_refusal(request, error)
    else:
        messages.success(request, _("More time asked for. Access ends as planned unless approved."))
    return _back(delegation)


@require_POST
@organisation_member_required(roles=[ADMIN])
def extension_decide(
    request: AuthenticatedHttpRequest, delegation_id: str, extension_id: str
) -> HttpResponse:
    delegation, extension = _owner_extension(request, delegation_id, extension_id)
    form = ExtensionDecisionForm(request.POST)
    if not form.is_valid():
        _form_refusal(request, form)
        return _back(delegation)
    rejecting = "reject" in request.POST
    try:
        if rejecting:
            extension_reject(
                extension=extension, rejected_by=request.user, reason=form.cleaned_data["reason"]
            )
            messages.success(request, _("Extension rejected: access ends as planned."))
            return _back(delegation)
        confirmation = step_up(request)
        if confirmation.response is not None:
            return confirmation.response
        result = extension_approve(
            extension=extension, approved_by=request.user, with_mfa=confirmation.with_mfa
        )
    except (ValidationError, PermissionDenied, DelegationConflict) as error:
        messages.error(request, refusal_text(error))
        return _back(delegation)
    if result.status == DelegationExtension.Status.APPROVED:
        messages.success(request, _("Extension approved: access continues without a gap."))
    elif result.status == DelegationExtension.Status.LAPSED:
        messages.info(request, _("Too late: this access already ended as planned."))
    else:
        messages.success(request, _("Your approval is recorded; more approvals are needed."))
    return _back(delegation)


@require_POST
@organisation_member_required(roles=[ADMIN])
def extension_approval_withdraw(
    request: AuthenticatedHttpRequest, delegation_id: str, extension_id: str
) -> HttpResponse:
    """An approver takes back their own approval of an extension still waiting for its
    quorum. Granting nothing, it needs no recent sign-in (like a rejection)."""
    delegation, extension = _owner_extension(request, delegation_id, extension_id)
    try:
        result = extensions.extension_approval_withdraw(
            extension=extension, withdrawn_by=request.user
        )
    except (ValidationError, PermissionDenied, DelegationConflict) as error:
        report_refusal(request, error)
    else:
        say_changed(
            request,
            result.changed,
            _(
                "Your approval of the extension is withdrawn. It needs another approval before "
                "the access is extended."
            ),
            _("You have no approval on this extension to withdraw; nothing changed."),
        )
    return _back(delegation)
