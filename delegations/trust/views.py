"""The trust page `/delegations/<id>/trust/`: whom the delegation's trust policy names.

Owner admins choose the scope, the cap and the ExternalId requirement (step-up); those who may
decide the delegation decide on proposed people (`lifecycle.named_people_views`: the approval
rules are the lifecycle's to apply; approving needs the step-up); partner admins propose and
remove people and
may reveal the ExternalId (audited, never cached); auditors and the other side's admins read.
Another organisation's ids are 404 (selectors); everything that changes is POST with CSRF.
"""

from dataclasses import replace
from functools import partial
from typing import Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.form_posts import FormPage, say_changed
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    is_admin_of,
    organisation_member_required,
)
from core.web import get_or_404, no_store, parse_uuid, report_refusal
from delegations.models import Delegation, TrustedPerson
from delegations.trust import selectors, services
from delegations.trust.forms import (
    BROKER_BY_USE,
    ProposePersonForm,
    RejectPersonForm,
    TrustScopeForm,
)

READERS = (ADMIN, AUDITOR)


def _delegation(request: AuthenticatedHttpRequest, delegation_id: object) -> Delegation:
    """A delegation the current organisation owns or partners in; 404 otherwise."""
    organisation = request.organisation
    return get_or_404(
        Delegation.objects.select_related(
            "owner", "partner", "catalog_role", "managed_role"
        ).filter(Q(owner=organisation) | Q(partner=organisation)),
        pk=parse_uuid(delegation_id),
    )


def _page(
    request: AuthenticatedHttpRequest, delegation: Delegation, *, status: int = 200, **forms: Any
) -> HttpResponse:
    owner_admin = is_admin_of(request, delegation.owner_id)
    partner_admin = is_admin_of(request, delegation.partner_id)
    context = {
        "delegation": delegation,
        "trust": selectors.trust_view(delegation),
        "owner_admin": owner_admin,
        "partner_admin": partner_admin,
        # Approve and Refuse are offered only while the access is asked for or granted.
        "people_decidable": services.trusted_person_decision_problem(delegation, approve=False)
        is None,
        # Whether this owner admin may decide them, or who may (the approval rules).
        "people_deciding": (
            selectors.people_deciding(delegation=delegation, user=request.user)
            if owner_admin
            else None
        ),
        "scope_form": forms.get("scope_form")
        or TrustScopeForm(
            initial={
                "trust_scope": delegation.trust_scope,
                "named_people_cap": delegation.named_people_cap,
                "require_external_id": bool(delegation.external_id_ciphertext),
                "trust_broker": BROKER_BY_USE,
            }
        ),
        "propose_form": forms.get("propose_form") or ProposePersonForm(),
        "reject_form": forms.get("reject_form") or RejectPersonForm(),
        "external_id": forms.get("external_id"),
    }
    return render(request, "delegations/trust.html", context, status=status)


def _back(delegation: Delegation) -> HttpResponse:
    return redirect("delegations:trust", delegation_id=delegation.pk)


@require_GET
@organisation_member_required(roles=READERS)
def trust_page(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    return _page(request, _delegation(request, delegation_id))


# The trust page's actions: the page again with a bound form (400), or back to it.
TRUST = FormPage(redisplay=partial(_page, status=400), back=_back, refused=())


@require_POST
@organisation_member_required(roles=[ADMIN])
def trust_scope_change(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = _delegation(request, delegation_id)
    if delegation.owner_id != request.organisation.pk:
        raise PermissionDenied(_("Only the owner chooses whom the trust policy names."))
    saved = _("Saved. The trust policy follows in the cloud now.")
    return TRUST.submit(
        request,
        TrustScopeForm(request.POST),
        lambda data, confirmation: services.trust_scope_set(
            delegation=delegation,
            changed_by=request.user,
            scope=data["trust_scope"],
            named_people_cap=data["named_people_cap"],
            require_external_id=data["require_external_id"],
            with_mfa=confirmation.with_mfa,
            trust_broker=data["trust_broker"],
        ),
        subject=delegation,
        name="scope_form",
        done=lambda result: say_changed(request, result.changed, saved, _("Nothing changed.")),
    )


def _proposed(
    request: AuthenticatedHttpRequest, delegation: Delegation, person: TrustedPerson
) -> None:
    messages.success(
        request,
        _("%(name)s is proposed; %(owner)s decides.")
        % {"name": person.ram_user_name, "owner": delegation.owner.name},
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def trusted_person_propose(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = _delegation(request, delegation_id)
    if delegation.partner_id != request.organisation.pk:
        raise PermissionDenied(_("Only the partner proposes its people."))
    return TRUST.submit(
        request,
        ProposePersonForm(request.POST),
        lambda data, _step_up: services.trusted_person_propose(
            delegation=delegation, proposed_by=request.user, ram_user_name=data["ram_user_name"]
        ),
        subject=delegation,
        name="propose_form",
        confirm=False,
        done=lambda person: _proposed(request, delegation, person),
    )


def trusted_person_of_request(request: AuthenticatedHttpRequest, person_id: str) -> TrustedPerson:
    """A named person of a delegation the current organisation owns or partners in; 404
    otherwise (also for the owner's decisions on them, `lifecycle.named_people_views`)."""
    return selectors.trusted_person_get_for_organisation(
        organisation=request.organisation, person_id=person_id
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def trusted_person_remove(request: AuthenticatedHttpRequest, person_id: str) -> HttpResponse:
    person = trusted_person_of_request(request, person_id)
    return replace(TRUST, refused=(PermissionDenied,)).submit(
        request,
        None,
        lambda _data, _step_up: services.trusted_person_remove(
            person=person, removed_by=request.user
        ),
        subject=person.delegation,
        confirm=False,
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def external_id_reveal(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    """The ExternalId, shown to the partner admin on a page that is never cached."""
    delegation = _delegation(request, delegation_id)
    if delegation.partner_id != request.organisation.pk:
        raise PermissionDenied(_("Only the partner's admins see the ExternalId."))
    try:
        external_id = services.external_id_reveal(delegation=delegation, shown_to=request.user)
    except ValidationError as error:
        report_refusal(request, error)
        return _back(delegation)
    if external_id is None:
        messages.info(request, _("The owner does not require an ExternalId here."))
        return _back(delegation)
    return no_store(_page(request, delegation, external_id=external_id), secret=True)
