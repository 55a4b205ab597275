"""Partner-side pages: thin views over `partner.selectors` and `partner.services`.

- Partner admins: their staff and RAM users (`staff_overview`), who uses each delegation
  (`delegation_staff`) with assign / unassign / session-policy changes.
- Staff: "My access" (`my_access`), "Get credentials" (`credentials_get`, shown once with
  `Cache-Control: no-store`), their credentials URIs (`uri_keys`), and the URI itself
  (`credentials_uri`, JSON for the aliyun CLI and the SDKs; no session, authorised afresh on
  every fetch, rate-limited).
- Owners (admins and auditors; the partner's admins read too): credentials issued per
  delegation, the residual window and the emergency cut-off.

Other organisations' ids answer 404; a member without the role gets 403.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    STAFF,
    AuthenticatedHttpRequest,
    MfaRule,
    current_organisation_of,
    is_admin_of,
    organisation_member_required,
    organisation_of_kind,
    step_up,
)
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from cloud.errors import CloudError
from core.client_ip import client_ip
from core.i18n import format_time
from core.ratelimit import rate_limit_consume
from core.security_headers import allow_form_action
from core.web import add_form_errors, no_store, report_refusal
from delegations.connection.services import partner_ram_users
from delegations.lifecycle.selectors import delegation_get_for_organisation, role_occupancy
from delegations.models import CredentialIssuance, Delegation, StaffAssignment
from delegations.partner import console_sign_in, selectors, services
from delegations.partner import credentials as credential_services
from delegations.partner.credentials import CredentialRefused
from delegations.partner.forms import (
    AssignForm,
    CredentialsForm,
    CutOffForm,
    SessionPolicyForm,
    StaffLinkForm,
    UriKeyForm,
)

logger = logging.getLogger(__name__)


_partner = current_organisation_of(
    Organisation.Kind.PARTNER, refusal=gettext_lazy("Only partner organisations have staff access.")
)


def _partner_delegation(
    request: AuthenticatedHttpRequest, delegation_id: str
) -> tuple[Organisation, Delegation]:
    """The partner admin's organisation and one of its delegations (404 for another's)."""
    organisation = _partner(request)
    return organisation, selectors.partner_delegation_get(
        organisation=organisation, delegation_id=delegation_id
    )


def _partner_assignment(
    request: AuthenticatedHttpRequest, delegation_id: str, assignment_id: str
) -> tuple[Delegation, StaffAssignment]:
    """A delegation of the partner admin's organisation and one of its staff assignments."""
    organisation, delegation = _partner_delegation(request, delegation_id)
    return delegation, selectors.assignment_get_for_partner(
        organisation=organisation, delegation=delegation, assignment_id=assignment_id
    )


def _my_assignment(
    request: AuthenticatedHttpRequest, delegation_id: str
) -> tuple[Organisation, StaffAssignment]:
    """The staff member's organisation and their own open assignment on the delegation."""
    organisation = _partner(request)
    return organisation, selectors.my_assignment_get(
        user=request.user, organisation=organisation, delegation_id=delegation_id
    )


def _assignment_changed(
    request: AuthenticatedHttpRequest,
    delegation: Delegation,
    assignment: StaffAssignment,
    text: str,
) -> HttpResponse:
    """Say what changed (`text` may name %(user)s and %(role)s), back on the delegation's
    staff page."""
    messages.success(
        request, text % {"user": assignment.user, "role": delegation.catalog_role.role_name}
    )
    return redirect("delegations:delegation_staff", delegation_id=delegation.pk)


def _policy_fields(form: AssignForm | SessionPolicyForm) -> dict[str, Any]:
    """The session-policy choice of an assign or session-policy form, as the services take it."""
    return {
        "session_policy_kind": form.cleaned_data["session_policy_kind"] or "",
        "ecs_instance_ids": form.cleaned_data["ecs_instance_ids"],
        "custom_policy": form.cleaned_data["custom_policy"],
    }


# --- partner admins: staff and RAM users -----------------------------------------------------


def _staff_page(
    request: AuthenticatedHttpRequest, *, link_form: StaffLinkForm | None = None, status: int = 200
) -> HttpResponse:
    organisation = _partner(request)
    summary = selectors.partner_account_summary(organisation=organisation)
    ram_users: list[Any] = []
    ram_users_error = ""
    if summary["account"] is not None:
        try:
            ram_users = partner_ram_users(cloud_account=summary["account"])
        except CloudError as error:
            ram_users_error = gettext(
                "Alibaba Cloud could not list your RAM users right now (%(problem)s)."
            ) % {"problem": error.code or error.message}
    staff = selectors.staff_members(organisation=organisation)
    return render(
        request,
        "delegations/partner/staff.html",
        {
            "organisation": organisation,
            "rows": selectors.staff_overview(organisation=organisation),
            "link_form": link_form or StaffLinkForm(staff=staff),
            "ram_users": ram_users,
            "ram_users_error": ram_users_error,
            "policy_rows": selectors.partner_policies(organisation=organisation),
            "delegations": selectors.active_delegations_of_partner(partner=organisation),
            **summary,
        },
        status=status,
    )


@require_GET
@organisation_member_required(roles=[ADMIN])
def staff_overview(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _staff_page(request)


@require_POST
@organisation_member_required(roles=[ADMIN])
def staff_link(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = _partner(request)
    form = StaffLinkForm(request.POST, staff=selectors.staff_members(organisation=organisation))
    if not form.is_valid():
        return _staff_page(request, link_form=form, status=400)
    try:
        link = services.staff_link_ram_user(
            organisation=organisation,
            user=form.cleaned_data["user"],
            ram_user_name=form.cleaned_data["ram_user_name"],
            linked_by=request.user,
        )
    except ValidationError as error:
        add_form_errors(form, error)
        return _staff_page(request, link_form=form, status=400)
    messages.success(
        request,
        gettext("%(user)s now switches role as the RAM user %(ram_user_name)s.")
        % {"user": link.user, "ram_user_name": link.ram_user_name},
    )
    return redirect("delegations:staff")


@require_POST
@organisation_member_required(roles=[ADMIN])
def staff_unlink(request: AuthenticatedHttpRequest, link_id: str) -> HttpResponse:
    organisation = _partner(request)
    link = selectors.staff_link_get(organisation=organisation, link_id=link_id)
    services.staff_unlink_ram_user(link=link, unlinked_by=request.user)
    messages.success(
        request,
        gettext("%(user)s is no longer linked to %(ram_user_name)s.")
        % {"user": link.user, "ram_user_name": link.ram_user_name},
    )
    return redirect("delegations:staff")


# --- partner admins: who uses one delegation -------------------------------------------------


def _delegation_staff_page(
    request: AuthenticatedHttpRequest,
    delegation: Any,
    *,
    assign_form: AssignForm | None = None,
    policy_forms: dict[str, SessionPolicyForm] | None = None,
    status: int = 200,
) -> HttpResponse:
    assignments = selectors.delegation_assignments(delegation=delegation)
    links = selectors.staff_links_by_user(organisation=delegation.partner)
    forms_by_id = policy_forms or {}
    rows = []
    for assignment in assignments:
        form = forms_by_id.get(str(assignment.pk)) or SessionPolicyForm(
            prefix=f"p-{assignment.pk}",
            initial={
                "session_policy_kind": assignment.session_policy_kind,
                "ecs_instance_ids": " ".join(assignment.ecs_instance_ids or []),
                "custom_policy": assignment.session_policy
                if assignment.session_policy_kind == "custom"
                else "",
            },
        )
        link = links.get(assignment.user_id)
        rows.append(
            {
                "assignment": assignment,
                "form": form,
                "ram_user_name": link.ram_user_name if link else "",
            }
        )
    return render(
        request,
        "delegations/partner/delegation_staff.html",
        {
            "organisation": request.organisation,
            "delegation": delegation,
            "usable": services.delegation_is_usable(delegation),
            "rows": rows,
            "assign_form": assign_form
            or AssignForm(staff=selectors.assignable_staff(delegation=delegation)),
            "issuances": selectors.delegation_issuances(delegation=delegation, limit=50),
        },
        status=status,
    )


@require_GET
@organisation_member_required(roles=[ADMIN])
def delegation_staff(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    _organisation, delegation = _partner_delegation(request, delegation_id)
    return _delegation_staff_page(request, delegation)


@require_POST
@organisation_member_required(roles=[ADMIN])
def staff_assign(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    organisation, delegation = _partner_delegation(request, delegation_id)
    form = AssignForm(request.POST, staff=selectors.staff_members(organisation=organisation))
    if not form.is_valid():
        return _delegation_staff_page(request, delegation, assign_form=form, status=400)
    try:
        assignment = services.staff_assign(
            delegation=delegation,
            user=form.cleaned_data["user"],
            assigned_by=request.user,
            **_policy_fields(form),
        )
    except ValidationError as error:
        add_form_errors(form, error)
        return _delegation_staff_page(request, delegation, assign_form=form, status=400)
    return _assignment_changed(
        request,
        delegation,
        assignment,
        gettext(
            "%(user)s can use %(role)s now. Their RAM user's permission to switch to "
            "it is being applied in your account."
        ),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def staff_unassign(
    request: AuthenticatedHttpRequest, delegation_id: str, assignment_id: str
) -> HttpResponse:
    delegation, assignment = _partner_assignment(request, delegation_id, assignment_id)
    services.staff_unassign(assignment=assignment, unassigned_by=request.user)
    return _assignment_changed(
        request,
        delegation,
        assignment,
        gettext(
            "%(user)s can no longer use %(role)s; their credentials URIs stopped "
            "working and their RAM user's permission is being removed."
        ),
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def staff_session_policy(
    request: AuthenticatedHttpRequest, delegation_id: str, assignment_id: str
) -> HttpResponse:
    delegation, assignment = _partner_assignment(request, delegation_id, assignment_id)
    form = SessionPolicyForm(request.POST, prefix=f"p-{assignment.pk}")
    if form.is_valid():
        try:
            services.staff_assignment_change_policy(
                assignment=assignment,
                changed_by=request.user,
                **_policy_fields(form),
            )
        except ValidationError as error:
            add_form_errors(form, error)
        else:
            return _assignment_changed(
                request, delegation, assignment, gettext("Session policy for %(user)s saved.")
            )
    return _delegation_staff_page(
        request, delegation, policy_forms={str(assignment.pk): form}, status=400
    )


# --- staff: My access ------------------------------------------------------------------------


@require_GET
@organisation_member_required(roles=[STAFF])
def my_access(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = _partner(request)
    items = selectors.my_access(user=request.user, organisation=organisation)
    response = render(
        request,
        "delegations/partner/my_access.html",
        {
            "organisation": organisation,
            "items": items,
            "summary": selectors.partner_account_summary(organisation=organisation),
            "max_seconds": credential_services.portal_max_credential_seconds(),
        },
    )
    if any(item.shows_open_console for item in items):
        # Open console posts here and is answered 303 to the federation sign-in: the browser
        # checks that redirect against this page's form-action, so this page (only) allows
        # the configured sign-in origin too.
        allow_form_action(response, url=console_sign_in.console_signin_base_url())
    return response


def _shows_a_secret(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A staff member's page that shows a secret once (STS credentials, a new credentials-URI
    key): never cached, and the secret stays out of error reports (every frame below the view
    too)."""
    view = require_http_methods(["GET", "POST"])(organisation_member_required(roles=[STAFF])(view))
    return sensitive_variables()(never_cache(view))


def _credentials_page(
    request: AuthenticatedHttpRequest,
    item: Any,
    *,
    form: CredentialsForm,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    return no_store(
        render(
            request,
            "delegations/partner/credentials.html",
            {"organisation": request.organisation, "item": item, "form": form, **extra},
            status=status,
        ),
        secret=True,
    )


@_shows_a_secret
def credentials_get(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    organisation, assignment = _my_assignment(request, delegation_id)
    if request.method == "GET":
        item = selectors.my_access_item(assignment=assignment)
        default = min(item.bounds.maximum, 3600)
        return _credentials_page(
            request, item, form=CredentialsForm(initial={"duration_seconds": default})
        )

    def again(form: CredentialsForm, status: int) -> HttpResponse:
        item = selectors.my_access_item(assignment=assignment)
        return _credentials_page(request, item, form=form, status=status)

    form = CredentialsForm(request.POST)
    if not form.is_valid():
        return again(form, 400)
    # Bad input is answered before anything else (nothing written, nothing called).
    try:
        credential_services.parse_duration(
            form.cleaned_data["duration_seconds"],
            bounds=credential_services.credential_duration_bounds(delegation=assignment.delegation),
        )
    except ValidationError as error:
        add_form_errors(form, error)
        return again(form, 400)
    # Revealing credentials or making a URI key: a recent sign-in, confirmed with the
    # authenticator app when the person has one (AZ-09).
    confirmation = step_up(request, rule=MfaRule.ENROLLED)
    if confirmation.response is not None:
        return confirmation.response
    wait = rate_limit_consume(
        scope="credentials-page",
        key=str(request.user.pk),
        rate=settings.PORTAL_CREDENTIALS_PAGE_RATE,
    )
    if wait is not None:
        form.add_error(
            None,
            gettext("Too many requests; try again in %(seconds)d seconds.")
            % {"seconds": int(wait)},
        )
        response = again(form, 429)
        response["Retry-After"] = str(int(wait))
        return response
    try:
        issued = credential_services.credentials_issue(
            assignment=assignment,
            user=request.user,
            duration_seconds=form.cleaned_data["duration_seconds"],
            via=CredentialIssuance.Via.WEB,
        )
    except ValidationError as error:
        add_form_errors(form, error)
        return again(form, 400)
    except CredentialRefused as refusal:
        form.add_error(None, refusal.message)
        return again(form, refusal.status)
    return no_store(
        render(
            request,
            "delegations/partner/credentials_reveal.html",
            {
                "organisation": organisation,
                "assignment": assignment,
                "issued": issued,
                "formats": credential_services.credential_formats(issued=issued),
                # Shown once, while a secret is copied: the navigation's inbox count is not
                # read on the way to it.
                "inbox": (),
            },
        ),
        secret=True,
    )


# --- staff: one-click console ----------------------------------------------------------------


@sensitive_variables()
@never_cache
@require_POST
@organisation_member_required(roles=[STAFF])
def console_open(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    """Open the cloud console as the person (federation): a 302 to the one-time login URL."""
    _organisation, assignment = _my_assignment(request, delegation_id)
    confirmation = step_up(request, rule=MfaRule.ENROLLED)
    if confirmation.response is not None:
        return confirmation.response
    try:
        url = console_sign_in.console_sign_in_url(
            assignment=assignment,
            user=request.user,
            login_url=request.build_absolute_uri(reverse("delegations:my_access")),
        )
    except (CredentialRefused, ValidationError) as error:
        report_refusal(request, error)
        return redirect("delegations:my_access")
    # 303: the browser follows with a GET. My access (the form's page) allows the sign-in
    # origin in its form-action; no referrer goes along with the single-use URL.
    response = HttpResponseRedirect(url, status=303)
    response["Referrer-Policy"] = "no-referrer"
    return no_store(response, secret=True)


# --- staff: credentials URIs -----------------------------------------------------------------


def _uri_url(request: AuthenticatedHttpRequest, raw_key: str) -> str:
    return request.build_absolute_uri(reverse("delegations:credentials_uri", args=[raw_key]))


def _uri_page(
    request: AuthenticatedHttpRequest,
    assignment: Any,
    *,
    form: UriKeyForm | None = None,
    status: int = 200,
    **extra: Any,
) -> HttpResponse:
    return no_store(
        render(
            request,
            "delegations/partner/uri_keys.html",
            {
                "organisation": request.organisation,
                "item": selectors.my_access_item(assignment=assignment),
                "form": form or UriKeyForm(),
                **extra,
            },
            status=status,
        ),
        secret=True,
    )


@_shows_a_secret
def uri_keys(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    _organisation, assignment = _my_assignment(request, delegation_id)
    if request.method == "GET":
        return _uri_page(request, assignment)
    form = UriKeyForm(request.POST)
    if not form.is_valid():
        return _uri_page(request, assignment, form=form, status=400)
    # Revealing credentials or making a URI key: a recent sign-in, confirmed with the
    # authenticator app when the person has one (AZ-09).
    confirmation = step_up(request, rule=MfaRule.ENROLLED)
    if confirmation.response is not None:
        return confirmation.response
    try:
        _key, raw_key = services.credentials_uri_create(
            assignment=assignment,
            user=request.user,
            label=form.cleaned_data["label"],
            valid_days=form.cleaned_data["valid_days"],
            duration_seconds=credential_services.portal_max_credential_seconds(),
        )
    except ValidationError as error:
        add_form_errors(form, error)
        return _uri_page(request, assignment, form=form, status=400)
    url = _uri_url(request, raw_key)
    return _uri_page(
        request,
        assignment,
        new_url=url,
        uri_formats=credential_services.credentials_uri_formats(
            url=url, delegation=assignment.delegation
        ),
    )


@require_POST
@organisation_member_required(roles=[STAFF])
def uri_key_revoke(
    request: AuthenticatedHttpRequest, delegation_id: str, key_id: str
) -> HttpResponse:
    _organisation, assignment = _my_assignment(request, delegation_id)
    key = selectors.my_uri_key_get(user=request.user, assignment=assignment, key_id=key_id)
    services.credentials_uri_revoke(uri_key=key, revoked_by=request.user)
    messages.success(
        request,
        gettext("The credentials URI …%(token_hint)s no longer works.")
        % {"token_hint": key.token_hint},
    )
    return redirect("delegations:uri_keys", delegation_id=assignment.delegation_id)


def _uri_error(
    code: str, message: str, status: int, *, retry_after: float | None = None
) -> JsonResponse:
    response = JsonResponse({"Code": code, "Message": message}, status=status)
    if retry_after is not None:
        response["Retry-After"] = str(int(retry_after))
    return no_store(response, secret=True)


# The key in the URL and the STS secret stay out of error reports (every frame below it too;
# the URL itself is redacted by core.error_reports.RedactingExceptionReporter and the logs).
@sensitive_variables()
@never_cache
@require_GET
def credentials_uri(request: HttpRequest, key: str) -> HttpResponse:
    """The credentials URI: fresh STS credentials as `{"Code": "Success", "AccessKeyId",
    "AccessKeySecret", "SecurityToken", "Expiration"}`, or `{"Code": <why>, "Message"}` with
    403 (429 when rate-limited). No session: the key in the URL is the authentication, and
    everything it stands for is checked again on every fetch."""
    wait = rate_limit_consume(
        scope="credentials-uri-ip",
        key=client_ip(request) or "unknown",
        rate=settings.PORTAL_CREDENTIALS_URI_IP_RATE,
    )
    if wait is None:
        wait = rate_limit_consume(
            scope="credentials-uri", key=key, rate=settings.PORTAL_CREDENTIALS_URI_RATE
        )
    if wait is not None:
        return _uri_error(
            "Throttling",
            f"Too many requests; try again in {int(wait)} seconds.",
            429,
            retry_after=wait,
        )
    uri_key = selectors.credentials_uri_key_lookup(raw_key=key)
    if uri_key is None:
        with transaction.atomic():
            audit_record(
                action=AuditAction.CREDENTIALS_URI_UNKNOWN,
                metadata={"path_length": len(key)},
                outcome=AuditEvent.Outcome.DENIED,
            )
        return _uri_error(
            "InvalidCredentialsURI",
            "This credentials URI is not valid. Make a new one in the portal (My access).",
            403,
        )
    try:
        issued = credential_services.credentials_issue(
            assignment=uri_key.assignment,
            user=uri_key.user,
            duration_seconds=None,  # the longest allowed, within the key's own duration
            via=CredentialIssuance.Via.URI,
            uri_key=uri_key,
        )
    except CredentialRefused as refusal:
        return _uri_error(refusal.code, refusal.message, refusal.status)
    except ValidationError as error:
        return _uri_error("DelegationEnding", " ".join(error.messages), 403)
    return no_store(
        JsonResponse(credential_services.credentials_uri_body(issued=issued)), secret=True
    )


# --- owners: who took credentials, the residual window, the cut-off --------------------------


def _issuances_page(
    request: AuthenticatedHttpRequest,
    delegation: Any,
    *,
    cut_off_form: CutOffForm | None = None,
    status: int = 200,
) -> HttpResponse:
    organisation = request.organisation
    owner_admin = is_admin_of(request, delegation.owner_id)
    cut_offs = selectors.cut_offs(delegation=delegation, reader=organisation)
    others = selectors.other_active_partners_on_role(delegation=delegation)
    return render(
        request,
        "delegations/partner/issuances.html",
        {
            "organisation": organisation,
            "delegation": delegation,
            "is_owner_side": delegation.owner_id == organisation.pk,
            "owner_admin": owner_admin,
            "issuances": selectors.delegation_issuances(delegation=delegation),
            "window": selectors.residual_window(delegation=delegation),
            "cut_offs": cut_offs,
            # What lifting the cut-off in force would do, said on its button.
            "lift": (
                role_occupancy(managed_role=delegation.managed_role)
                if any(entry.in_force for entry in cut_offs)
                else None
            ),
            "others": others,
            # The cut-off sentence names these lists inside one translatable message.
            "cut_off_policies": format_html_join(
                ", ",
                '<span class="mono">{}</span>',
                ((policy["name"],) for policy in delegation.catalog_role.policies),
            ),
            "other_partner_names": ", ".join(other.partner.name for other in others),
            "cut_off_form": cut_off_form or CutOffForm(),
        },
        status=status,
    )


@require_GET
@organisation_member_required(roles=[ADMIN, AUDITOR])
def delegation_issuances(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = delegation_get_for_organisation(
        organisation=request.organisation, delegation_id=delegation_id
    )
    return _issuances_page(request, delegation)


def _owner_delegation(request: AuthenticatedHttpRequest, delegation_id: str) -> Any:
    organisation = organisation_of_kind(
        request, Organisation.Kind.OWNER, refusal=gettext("Only the owner can cut a role off.")
    )
    delegation = delegation_get_for_organisation(
        organisation=organisation, delegation_id=delegation_id
    )
    if delegation.owner_id != organisation.pk:
        raise PermissionDenied(gettext("Only the owner can cut a role off."))
    return delegation


@require_POST
@organisation_member_required(roles=[ADMIN])
def delegation_cut_off(request: AuthenticatedHttpRequest, delegation_id: str) -> HttpResponse:
    delegation = _owner_delegation(request, delegation_id)
    form = CutOffForm(request.POST)
    if not form.is_valid():
        return _issuances_page(request, delegation, cut_off_form=form, status=400)
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    try:
        cut_off = services.role_cut_off(
            delegation=delegation,
            cut_off_by=request.user,
            reason=form.cleaned_data["reason"],
            with_mfa=confirmation.with_mfa,
        )
    except ValidationError as error:
        add_form_errors(form, error)
        return _issuances_page(request, delegation, cut_off_form=form, status=400)
    except PermissionDenied as error:
        report_refusal(request, error)
        return redirect("delegations:issuances", delegation_id=delegation.pk)
    if getattr(cut_off, "changed", True):
        messages.warning(
            request,
            gettext(
                "Cut off: the policies of %(role)s are being detached now. Credentials "
                "already issued stop working at their next call; this delegation is "
                "being revoked. The role stays without policies until you lift the "
                "cut-off."
            )
            % {"role": delegation.catalog_role.role_name},
        )
    else:
        messages.info(request, gettext("This role is already cut off; nothing changed."))
    return redirect("delegations:issuances", delegation_id=delegation.pk)


@require_POST
@organisation_member_required(roles=[ADMIN])
def cut_off_lift(
    request: AuthenticatedHttpRequest, delegation_id: str, cut_off_id: str
) -> HttpResponse:
    delegation = _owner_delegation(request, delegation_id)
    cut_off = selectors.cut_off_get(delegation=delegation, cut_off_id=cut_off_id)
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    try:
        lift = services.role_cut_off_lift(
            cut_off=cut_off,
            lifted_by=request.user,
            with_mfa=confirmation.with_mfa,
        )
    except (ValidationError, PermissionDenied) as error:
        report_refusal(request, error)
    else:
        messages.success(request, _lift_message(lift, role_name=delegation.managed_role.role_name))
    return redirect("delegations:issuances", delegation_id=delegation.pk)


def _lift_message(lift: services.CutOffLift, *, role_name: str) -> str:
    """Say what the lift does, which depends on who is still on the role."""
    if not lift.changed:
        return gettext("This cut-off was already lifted; nothing changed.")
    occupancy = lift.occupancy
    if occupancy.anyone:
        return gettext(
            "Lifted: the policies of %(role)s are being attached again for %(partners)s."
        ) % {"role": role_name, "partners": ", ".join(occupancy.partners)}
    if occupancy.retirement is not None:
        deleted = format_time(occupancy.retirement.deleted_at)
        return gettext(
            "Lifted. Nothing to re-attach: %(role)s is retired (the portal deleted it on "
            "%(deleted)s once no partner needed it). A new grant creates it again with its "
            "policies."
        ) % {"role": role_name, "deleted": deleted}
    return gettext(
        "Lifted. Nothing to re-attach: no partner is on %(role)s now. Its policies are "
        "attached again when a partner is granted this role."
    ) % {"role": role_name}
