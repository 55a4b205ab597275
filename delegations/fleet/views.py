"""Fleet grant pages: thin views over `fleet.selectors` (reads, tenancy: another
organisation's fleet is 404) and `fleet.services` (changes). Mutations are POST-only with
CSRF; deciding, offering and revoking need a recent sign-in (step-up), as for a delegation.
The fleet page follows its accounts live through static/js/delegation-live.js (no inline
script: the CSP forbids it).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.contrib import messages
from django.core.exceptions import BadRequest, PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.form_posts import FormPage, say_changed
from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    is_admin,
    is_admin_of,
    organisation_member_required,
    organisation_of_kind,
    step_up,
)
from core.web import add_form_errors, no_store
from delegations.connection.selectors import cloud_accounts_of_organisation
from delegations.fleet import selectors, services
from delegations.fleet.forms import (
    FleetApproveForm,
    FleetOfferForm,
    FleetRejectForm,
    FleetRequestForm,
    FleetRevokeForm,
)
from delegations.lifecycle import selectors as lifecycle_selectors
from delegations.lifecycle.views import partner_link_entered
from delegations.models import HOME_FIRST, CloudAccount, FleetGrant

READERS = (ADMIN, AUDITOR)
Conflict = services.FleetConflict


def _detail_redirect(fleet: FleetGrant) -> HttpResponse:
    return redirect("delegations:fleet_detail", fleet_id=fleet.pk)


@require_GET
@organisation_member_required(roles=READERS)
def fleet_list(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = request.organisation
    fleets = selectors.fleets_for_organisation(organisation=organisation)
    rows = [
        (fleet, selectors.fleet_summary(fleet=fleet, rows=selectors.fleet_accounts(fleet=fleet)))
        for fleet in fleets
    ]
    return render(
        request,
        "delegations/fleet/list.html",
        {"organisation": organisation, "rows": rows, "is_admin": is_admin(request)},
    )


def _live_context(request: AuthenticatedHttpRequest, fleet: FleetGrant) -> dict[str, Any]:
    rows = selectors.fleet_accounts(fleet=fleet)
    summary = selectors.fleet_summary(fleet=fleet, rows=rows)
    return {
        "fleet": fleet,
        "rows": rows,
        "summary": summary,
        "owner_admin": is_admin_of(request, fleet.owner_id),
    }


@require_GET
@organisation_member_required(roles=READERS)
def fleet_detail(request: AuthenticatedHttpRequest, fleet_id: str) -> HttpResponse:
    fleet = selectors.fleet_get_for_organisation(
        organisation=request.organisation, fleet_id=fleet_id
    )
    return render(request, "delegations/fleet/detail.html", _detail_context(request, fleet))


def _detail_context(
    request: AuthenticatedHttpRequest, fleet: FleetGrant, **forms: Any
) -> dict[str, Any]:
    context = _live_context(request, fleet)
    context.update(
        {
            "organisation": request.organisation,
            "is_owner_side": fleet.owner_id == request.organisation.pk,
            # Approver groups and quorum: who may decide, and the approvals so far.
            "approval": selectors.fleet_approval_progress(fleet=fleet, user=request.user)
            if context["owner_admin"]
            else None,
            "approve_form": forms.get("approve_form")
            or FleetApproveForm(initial={"version": fleet.version}),
            "reject_form": forms.get("reject_form")
            or FleetRejectForm(initial={"version": fleet.version}),
            "revoke_form": forms.get("revoke_form") or FleetRevokeForm(),
        }
    )
    return context


@require_GET
@organisation_member_required(roles=READERS)
def fleet_status(request: AuthenticatedHttpRequest, fleet_id: str) -> HttpResponse:
    """The live part of the fleet page (every account's state), polled once a second."""
    fleet = selectors.fleet_get_for_organisation(
        organisation=request.organisation, fleet_id=fleet_id
    )
    return no_store(render(request, "delegations/fleet/_live.html", _live_context(request, fleet)))


def _owner_fleet(request: AuthenticatedHttpRequest, fleet_id: str) -> FleetGrant:
    owner = organisation_of_kind(
        request, Organisation.Kind.OWNER, refusal=_("Only resource owners decide fleet grants.")
    )
    return selectors.fleet_get_for_organisation(organisation=owner, fleet_id=fleet_id)


def _redisplay(request: AuthenticatedHttpRequest, fleet: FleetGrant, **forms: Any) -> HttpResponse:
    return render(
        request,
        "delegations/fleet/detail.html",
        _detail_context(request, fleet, **forms),
        status=400,
    )


# The fleet page's actions: shown again with a bound form (400), or back to the page; the
# per-account actions and "continue" tell a ValidationError as a refusal (they have no form
# of their own on the page).
DETAIL = FormPage(redisplay=_redisplay, back=_detail_redirect, refused=(Conflict, PermissionDenied))
ACCOUNT = replace(DETAIL, refused=(ValidationError, Conflict, PermissionDenied))


def _approved(request: AuthenticatedHttpRequest, result: FleetGrant) -> None:
    if not result.changed:
        messages.info(request, _("This fleet was already approved; nothing changed."))
    elif result.decided_at is None:
        messages.success(
            request, _("Your approval is recorded. This role needs more approvals from others.")
        )
    else:
        messages.success(
            request,
            _("Approved. The accounts are being applied, %(n)d at a time.")
            % {"n": result.concurrency},
        )


@require_POST
@organisation_member_required(roles=[ADMIN])
def fleet_approve(request: AuthenticatedHttpRequest, fleet_id: str) -> HttpResponse:
    fleet = _owner_fleet(request, fleet_id)
    return DETAIL.submit(
        request,
        FleetApproveForm(request.POST),
        lambda data, confirmation: services.fleet_approve(
            fleet=fleet,
            approved_by=request.user,
            with_mfa=confirmation.with_mfa,
            note=data["note"],
            expected_version=data["version"],
        ),
        subject=fleet,
        name="approve_form",
        malformed="any",
        done=lambda result: _approved(request, result),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def fleet_approval_withdraw(request: AuthenticatedHttpRequest, fleet_id: str) -> HttpResponse:
    """An approver takes back their own approval of a fleet still waiting for its quorum.
    Granting nothing, it needs no recent sign-in (like a rejection)."""
    fleet = _owner_fleet(request, fleet_id)
    withdrawn = _(
        "Your approval of the fleet is withdrawn from every account. It needs another approval "
        "before the access is granted."
    )
    unchanged = _("You have no approval on this fleet to withdraw; nothing changed.")
    return ACCOUNT.submit(
        request,
        None,
        lambda _data, _confirmation: services.fleet_approval_withdraw(
            fleet=fleet, withdrawn_by=request.user
        ),
        subject=fleet,
        confirm=False,
        done=lambda result: say_changed(request, result.changed, withdrawn, unchanged),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def fleet_reject(request: AuthenticatedHttpRequest, fleet_id: str) -> HttpResponse:
    fleet = _owner_fleet(request, fleet_id)
    return DETAIL.submit(
        request,
        FleetRejectForm(request.POST),
        lambda data, _confirmation: services.fleet_reject(
            fleet=fleet,
            rejected_by=request.user,
            reason=data["reason"],
            expected_version=data["version"],
        ),
        subject=fleet,
        name="reject_form",
        confirm=False,
        malformed="version",
        done=lambda _result: messages.success(
            request, _("Rejected. The partner can see your reason.")
        ),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def fleet_revoke(request: AuthenticatedHttpRequest, fleet_id: str) -> HttpResponse:
    fleet = _owner_fleet(request, fleet_id)
    return DETAIL.submit(
        request,
        FleetRevokeForm(request.POST),
        lambda data, _confirmation: services.fleet_revoke(
            fleet=fleet, revoked_by=request.user, reason=data["reason"]
        ),
        subject=fleet,
        name="revoke_form",
        done=lambda _result: messages.success(
            request, _("Revoking in every account of the fleet.")
        ),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def fleet_continue(request: AuthenticatedHttpRequest, fleet_id: str) -> HttpResponse:
    fleet = _owner_fleet(request, fleet_id)
    continuing = _("Continuing with the accounts not attempted.")
    return ACCOUNT.submit(
        request,
        None,
        lambda _data, _confirmation: services.fleet_continue(
            fleet=fleet, continued_by=request.user
        ),
        subject=fleet,
        confirm=False,
        done=lambda _result: messages.success(request, continuing),
    )


def _fleet_account(fleet: FleetGrant, delegation_id: str) -> Any:
    for row in selectors.fleet_accounts(fleet=fleet):
        if str(row.delegation.pk) == str(delegation_id):
            return row.delegation
    raise BadRequest("Not an account of this fleet.")


@require_POST
@organisation_member_required(roles=[ADMIN])
def fleet_account_retry(
    request: AuthenticatedHttpRequest, fleet_id: str, delegation_id: str
) -> HttpResponse:
    fleet = _owner_fleet(request, fleet_id)
    delegation = _fleet_account(fleet, delegation_id)
    return ACCOUNT.submit(
        request,
        None,
        lambda _data, _confirmation: services.fleet_account_retry(
            fleet=fleet, delegation=delegation, retried_by=request.user
        ),
        subject=fleet,
        confirm=False,
        done=lambda _result: messages.success(request, _("Trying this account again.")),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def fleet_account_revoke(
    request: AuthenticatedHttpRequest, fleet_id: str, delegation_id: str
) -> HttpResponse:
    fleet = _owner_fleet(request, fleet_id)
    delegation = _fleet_account(fleet, delegation_id)
    revoking = _("Revoking this account; the others stay.")
    return ACCOUNT.submit(
        request,
        FleetRevokeForm(request.POST),
        lambda data, _confirmation: services.fleet_account_revoke(
            fleet=fleet, delegation=delegation, revoked_by=request.user, reason=data["reason"]
        ),
        subject=fleet,
        name="revoke_form",
        done=lambda _result: messages.success(request, revoking),
    )


# --- asking and offering ---------------------------------------------------------------------


def _offered_accounts(owner: Organisation) -> Any:
    ids = [account.pk for account in cloud_accounts_of_organisation(organisation=owner)]
    return CloudAccount.objects.filter(pk__in=ids).order_by(*HOME_FIRST)


@sensitive_variables()
@sensitive_post_parameters("partner_link_code")
@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def fleet_request(request: AuthenticatedHttpRequest) -> HttpResponse:
    """A partner admin enters the owner's partner link code (as for one delegation), then
    picks a role, the owner's accounts and regions, and the rate control."""
    partner = organisation_of_kind(
        request, Organisation.Kind.PARTNER, refusal=_("Only partner organisations request access.")
    )
    link = partner_link_entered(request, partner, then="delegations:fleet_request")
    if isinstance(link, HttpResponse):
        return link
    owner = link.organisation
    roles = lifecycle_selectors.catalog_roles_grantable(owner=owner)
    accounts = _offered_accounts(owner)
    form = FleetRequestForm(
        request.POST if request.method == "POST" else None, roles=roles, accounts=accounts
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            fleet = services.fleet_request(
                partner=partner,
                requested_by=request.user,
                partner_link=link,
                catalog_role=data["catalog_role"],
                accounts=list(data["accounts"]),
                regions=data["regions"],
                reason=data["reason"],
                ends_at=data["ends_at"],
                concurrency=data["concurrency"],
                max_errors=data["max_errors"],
            )
        except ValidationError as error:
            add_form_errors(form, error)
        else:
            messages.success(request, _("Fleet request sent to %(owner)s.") % {"owner": owner})
            return _detail_redirect(fleet)
    return render(
        request,
        "delegations/fleet/request.html",
        {"organisation": partner, "owner": owner, "form": form, "offering": False},
        status=400 if request.method == "POST" else 200,
    )


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def fleet_offer(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = organisation_of_kind(
        request, Organisation.Kind.OWNER, refusal=_("Only resource owners offer access.")
    )
    form = FleetOfferForm(
        request.POST if request.method == "POST" else None,
        partners=lifecycle_selectors.partners_offerable(owner=owner),
        roles=lifecycle_selectors.catalog_roles_grantable(owner=owner),
        accounts=_offered_accounts(owner),
    )
    if request.method == "POST" and form.is_valid():
        confirmation = step_up(request)
        if confirmation.response is not None:
            return confirmation.response
        data = form.cleaned_data
        try:
            fleet = services.fleet_offer(
                owner=owner,
                offered_by=request.user,
                partner=data["partner"],
                catalog_role=data["catalog_role"],
                accounts=list(data["accounts"]),
                regions=data["regions"],
                reason=data["reason"],
                ends_at=data["ends_at"],
                with_mfa=confirmation.with_mfa,
                concurrency=data["concurrency"],
                max_errors=data["max_errors"],
            )
        except ValidationError as error:
            add_form_errors(form, error)
        except PermissionDenied as error:
            form.add_error(None, str(error))
        else:
            messages.success(request, _("Offered. The accounts are being applied now."))
            return _detail_redirect(fleet)
    return render(
        request,
        "delegations/fleet/request.html",
        {"organisation": owner, "owner": owner, "form": form, "offering": True},
        status=400 if request.method == "POST" else 200,
    )
