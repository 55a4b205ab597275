"""Runbook pages under `/runbooks/`.

Partner side: the list of runs, the one-time consent (admins), a new run, its live page, cancel
and the export. Owner side: the runs over the owner's accounts (who ran what where), which grants
need approval per run, approve/reject with step-up (admins), stop. Another organisation's run is
a 404 (selectors); everything that changes is POST with CSRF.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    STAFF,
    AuthenticatedHttpRequest,
    current_organisation_of,
    is_admin,
    organisation_member_required,
    step_up,
)
from core.crypto import decrypt_secret
from core.web import add_form_errors, no_store, report_refusal
from runbooks import oos_template as tpl
from runbooks import selectors, services
from runbooks.forms import ConsentForm, DecisionForm, RequirementForm, RunForm
from runbooks.models import RunbookRun
from runbooks.worker import run_parameters

MEMBERS = (ADMIN, STAFF, AUDITOR)


_partner = current_organisation_of(
    Organisation.Kind.PARTNER, refusal=gettext_lazy("Only a partner starts runbooks.")
)


_owner = current_organisation_of(
    Organisation.Kind.OWNER, refusal=gettext_lazy("Only an owner decides runs.")
)


def _run(request: AuthenticatedHttpRequest, run_id: object) -> RunbookRun:
    return selectors.run_get_for_organisation(organisation=request.organisation, run_id=run_id)


@require_GET
@organisation_member_required(roles=MEMBERS)
def run_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = request.organisation
    context: dict[str, Any] = {
        "organisation": organisation,
        "runs": selectors.runs_visible_to(organisation=organisation)[:200],
    }
    if organisation.is_partner:
        context.update(
            consent=selectors.oos_consent_of(partner=organisation),
            consent_form=ConsentForm(),
            partner_account=selectors.partner_cloud_account(partner=organisation),
            grants=selectors.runnable_grants(user=request.user, partner=organisation),
            partner_admin=is_admin(request),
        )
    else:
        context.update(
            waiting=selectors.runs_waiting_for(owner=organisation),
            grants_with_rule=selectors.owner_grants_with_rule(owner=organisation),
            owner_admin=is_admin(request),
        )
    return render(request, "runbooks/list.html", context)


@require_POST
@organisation_member_required(roles=[ADMIN])
def consent_give(request: AuthenticatedHttpRequest) -> HttpResponse:
    partner = _partner(request)
    form = ConsentForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Tick the box to allow runbooks."))
        return redirect("runbooks:list")
    try:
        services.oos_consent_give(partner=partner, given_by=request.user)
    except ValidationError as error:
        report_refusal(request, error)
    else:
        messages.success(
            request, _("Thank you. The portal is setting up OOSServiceRole in your account.")
        )
    return redirect("runbooks:list")


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN, STAFF])
def run_new(request: AuthenticatedHttpRequest) -> HttpResponse:
    partner = _partner(request)
    grants = selectors.runnable_grants(user=request.user, partner=partner)
    status = 200
    if request.method == "POST":
        form = RunForm(request.POST, grants=grants)
        if form.is_valid():
            try:
                run = services.run_start(
                    partner=partner, started_by=request.user, choice=form.choice()
                )
            except ValidationError as error:
                add_form_errors(form, error)
            else:
                if run.status == RunbookRun.Status.AWAITING_APPROVAL:
                    messages.info(request, _("The run waits for the owner's approval."))
                return redirect("runbooks:detail", run_id=run.pk)
        status = 400
    else:
        form = RunForm(grants=grants)
    context = {
        "form": form,
        "grants": grants,
        "consent": selectors.oos_consent_of(partner=partner),
    }
    return no_store(render(request, "runbooks/new.html", context, status=status))


def _detail_context(request: AuthenticatedHttpRequest, run: RunbookRun) -> dict[str, Any]:
    organisation = request.organisation
    owner_side = organisation.pk != run.partner_id
    approval = selectors.pending_approval_for(run=run, owner=organisation) if owner_side else None
    # An owner sees its own accounts, instances and decision: a run may span owners who must
    # not learn of each other.
    owner = organisation if owner_side else None
    return {
        "run": run,
        "owner_side": owner_side,
        "targets": selectors.run_targets(run, owner=owner),
        "instance_ids": selectors.run_instance_ids(run, owner=owner),
        "status_message": selectors.run_status_message(run, owner=owner),
        "approvals": [
            a
            for a in selectors.run_approvals(run)
            if not owner_side or a.owner_id == organisation.pk
        ],
        "pending_approval": approval,
        "can_decide": approval is not None
        and is_admin(request)
        and run.started_by_id != request.user.pk,
        "can_cancel": selectors.may_cancel(run=run, user=request.user, organisation=organisation),
        "owner_accounts": selectors.run_owner_accounts(run, owner=owner),
    }


@require_GET
@organisation_member_required(roles=MEMBERS)
def run_detail(request: AuthenticatedHttpRequest, run_id: str) -> HttpResponse:
    run = _run(request, run_id)
    context = _detail_context(request, run)
    # The command is shown to the run's own side and to the owners it runs on (their machines).
    context["command"] = decrypt_secret(run.command_ciphertext)
    context["decision_form"] = DecisionForm()
    return no_store(render(request, "runbooks/detail.html", context))


@require_GET
@organisation_member_required(roles=MEMBERS)
def run_live(request: AuthenticatedHttpRequest, run_id: str) -> HttpResponse:
    """The live region of the run page (polled by delegation-live.js)."""
    run = _run(request, run_id)
    return no_store(render(request, "runbooks/_live.html", _detail_context(request, run)))


@require_POST
@organisation_member_required(roles=[ADMIN, STAFF])
def run_cancel(request: AuthenticatedHttpRequest, run_id: str) -> HttpResponse:
    run = _run(request, run_id)
    if not selectors.may_cancel(run=run, user=request.user, organisation=request.organisation):
        raise PermissionDenied(_("You cannot stop this run."))
    services.run_cancel(run=run, cancelled_by=request.user)
    messages.success(request, _("The run is being stopped."))
    return redirect("runbooks:detail", run_id=run.pk)


@require_POST
@organisation_member_required(roles=[ADMIN])
def run_decide(request: AuthenticatedHttpRequest, run_id: str, decision: str) -> HttpResponse:
    owner = _owner(request)
    run = _run(request, run_id)
    if decision not in ("approve", "reject"):
        raise Http404
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("The note is too long."))
        return redirect("runbooks:detail", run_id=run.pk)
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    try:
        services.run_decide(
            run=run,
            owner=owner,
            decided_by=request.user,
            approve=decision == "approve",
            with_mfa=confirmation.with_mfa,
            note=form.cleaned_data["note"],
        )
    except (ValidationError, PermissionDenied) as error:
        report_refusal(request, error)
    return redirect("runbooks:detail", run_id=run.pk)


@require_POST
@organisation_member_required(roles=[ADMIN])
def requirement_set(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    owner = _owner(request)
    delegation = selectors.owner_grant_get(owner=owner, delegation_id=delegation_id)
    form = RequirementForm(request.POST)
    form.is_valid()
    required = bool(form.cleaned_data.get("required"))
    services.run_approval_requirement_set(
        delegation=delegation, required=required, set_by=request.user
    )
    messages.success(
        request,
        _("Runs under this grant now need your approval.")
        if required
        else _("Runs under this grant no longer need approval."),
    )
    return redirect("runbooks:list")


def _download(content: str, *, filename: str, content_type: str) -> HttpResponse:
    response = HttpResponse(content, content_type=f"{content_type}; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return no_store(response)


@require_GET
@organisation_member_required(roles=[ADMIN, STAFF])
def export_template(request: AuthenticatedHttpRequest, run_id: str) -> HttpResponse:
    """The exact template the run used, to create it by hand in the OOS console."""
    _partner(request)
    _run(request, run_id)  # another organisation's run is a 404 here too
    return _download(
        tpl.MULTI_ACCOUNT_TEMPLATE,
        filename=f"{tpl.TEMPLATE_NAME}.yaml",
        content_type="application/yaml",
    )


@require_GET
@organisation_member_required(roles=[ADMIN, STAFF])
def export_parameters(request: AuthenticatedHttpRequest, run_id: str) -> HttpResponse:
    """The exact StartExecution parameters of the run (its command included: partner only)."""
    _partner(request)
    run = _run(request, run_id)
    return _download(
        tpl.parameters_json(run_parameters(run)),
        filename=f"runbook-{str(run.pk)[:8]}-parameters.json",
        content_type="application/json",
    )
