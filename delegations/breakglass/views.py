"""The break-glass page: owners mark emergency roles and review activations; a partner's named
people activate them. Thin views over `breakglass.selectors`, `breakglass.services` and
`breakglass.proposals` (four eyes).

Owner admins change and review, auditors read; on the partner side every member sees the
organisation's activations and the named people activate. Another organisation's ids answer
404; mutations are POST-only with CSRF and ask for a recent sign-in.
"""

from __future__ import annotations

from functools import partial

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET, require_POST

from accounts.form_posts import FormPage
from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AuthenticatedHttpRequest,
    current_organisation_of,
    is_admin,
    organisation_member_required,
    step_up,
)
from core.web import report_refusal
from delegations.breakglass import proposals, selectors, services
from delegations.breakglass.forms import ActivationForm, BreakGlassRoleForm, ReviewForm
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import BreakGlassActivation, BreakGlassRole, RuleProposal
from delegations.proposals import PROPOSED_MESSAGE

_owner = current_organisation_of(
    Organisation.Kind.OWNER,
    refusal=gettext_lazy("Only resource owner organisations mark emergency roles."),
)


_partner = current_organisation_of(
    Organisation.Kind.PARTNER,
    refusal=gettext_lazy("Only partner organisations activate emergency roles."),
)


def _owner_page(
    request: AuthenticatedHttpRequest, *, form: BreakGlassRoleForm | None = None, status: int = 200
) -> HttpResponse:
    owner = request.organisation
    return render(
        request,
        "delegations/breakglass/owner.html",
        {
            "organisation": owner,
            "markings": selectors.break_glass_roles_for_owner(owner=owner),
            "activations": selectors.activations_for(organisation=owner)[:100],
            "form": form or BreakGlassRoleForm(owner=owner),
            "is_admin": is_admin(request),
        },
        status=status,
    )


def _partner_page(
    request: AuthenticatedHttpRequest,
    *,
    forms_by_marking: dict[object, ActivationForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    partner = request.organisation
    forms_by_marking = forms_by_marking or {}
    markings = list(selectors.break_glass_roles_for_person(partner=partner, user=request.user))
    live = selectors.live_activations(markings=markings)
    mine = [
        {
            "marking": marking,
            # While an activation is live, the page shows it instead of a second button.
            "live": live.get(marking.pk),
            "form": forms_by_marking.get(marking.pk)
            or ActivationForm(max_hours=marking.max_hours, prefix=str(marking.pk)),
        }
        for marking in markings
    ]
    return render(
        request,
        "delegations/breakglass/partner.html",
        {
            "organisation": partner,
            "mine": mine,
            "offered": selectors.break_glass_roles_for_partner(partner=partner),
            "activations": selectors.activations_for(organisation=partner)[:100],
        },
        status=status,
    )


@require_GET
@organisation_member_required
def break_glass(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.organisation.is_owner:
        return _owner_page(request)
    return _partner_page(request)


def _back() -> HttpResponse:
    return redirect("delegations:break_glass")


def _partner_redisplay(
    request: AuthenticatedHttpRequest, marking: BreakGlassRole, *, form: ActivationForm
) -> HttpResponse:
    return _partner_page(request, forms_by_marking={marking.pk: form}, status=400)


# The page's actions: the owner's or the partner's page again with a bound form (400), or back.
OWNER_PAGE = FormPage(redisplay=partial(_owner_page, status=400), back=_back)
PARTNER_PAGE = FormPage(redisplay=_partner_redisplay, back=lambda _marking: _back())


def _marked(request: AuthenticatedHttpRequest, marking: BreakGlassRole | RuleProposal) -> None:
    if isinstance(marking, RuleProposal):
        messages.success(request, PROPOSED_MESSAGE)
        return
    messages.success(
        request,
        _("%(role)s is an emergency role for %(partner)s (up to %(hours)d h).")
        % {
            "role": marking.catalog_role.role_name,
            "partner": marking.partner.name,
            "hours": marking.max_hours,
        },
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def break_glass_role_set(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    return OWNER_PAGE.submit(
        request,
        BreakGlassRoleForm(request.POST, owner=owner),
        lambda data, _step_up: proposals.break_glass_role_set_or_propose(
            owner=owner,
            user=request.user,
            catalog_role=data["catalog_role"],
            partner=data["partner"],
            people=list(data["people"]),
            max_hours=data["max_hours"],
        ),
        done=lambda marking: _marked(request, marking),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def break_glass_role_remove(request: AuthenticatedHttpRequest, marking_id: str) -> HttpResponse:
    owner = _owner(request)
    marking = selectors.break_glass_role_get_for_owner(owner=owner, marking_id=marking_id)
    removed = _("The emergency role is no longer offered.")
    return OWNER_PAGE.submit(
        request,
        None,
        lambda _data, _step_up: proposals.break_glass_role_remove_or_propose(
            marking=marking, user=request.user
        ),
        done=lambda result: messages.success(
            request, PROPOSED_MESSAGE if isinstance(result, RuleProposal) else removed
        ),
    )


def _activation_url(activation: BreakGlassActivation) -> str:
    return reverse("delegations:break_glass") + f"#activation-{activation.pk}"


def _activated(
    request: AuthenticatedHttpRequest, marking: BreakGlassRole, activation: BreakGlassActivation
) -> HttpResponse:
    messages.success(
        request,
        _(
            "Break-glass access to %(role)s is being applied now; the owner's admins "
            "have been told and will review it."
        )
        % {"role": marking.catalog_role.role_name},
    )
    return redirect(_activation_url(activation))


@require_POST
@organisation_member_required
def break_glass_activate(request: AuthenticatedHttpRequest, marking_id: str) -> HttpResponse:
    partner = _partner(request)
    marking: BreakGlassRole = selectors.break_glass_role_get_for_partner(
        partner=partner, marking_id=marking_id
    )
    try:
        return PARTNER_PAGE.submit(
            request,
            ActivationForm(request.POST, max_hours=marking.max_hours, prefix=str(marking.pk)),
            lambda data, confirmation: services.break_glass_activate(
                marking=marking,
                activated_by=request.user,
                reason=data["reason"],
                hours=data["hours"],
                with_mfa=confirmation.with_mfa,
            ),
            subject=marking,
            done=lambda activation: _activated(request, marking, activation),
        )
    except services.BreakGlassAlreadyLive as live:
        report_refusal(request, live)
        return redirect(_activation_url(live.activation))


@require_POST
@organisation_member_required(roles=[ADMIN])
def break_glass_review(request: AuthenticatedHttpRequest, activation_id: str) -> HttpResponse:
    owner = _owner(request)
    activation = selectors.activation_get_for_owner(owner=owner, activation_id=activation_id)
    form = ReviewForm(request.POST)
    if not form.is_valid():
        report_refusal(request, ValidationError(_("Keep the note under 2000 characters.")))
        return redirect("delegations:break_glass")
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    note = form.cleaned_data["note"]
    try:
        if "revoke" in request.POST:
            services.break_glass_revoke(activation=activation, reviewed_by=request.user, note=note)
            messages.success(request, _("Revoked and flagged; the access is being removed."))
        else:
            services.break_glass_confirm(activation=activation, reviewed_by=request.user, note=note)
            messages.success(request, _("Confirmed: the access runs until its end."))
    except (ValidationError, PermissionDenied, DelegationConflict) as error:
        report_refusal(request, error)
    return redirect("delegations:break_glass")
