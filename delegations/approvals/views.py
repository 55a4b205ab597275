"""The approval-rules pages: approver groups and each catalogue role's quorum. Thin views
over `approvals.selectors` and `approvals.services`.

Owner organisations only; admins change, auditors read; another organisation's ids answer
404; mutations are POST-only with CSRF and ask for a recent sign-in (who may grant access is
itself access).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from functools import partial
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.form_posts import FormPage
from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    current_organisation_of,
    is_admin,
    organisation_member_required,
    step_up,
)
from core.web import get_or_404, parse_uuid, report_refusal
from delegations.approvals import four_eyes, selectors
from delegations.approvals.forms import ApproverGroupForm, QuorumForm
from delegations.catalog.selectors import catalog_role_get_for_owner
from delegations.models import ApproverGroup, CatalogRole, RuleProposal

PROPOSED = gettext_lazy(
    "Proposed. Four eyes is on: a second admin must approve it on this page before it takes effect."
)


_owner = current_organisation_of(
    Organisation.Kind.OWNER,
    refusal=gettext_lazy("Only resource owner organisations keep approval rules."),
)


def _page(
    request: AuthenticatedHttpRequest,
    *,
    group_form: ApproverGroupForm | None = None,
    quorum_forms: dict[object, QuorumForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    owner = _owner(request)
    rules = selectors.approval_rules_by_role(owner=owner)
    quorum_forms = quorum_forms or {}
    roles = []
    for role in selectors.catalog_role_choices(owner=owner):
        rule = rules.get(role.pk)
        required = rule.approvals_required if rule else 1
        roles.append(
            {
                "role": role,
                "approvals_required": required,
                "auto_approve_max_hours": rule.auto_approve_max_hours if rule else None,
                "form": quorum_forms.get(role.pk)
                or QuorumForm(
                    initial={
                        "approvals_required": required,
                        "auto_approve_max_hours": rule.auto_approve_max_hours if rule else None,
                    },
                    prefix=str(role.pk),
                ),
            }
        )
    return render(
        request,
        "delegations/approvals/index.html",
        {
            "organisation": owner,
            "groups": selectors.approver_groups_for_owner(owner=owner),
            "roles": roles,
            "group_form": group_form or ApproverGroupForm(owner=owner),
            "is_admin": is_admin(request),
            "four_eyes": four_eyes.four_eyes_on(owner=owner),
            "proposals": selectors.rule_proposals_waiting(owner=owner, reader=request.user),
        },
        status=status,
    )


@require_GET
@organisation_member_required(roles=(ADMIN, AUDITOR))
def approval_rules(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _page(request)


def _back(_subject: object = None) -> HttpResponse:
    """The rules page, whichever group or role an action was about."""
    return redirect("delegations:approval_rules")


# The rules page's actions: the page again with a bound form (400), or back to it.
RULES = FormPage(redisplay=partial(_page, status=400), back=_back, refused=())


def _said(request: AuthenticatedHttpRequest, result: object, applied: Callable[[Any], str]) -> None:
    """Four eyes on, a change is a proposal that waits for a second admin; off, it applied
    and `applied(result)` says how."""
    messages.success(request, PROPOSED if isinstance(result, RuleProposal) else applied(result))


def _group_arguments(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "name": data["name"],
        "members": list(data["members"]),
        "catalog_roles": list(data["catalog_roles"]),
        "partner_allowances": list(data["partner_allowances"]),
    }


@require_POST
@organisation_member_required(roles=[ADMIN])
def approver_group_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    return RULES.submit(
        request,
        ApproverGroupForm(request.POST, owner=owner),
        lambda data, _step_up: four_eyes.approver_group_create_or_propose(
            owner=owner, user=request.user, **_group_arguments(data)
        ),
        name="group_form",
        done=lambda result: _said(
            request,
            result,
            lambda group: _("%(name)s now decides the requests it covers.") % {"name": group.name},
        ),
    )


def _group_edit_page(
    request: AuthenticatedHttpRequest, group: ApproverGroup, *, form: ApproverGroupForm, status: int
) -> HttpResponse:
    return render(
        request,
        "delegations/approvals/group_edit.html",
        {"organisation": group.organisation, "group": group, "form": form},
        status=status,
    )


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def approver_group_edit(request: AuthenticatedHttpRequest, group_id: str) -> HttpResponse:
    owner = _owner(request)
    group = selectors.approver_group_get_for_owner(owner=owner, group_id=group_id)
    if request.method != "POST":
        form = ApproverGroupForm(owner=owner, initial=_group_initial(group))
        return _group_edit_page(request, group, form=form, status=200)
    return replace(RULES, redisplay=partial(_group_edit_page, status=400)).submit(
        request,
        ApproverGroupForm(request.POST, owner=owner),
        lambda data, _step_up: four_eyes.approver_group_update_or_propose(
            group=group, user=request.user, **_group_arguments(data)
        ),
        subject=group,
        done=lambda result: _said(request, result, lambda _group: _("Approver group saved.")),
    )


def _group_initial(group: ApproverGroup) -> dict[str, Any]:
    return {
        "name": group.name,
        "members": list(group.members.all()),
        "catalog_roles": list(group.catalog_roles.all()),
        "partner_allowances": list(group.partner_allowances.all()),
    }


@require_POST
@organisation_member_required(roles=[ADMIN])
def approver_group_delete(request: AuthenticatedHttpRequest, group_id: str) -> HttpResponse:
    owner = _owner(request)
    group = selectors.approver_group_get_for_owner(owner=owner, group_id=group_id)
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    try:
        proposal = four_eyes.approver_group_delete_or_propose(group=group, user=request.user)
    except ValidationError as error:
        report_refusal(request, error)
        return redirect("delegations:approval_rules")
    if proposal is not None:
        messages.success(request, PROPOSED)
    else:
        messages.success(
            request,
            _("%(name)s is deleted; the requests it covered follow the remaining rules.")
            % {"name": group.name},
        )
    return redirect("delegations:approval_rules")


def _quorum_redisplay(
    request: AuthenticatedHttpRequest, role: CatalogRole, *, form: QuorumForm
) -> HttpResponse:
    return _page(request, quorum_forms={role.pk: form}, status=400)


@require_POST
@organisation_member_required(roles=[ADMIN])
def quorum_set(request: AuthenticatedHttpRequest, catalog_role_id: str) -> HttpResponse:
    owner = _owner(request)
    role = catalog_role_get_for_owner(owner=owner, catalog_role_id=catalog_role_id)
    return replace(RULES, redisplay=_quorum_redisplay).submit(
        request,
        QuorumForm(request.POST, prefix=str(role.pk)),
        lambda data, _step_up: four_eyes.approval_rule_set_or_propose(
            catalog_role=role,
            approvals_required=data["approvals_required"],
            auto_approve_max_hours=data["auto_approve_max_hours"],
            user=request.user,
        ),
        subject=role,
        done=lambda result: _said(
            request,
            result,
            lambda rule: (
                ngettext(
                    "Requests for %(role)s now need %(n)d approval.",
                    "Requests for %(role)s now need %(n)d approvals.",
                    rule.approvals_required,
                )
                % {"role": role.role_name, "n": rule.approvals_required}
            ),
        ),
    )


# --- four eyes --------------------------------------------------------------------------------


@require_POST
@organisation_member_required(roles=[ADMIN])
def four_eyes_set(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    on = request.POST.get("four_eyes") == "on"
    result = four_eyes.four_eyes_set(owner=owner, user=request.user, on=on)
    if isinstance(result, RuleProposal):
        messages.success(request, _("Proposed: a second admin must approve turning four eyes off."))
    elif on:
        messages.success(request, _("Four eyes is on: rule changes now need a second admin."))
    else:
        messages.success(request, _("Four eyes is off."))
    return redirect("delegations:approval_rules")


@require_POST
@organisation_member_required(roles=[ADMIN])
def rule_proposal_decide(request: AuthenticatedHttpRequest, proposal_id: str) -> HttpResponse:
    owner = _owner(request)
    proposal = get_or_404(
        RuleProposal.objects.filter(organisation=owner), pk=parse_uuid(proposal_id)
    )
    try:
        if "reject" in request.POST:
            four_eyes.rule_proposal_reject(proposal=proposal, rejected_by=request.user)
            messages.success(request, _("Proposal rejected; nothing changed."))
        else:
            confirmation = step_up(request)
            if confirmation.response is not None:
                return confirmation.response
            four_eyes.rule_proposal_approve(proposal=proposal, approved_by=request.user)
            messages.success(request, _("Approved: the change has taken effect."))
    except (ValidationError, PermissionDenied) as error:
        report_refusal(request, error)
    return redirect("delegations:approval_rules")
