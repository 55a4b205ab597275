"""Delegation pages: thin views over `selectors` (reads, tenancy) and `services` (changes).

Mutations are POST-only with CSRF. Another organisation's ids answer 404 (selectors); a
member without the role, or an organisation of the wrong kind, gets 403. Granting and
taking away access (approve, offer, revoke, drift decisions) needs a recent sign-in, with
two-factor authentication when the portal requires it.
"""

import math
from dataclasses import replace
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy, gettext_noop
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.form_posts import FormPage, say_changed
from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    current_organisation_of,
    is_admin,
    is_admin_of,
    organisation_member_required,
    step_up,
)
from core.i18n import format_time
from core.ratelimit import rate_limit_consume
from core.web import add_form_errors, no_store, report_refusal
from delegations.approvals.selectors import approval_progress
from delegations.catalog import partner_links
from delegations.lifecycle import drift, selectors, services, starting
from delegations.lifecycle.extension_views import extension_panel
from delegations.lifecycle.forms import (
    ApproveForm,
    DriftResolveForm,
    OfferForm,
    PartnerCodeForm,
    RejectForm,
    RequestAccessForm,
    RetryForm,
    RevokeForm,
    WithdrawForm,
)
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import (
    ALLOWED_TRANSITIONS,
    FINAL_STATUSES,
    Delegation,
    PartnerLink,
)

Status = Delegation.Status

# Readers: owner admins and auditors, partner admins. Partner staff see their own access
# elsewhere; they get 403 here.
READERS = (ADMIN, AUDITOR)


_owner_organisation = current_organisation_of(
    Organisation.Kind.OWNER, refusal=gettext_lazy("Only resource owner organisations manage this.")
)


_partner_organisation = current_organisation_of(
    Organisation.Kind.PARTNER, refusal=gettext_lazy("Only partner organisations request access.")
)


# --- lists -----------------------------------------------------------------------------------


@require_GET
@organisation_member_required(roles=READERS)
def delegation_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = request.organisation
    counts = selectors.delegation_status_counts(organisation=organisation)
    if organisation.is_partner:
        return render(
            request,
            "delegations/partner_list.html",
            {
                "organisation": organisation,
                "delegations": selectors.delegations_for_partner(partner=organisation),
                "counts": counts,
                "is_admin": is_admin(request),
            },
        )
    status = request.GET.get("status") or ""
    partner_id = request.GET.get("partner") or ""
    role_id = request.GET.get("role") or ""
    delegations = selectors.delegations_for_owner(
        owner=organisation, partner_id=partner_id, catalog_role_id=role_id, status=status
    )
    return render(
        request,
        "delegations/owner_list.html",
        {
            "organisation": organisation,
            "delegations": delegations,
            "counts": counts,
            "statuses": Status.choices,
            "partners": selectors.partners_of_owner(owner=organisation),
            "roles": selectors.catalog_roles_of_owner(owner=organisation),
            "selected": {"status": status, "partner": partner_id, "role": role_id},
            "is_admin": is_admin(request),
        },
    )


# --- one delegation --------------------------------------------------------------------------


def _progress(delegation: Delegation) -> list[dict[str, str]]:
    """The steps shown on the page: done, current, failed or still to come. Labels stay
    English here (they name the steps below); the template translates them."""
    status = delegation.status
    if status == Status.REJECTED:
        return [
            _step(gettext_noop("Requested"), "done"),
            _step(gettext_noop("Rejected"), "current"),
        ]
    if status == Status.WITHDRAWN:
        return [
            _step(gettext_noop("Requested"), "done"),
            _step(gettext_noop("Withdrawn by the partner"), "current"),
        ]
    if (
        status in (Status.REVOKED, Status.EXPIRED)
        and delegation.activated_at is None
        and delegation.ended_at is not None
        and delegation.ended_at == delegation.revoke_requested_at
    ):
        # Ended while scheduled: it never reached the cloud (see `services._REVOKE_SCHEDULED`).
        return [
            _step(gettext_noop("Approved"), "done"),
            _step(gettext_noop("Ended before its start"), "current"),
        ]
    if status == Status.EXPIRED and delegation.decided_at is None:
        return [
            _step(gettext_noop("Requested"), "done"),
            _step(gettext_noop("Expired before a decision"), "current"),
        ]
    first = (
        [_step(gettext_noop("Offered"), "done")]
        if delegation.origin == Delegation.Origin.OFFER
        else [_step(gettext_noop("Requested"), "done"), _step(gettext_noop("Approved"), "todo")]
    )
    if status == Status.SCHEDULED:
        first = [*first, _step(gettext_noop("Scheduled"), "todo")]
    apply_steps = [
        *first,
        _step(gettext_noop("Applying"), "todo"),
        _step(gettext_noop("Active"), "todo"),
    ]
    ending = delegation.end_cause or status in (Status.REVOKING, Status.REVOKED, Status.EXPIRED)
    end_label = (
        gettext_noop("Expired")
        if delegation.end_cause == Delegation.EndCause.EXPIRED
        else gettext_noop("Revoked")
    )
    end_steps = (
        [_step(gettext_noop("Revoking"), "todo"), _step(end_label, "todo")] if ending else []
    )
    steps = apply_steps + end_steps
    labels = [s["label"] for s in steps]

    def mark_through(label: str, state: str) -> None:
        index = labels.index(label)
        for i in range(index):
            steps[i]["state"] = "done"
        steps[index]["state"] = state

    if status == Status.REQUESTED:
        mark_through("Requested", "current")
    elif status == Status.APPROVED:
        mark_through("Approved" if "Approved" in labels else "Offered", "current")
    elif status == Status.SCHEDULED:
        mark_through("Scheduled", "current")
    elif status == Status.APPLYING:
        mark_through("Applying", "current")
    elif status == Status.ACTIVE:
        mark_through("Active", "current")
    elif status == Status.REVOKING:
        mark_through("Revoking", "current")
    elif status in (Status.REVOKED, Status.EXPIRED):
        mark_through(end_label, "current")
    elif status == Status.FAILED:
        label = "Revoking" if delegation.failed_phase == "revoking" else "Applying"
        mark_through(label, "failed")
    return steps


def _step(label: str, state: str) -> dict[str, str]:
    return {"label": label, "state": state}


def _live_context(request: AuthenticatedHttpRequest, delegation: Delegation) -> dict[str, Any]:
    return {
        "delegation": delegation,
        "history": selectors.delegation_history(
            delegation=delegation, organisation=request.organisation
        ),
        "steps": _progress(delegation),
        "calls": selectors.delegation_cloud_calls(delegation=delegation),
        "is_final": delegation.status in FINAL_STATUSES,
        "can_retry": delegation.status == Status.FAILED
        and is_admin_of(request, delegation.owner_id),
        "can_decide": delegation.status == Status.REQUESTED,
        "can_withdraw": delegation.status == Status.REQUESTED
        and is_admin_of(request, delegation.partner_id),
        "can_revoke": (
            delegation.status == Status.SCHEDULED
            or Status.REVOKING in ALLOWED_TRANSITIONS[delegation.status]
        )
        and not (
            delegation.status == Status.FAILED
            and delegation.failed_phase == Delegation.Phase.REVOKING
        ),
        "retry_form": RetryForm(initial={"version": delegation.version}),
    }


def _detail_context(
    request: AuthenticatedHttpRequest, delegation: Delegation, **forms: Any
) -> dict[str, Any]:
    organisation = request.organisation
    owner_admin = is_admin_of(request, delegation.owner_id)
    context = _live_context(request, delegation)
    context.update(
        {
            "organisation": organisation,
            "is_owner_side": delegation.owner_id == organisation.pk,
            "owner_admin": owner_admin,
            "approve_form": forms.get("approve_form")
            or ApproveForm(initial={"version": delegation.version}),
            "reject_form": forms.get("reject_form")
            or RejectForm(initial={"version": delegation.version}),
            "revoke_form": forms.get("revoke_form") or RevokeForm(),
            "partner_admin": is_admin_of(request, delegation.partner_id),
            "withdraw_form": forms.get("withdraw_form")
            or WithdrawForm(initial={"version": delegation.version}),
            "extensions": extension_panel(request, delegation),
            # Approver groups and quorum: who may decide, and the approvals so far.
            "approval": approval_progress(delegation=delegation, user=request.user)
            if owner_admin and delegation.status == Status.REQUESTED
            else None,
        }
    )
    return context


@require_GET
@organisation_member_required(roles=READERS)
def delegation_detail(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = selectors.delegation_get_for_organisation(
        organisation=request.organisation, delegation_id=delegation_id
    )
    return render(request, "delegations/detail.html", _detail_context(request, delegation))


@require_GET
@organisation_member_required(roles=READERS)
def delegation_status(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    """The live part of the detail page, polled by static/js/delegation-live.js."""
    delegation = selectors.delegation_get_for_organisation(
        organisation=request.organisation, delegation_id=delegation_id
    )
    return no_store(render(request, "delegations/_live.html", _live_context(request, delegation)))


def _owner_delegation(request: AuthenticatedHttpRequest, delegation_id: str) -> Delegation:
    owner = _owner_organisation(request)
    delegation = selectors.delegation_get_for_organisation(
        organisation=owner, delegation_id=delegation_id
    )
    return delegation


def _redisplay(
    request: AuthenticatedHttpRequest, delegation: Delegation, **forms: Any
) -> HttpResponse:
    return render(
        request,
        "delegations/detail.html",
        _detail_context(request, delegation, **forms),
        status=400,
    )


def _detail_redirect(delegation: Delegation) -> HttpResponse:
    return redirect("delegations:detail", delegation_id=delegation.pk)


# The detail page's actions: shown again with a bound form (400), or back to the page.
DETAIL = FormPage(
    redisplay=_redisplay,
    back=_detail_redirect,
    refused=(DelegationConflict, PermissionDenied),
)


def _approved(request: AuthenticatedHttpRequest, result: Delegation) -> None:
    if result.changed and result.status == Status.REQUESTED:
        messages.success(
            request,
            gettext(
                "Your approval is recorded. This role needs more approvals from other "
                "approvers before the access is granted."
            ),
        )
    elif result.changed and result.status == Status.SCHEDULED:
        messages.success(
            request,
            gettext(
                "Approved. The access starts %(when)s; it is applied in the cloud shortly before."
            )
            % {"when": format_time(result.starts_at)},
        )
    elif result.changed:
        messages.success(
            request, gettext("Approved. The access is being applied in the cloud now.")
        )
    else:
        messages.info(request, gettext("This request was already approved; nothing changed."))


@require_POST
@organisation_member_required(roles=[ADMIN])
def delegation_approve(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = _owner_delegation(request, delegation_id)
    return DETAIL.submit(
        request,
        ApproveForm(request.POST),
        lambda data, confirmation: services.delegation_approve(
            delegation=delegation,
            approved_by=request.user,
            with_mfa=confirmation.with_mfa,
            note=data["note"],
            expected_version=data["version"],
            trust_scope=data["trust_scope"] or None,
            ends_at=data["ends_at"],
        ),
        subject=delegation,
        name="approve_form",
        malformed="version",
        done=lambda result: _approved(request, result),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def delegation_approval_withdraw(
    request: AuthenticatedHttpRequest, delegation_id: str
) -> HttpResponse:
    """An approver takes back their own approval of a request still waiting for its quorum.
    Granting nothing, it needs no recent sign-in (like a rejection)."""
    delegation = _owner_delegation(request, delegation_id)
    withdrawn = gettext(
        "Your approval is withdrawn. The request needs another approval before the access is "
        "granted."
    )
    unchanged = gettext("You have no approval on this request to withdraw; nothing changed.")
    return replace(DETAIL, refused=(ValidationError, *DETAIL.refused)).submit(
        request,
        None,
        lambda _data, _step_up: services.delegation_approval_withdraw(
            delegation=delegation, withdrawn_by=request.user
        ),
        subject=delegation,
        confirm=False,
        done=lambda result: say_changed(request, result.changed, withdrawn, unchanged),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def delegation_reject(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = _owner_delegation(request, delegation_id)
    rejected = gettext("Rejected. The partner can see your reason.")
    unchanged = gettext("This request was already rejected; nothing changed.")
    return DETAIL.submit(
        request,
        RejectForm(request.POST),
        lambda data, _step_up: services.delegation_reject(
            delegation=delegation,
            rejected_by=request.user,
            reason=data["reason"],
            expected_version=data["version"],
        ),
        subject=delegation,
        name="reject_form",
        confirm=False,
        malformed="version",
        done=lambda result: say_changed(request, result.changed, rejected, unchanged),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def delegation_revoke(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = _owner_delegation(request, delegation_id)
    revoking = gettext("Revoking. The partner is being removed from the role now.")
    unchanged = gettext("This access was already revoked; nothing changed.")
    return DETAIL.submit(
        request,
        RevokeForm(request.POST),
        lambda data, _step_up: services.delegation_revoke(
            delegation=delegation, revoked_by=request.user, reason=data["reason"]
        ),
        subject=delegation,
        name="revoke_form",
        done=lambda result: say_changed(request, result.changed, revoking, unchanged),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def delegation_retry(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = _owner_delegation(request, delegation_id)
    return replace(DETAIL, refused=(ValidationError, *DETAIL.refused)).submit(
        request,
        RetryForm(request.POST),
        lambda data, _step_up: services.delegation_retry(
            delegation=delegation, retried_by=request.user, expected_version=data["version"]
        ),
        subject=delegation,
        confirm=False,
        malformed="any",
        done=lambda _: messages.success(request, gettext("Trying again.")),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def delegation_withdraw(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    """A partner admin takes back their own pending request."""
    partner = _partner_organisation(request)
    delegation = selectors.delegation_get_for_organisation(
        organisation=partner, delegation_id=delegation_id
    )
    if delegation.partner_id != partner.pk:
        raise PermissionDenied(gettext("Only the partner that asked can withdraw a request."))
    withdrawn = gettext("Withdrawn. %(owner)s can no longer approve it.") % {
        "owner": delegation.owner.name
    }
    unchanged = gettext("This request was already withdrawn; nothing changed.")
    return DETAIL.submit(
        request,
        WithdrawForm(request.POST),
        lambda data, _step_up: starting.delegation_withdraw(
            delegation=delegation, withdrawn_by=request.user, expected_version=data["version"]
        ),
        subject=delegation,
        name="withdraw_form",
        confirm=False,
        malformed="version",
        done=lambda result: say_changed(request, result.changed, withdrawn, unchanged),
    )


# --- starting a delegation -------------------------------------------------------------------


# After a partner link code was accepted, the page keeps the link's id, never the code.
PARTNER_LINK_SESSION_KEY = "delegations.request.partner_link_id"


def _code_page(
    request: AuthenticatedHttpRequest,
    partner: Organisation,
    form: PartnerCodeForm,
    status: int,
    *,
    then: str,
) -> HttpResponse:
    """The partner link code form; once a code is accepted the person goes on to `then`."""
    return no_store(
        render(
            request,
            "delegations/request_code.html",
            {"organisation": partner, "code_form": form, "code_action": reverse(then)},
            status=status,
        )
    )


def _redeem_partner_link_code(
    request: AuthenticatedHttpRequest, partner: Organisation, *, then: str
) -> HttpResponse:
    """Check a posted partner link code (rate limited per partner organisation); accepted,
    the session keeps the link's id and the person goes on to `then` (the request page, or
    the fleet request page)."""
    form = PartnerCodeForm(request.POST)
    if form.is_valid():
        # Per partner organisation, before any code is looked at: guessing codes costs the
        # same whoever of its people tries, and a refused guess adds nothing to the ledger.
        wait = rate_limit_consume(
            scope="partner-link-code",
            key=str(partner.pk),
            rate=settings.PORTAL_PARTNER_LINK_CODE_RATE,
        )
        if wait is not None:
            form.add_error(
                None,
                gettext("Too many partner link codes tried; try again in %(minutes)d minutes.")
                % {"minutes": math.ceil(wait / 60)},
            )
            response = _code_page(request, partner, form, status=429, then=then)
            response["Retry-After"] = str(int(wait))
            return response
        try:
            link = partner_links.partner_link_redeem(
                code=form.cleaned_data["partner_link_code"], partner=partner, user=request.user
            )
        except partner_links.PartnerLinkRefused as refusal:
            form.add_error("partner_link_code", str(refusal))
        else:
            request.session[PARTNER_LINK_SESSION_KEY] = str(link.pk)
            return redirect(then)
    return _code_page(request, partner, form, status=400, then=then)


def partner_link_entered(
    request: AuthenticatedHttpRequest, partner: Organisation, *, then: str
) -> PartnerLink | HttpResponse:
    """The partner link step of every request page (`then`: one delegation's or a fleet's):
    the link whose code this session entered, or the page to answer instead: the code form,
    a posted code checked, or a code forgotten. A link that stopped working since (revoked,
    expired, used up) is said so and asked for again."""
    if request.method == "POST" and "partner_link_code" in request.POST:
        return _redeem_partner_link_code(request, partner, then=then)
    if request.method == "POST" and "forget_code" in request.POST:
        request.session.pop(PARTNER_LINK_SESSION_KEY, None)
        return redirect(then)
    link = partner_links.partner_link_for_partner(
        link_id=request.session.get(PARTNER_LINK_SESSION_KEY), partner=partner
    )
    if link is not None:
        return link
    if request.session.pop(PARTNER_LINK_SESSION_KEY, None) is not None:
        messages.info(
            request,
            gettext("The partner link code you entered no longer works. Enter a new one."),
        )
    return _code_page(
        request,
        partner,
        PartnerCodeForm(),
        status=400 if request.method == "POST" else 200,
        then=then,
    )


@sensitive_variables()
@sensitive_post_parameters("partner_link_code")
@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def delegation_request(request: AuthenticatedHttpRequest) -> HttpResponse:
    """A partner admin enters an owner's partner link code, then picks a role and says why and
    how long. The code is posted (never in a URL) and checked before anything of the owner is
    shown; once accepted, the session keeps the link's id for the request form."""
    partner = _partner_organisation(request)
    link = partner_link_entered(request, partner, then="delegations:request")
    if isinstance(link, HttpResponse):
        return link
    owner = link.organisation
    roles = selectors.catalog_roles_grantable(owner=owner)
    accounts = selectors.owner_accounts_if_several(owner=owner)
    if request.method == "POST":
        form = RequestAccessForm(request.POST, roles=roles, accounts=accounts)
        if form.is_valid():
            try:
                delegation = starting.delegation_request_submit(
                    partner=partner,
                    requested_by=request.user,
                    partner_link=link,
                    catalog_role=form.cleaned_data["catalog_role"],
                    reason=form.cleaned_data["reason"],
                    ends_at=form.cleaned_data["ends_at"],
                    starts_at=form.cleaned_data["starts_at"],
                    cloud_account=form.cleaned_data["cloud_account"],
                )
            except ValidationError as error:
                add_form_errors(form, error)
            else:
                if delegation.changed:
                    messages.success(
                        request,
                        gettext("Approved automatically by %(owner)s's rule.")
                        % {"owner": owner.name},
                    )
                messages.success(
                    request, gettext("Request sent to %(owner)s.") % {"owner": owner.name}
                )
                return redirect("delegations:detail", delegation_id=delegation.pk)
        status = 400
    else:
        form = RequestAccessForm(roles=roles, accounts=accounts)
        status = 200
    return render(
        request,
        "delegations/request.html",
        {
            "organisation": partner,
            "owner": owner,
            "form": form,
            "roles": roles,
            "several_accounts": accounts.exists(),
        },
        status=status,
    )


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def delegation_offer(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner_organisation(request)
    partners = selectors.partners_offerable(owner=owner)
    roles = selectors.catalog_roles_grantable(owner=owner)
    accounts = selectors.owner_accounts_if_several(owner=owner)
    if request.method == "POST":
        form = OfferForm(request.POST, partners=partners, roles=roles, accounts=accounts)
        if form.is_valid():
            confirmation = step_up(request)
            if confirmation.response is not None:
                return confirmation.response
            try:
                delegation = starting.delegation_offer(
                    owner=owner,
                    offered_by=request.user,
                    partner=form.cleaned_data["partner"],
                    catalog_role=form.cleaned_data["catalog_role"],
                    reason=form.cleaned_data["reason"],
                    ends_at=form.cleaned_data["ends_at"],
                    with_mfa=confirmation.with_mfa,
                    trust_scope=form.cleaned_data["trust_scope"] or None,
                    cloud_account=form.cleaned_data["cloud_account"],
                )
            except ValidationError as error:
                add_form_errors(form, error)
            except PermissionDenied as error:
                form.add_error(None, str(error))
            else:
                messages.success(
                    request,
                    gettext("Offered to %(partner)s. It is being applied now.")
                    % {"partner": delegation.partner.name},
                )
                return redirect("delegations:detail", delegation_id=delegation.pk)
        status = 400
    else:
        form = OfferForm(partners=partners, roles=roles, accounts=accounts)
        status = 200
    return render(
        request,
        "delegations/offer.html",
        {
            "organisation": owner,
            "form": form,
            "has_partners": partners.exists(),
            "several_accounts": accounts.exists(),
        },
        status=status,
    )


# --- roles and drift -------------------------------------------------------------------------


@require_GET
@organisation_member_required(roles=READERS)
def role_overview(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner_organisation(request)
    comparisons = selectors.role_comparisons_for_owner(owner=owner)
    return render(
        request,
        "delegations/roles.html",
        {
            "organisation": owner,
            "comparisons": comparisons,
            "counts": selectors.role_comparison_counts(comparisons),
            "is_admin": is_admin(request),
        },
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def drift_resolve(request: AuthenticatedHttpRequest, finding_id: str) -> HttpResponse:
    owner = _owner_organisation(request)
    finding = selectors.drift_finding_get_for_owner(owner=owner, finding_id=finding_id)
    form = DriftResolveForm(request.POST)
    if not form.is_valid():
        raise BadRequest("Choose repair or accept.")
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    try:
        drift.drift_resolve(
            finding=finding,
            resolved_by=request.user,
            resolution=form.cleaned_data["resolution"],
        )
    except (ValidationError, DelegationConflict, PermissionDenied) as error:
        report_refusal(request, error)
    else:
        if form.cleaned_data["resolution"] == "repair":
            messages.success(
                request, gettext("Repairing: the portal puts the role back as it should be.")
            )
        else:
            messages.success(
                request, gettext("Accepted: the portal now follows the cloud for this.")
            )
    return redirect(reverse("delegations:roles") + f"#role-{finding.managed_role_id}")
