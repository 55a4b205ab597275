"""Pages for the organisation's cloud account (owners and partners) and the owner's catalogue
and allow-list: thin views over `catalog_selectors` and the services.

Mutations are POST-only with CSRF; admins only (auditors read); another organisation's ids
answer 404. Connecting or replacing a key needs a recent sign-in (with MFA when the portal
requires it) *before* the form is filled in: a POST carrying a secret is never suspended into
the session to be replayed after a sign-in, it is refused and the key must be entered again.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

# allauth's own mechanism for replaying a POST after reauthentication (no public wrapper);
# used only for requests that carry no secret.
from allauth.account.internal.flows.reauthentication import suspend_request
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, PermissionDenied, ValidationError
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Organisation
from accounts.permissions import (
    ADMIN,
    AUDITOR,
    organisation_member_required,
    recent_authentications,
)
from cloud.errors import CloudError
from core.crypto import SecretDecryptionError
from delegations.catalog import selectors
from delegations.catalog import services as catalog_services
from delegations.catalog.forms import (
    COMMON_REGIONS,
    CatalogRoleEditForm,
    CatalogRoleForm,
    CloudAccountConnectForm,
    CloudAccountReplaceForm,
    PartnerAllowanceForm,
)
from delegations.catalog.services import PolicyKey
from delegations.connection import services as account_services
from delegations.models import FINAL_STATUSES, CatalogRole, CloudAccount

READERS = (ADMIN, AUDITOR)


# --- access helpers --------------------------------------------------------------------------


def _organisation(request: HttpRequest) -> Organisation:
    return request.organisation  # type: ignore[attr-defined, no-any-return]


def _owner(request: HttpRequest) -> Organisation:
    organisation = _organisation(request)
    if not organisation.is_owner:
        raise PermissionDenied("Only resource owner organisations keep a catalogue.")
    return organisation


def _is_admin(request: HttpRequest) -> bool:
    return request.membership.role == ADMIN  # type: ignore[attr-defined, no-any-return]


def _recently_confirmed(request: HttpRequest) -> bool:
    """A sign-in or identity confirmation within ACCOUNT_REAUTHENTICATION_TIMEOUT, by MFA when
    the portal requires it (the same rule as approving access)."""
    recent = recent_authentications(request)
    if settings.PORTAL_REQUIRE_MFA:
        return any(r.get("method") == "mfa" for r in recent)
    return bool(recent)


def _confirm_page(request: HttpRequest) -> str:
    if settings.PORTAL_REQUIRE_MFA:
        if not is_mfa_enabled(request.user):
            raise PermissionDenied("This needs two-factor authentication; set it up first.")
        return reverse("mfa_reauthenticate")
    return reverse("account_reauthenticate")


def _confirm_then_show(request: HttpRequest, page: str) -> HttpResponse:
    """Send the person to confirm who they are, then back to `page` (a GET: nothing is kept)."""
    return redirect(f"{_confirm_page(request)}?{urlencode({'next': page})}")


def _confirm_then_replay(request: HttpRequest) -> HttpResponse:
    """For POSTs without a secret: allauth keeps the request and replays it afterwards."""
    return suspend_request(request, _confirm_page(request))


def _no_store(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "no-store"
    return response


def _add_errors(form: Form, error: ValidationError) -> None:
    if hasattr(error, "error_dict"):
        for field, messages_ in error.message_dict.items():
            form.add_error(field if field in form.fields else None, messages_)
    else:
        form.add_error(None, error.messages)


def _report(request: HttpRequest, error: Exception) -> None:
    if isinstance(error, ValidationError):
        messages.error(request, " ".join(error.messages))
    else:
        messages.error(request, str(error))


# --- the cloud account -----------------------------------------------------------------------


@require_GET
@organisation_member_required(roles=READERS)
def cloud_account(request: HttpRequest) -> HttpResponse:
    organisation = _organisation(request)
    account = selectors.cloud_account_of_organisation(organisation=organisation)
    ram_users: list[Any] | None = None
    ram_users_error = ""
    if account is not None and organisation.is_partner:
        try:
            ram_users = account_services.partner_ram_users(cloud_account=account)
        except CloudError as error:
            ram_users_error = (
                f"The RAM users could not be listed: {error.code or ''} {error.message}"
            )
        except SecretDecryptionError as error:
            ram_users_error = str(error)
    return render(
        request,
        "delegations/connection/index.html",
        {
            "organisation": organisation,
            "account": account,
            "is_admin": _is_admin(request),
            "ram_users": ram_users,
            "ram_users_error": ram_users_error,
        },
    )


def _key_form_page(
    request: HttpRequest,
    *,
    form: Form,
    replacing: bool,
    status: int = 200,
) -> HttpResponse:
    return _no_store(
        render(
            request,
            "delegations/connection/form.html",
            {
                "organisation": _organisation(request),
                "form": form,
                "replacing": replacing,
                "account": selectors.cloud_account_of_organisation(
                    organisation=_organisation(request)
                ),
                "regions": COMMON_REGIONS,
            },
            status=status,
        )
    )


def _refuse_stale_confirmation(request: HttpRequest, page: str) -> HttpResponse:
    messages.error(
        request,
        "Please confirm it is you again: the confirmation expired, so the key was not saved.",
    )
    return _confirm_then_show(request, page)


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def cloud_account_connect(request: HttpRequest) -> HttpResponse:
    organisation = _organisation(request)
    page = reverse("delegations:cloud_account_connect")
    if selectors.cloud_account_of_organisation(organisation=organisation) is not None:
        messages.info(request, "Your cloud account is connected; you can replace its key here.")
        return redirect("delegations:cloud_account_replace")
    if not _recently_confirmed(request):
        if request.method == "POST":
            return _refuse_stale_confirmation(request, page)
        return _confirm_then_show(request, page)
    if request.method == "GET":
        form = CloudAccountConnectForm(
            initial={
                "account_uid": organisation.account_uid,
                "alias": organisation.enterprise_alias,
            }
        )
        return _key_form_page(request, form=form, replacing=False)
    form = CloudAccountConnectForm(request.POST)
    if form.is_valid():
        try:
            account_services.cloud_account_connect(
                organisation=organisation,
                connected_by=request.user,  # type: ignore[arg-type]
                **form.cleaned_data,
            )
        except ValidationError as error:
            _add_errors(form, error)
        except ImproperlyConfigured as error:
            form.add_error(None, str(error))
            return _key_form_page(request, form=form, replacing=False, status=503)
        else:
            messages.success(request, "Connected. The key works and is stored encrypted.")
            return redirect("delegations:cloud_account")
    return _key_form_page(request, form=form, replacing=False, status=400)


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def cloud_account_replace(request: HttpRequest) -> HttpResponse:
    organisation = _organisation(request)
    page = reverse("delegations:cloud_account_replace")
    account = selectors.cloud_account_of_organisation(organisation=organisation)
    if account is None:
        messages.info(request, "No cloud account is connected yet.")
        return redirect("delegations:cloud_account_connect")
    if not _recently_confirmed(request):
        if request.method == "POST":
            return _refuse_stale_confirmation(request, page)
        return _confirm_then_show(request, page)
    if request.method == "GET":
        form = CloudAccountReplaceForm(initial={"alias": account.alias, "region": account.region})
        return _key_form_page(request, form=form, replacing=True)
    form = CloudAccountReplaceForm(request.POST)
    if form.is_valid():
        try:
            account_services.cloud_account_replace_key(
                cloud_account=account,
                replaced_by=request.user,  # type: ignore[arg-type]
                **form.cleaned_data,
            )
        except ValidationError as error:
            _add_errors(form, error)
        except ImproperlyConfigured as error:
            form.add_error(None, str(error))
            return _key_form_page(request, form=form, replacing=True, status=503)
        else:
            messages.success(request, "Key replaced. The new key works and is stored encrypted.")
            return redirect("delegations:cloud_account")
    return _key_form_page(request, form=form, replacing=True, status=400)


@require_POST
@organisation_member_required(roles=[ADMIN])
def cloud_account_verify(request: HttpRequest) -> HttpResponse:
    account = selectors.cloud_account_of_organisation(organisation=_organisation(request))
    if account is None:
        messages.info(request, "No cloud account is connected.")
        return redirect("delegations:cloud_account")
    try:
        account_services.cloud_account_verify(
            cloud_account=account,
            checked_by=request.user,  # type: ignore[arg-type]
        )
    except (ValidationError, SecretDecryptionError, ImproperlyConfigured) as error:
        _report(request, error)
    else:
        messages.success(request, "The stored key still works.")
    return redirect("delegations:cloud_account")


@require_POST
@organisation_member_required(roles=[ADMIN])
def cloud_account_disconnect(request: HttpRequest) -> HttpResponse:
    account = selectors.cloud_account_of_organisation(organisation=_organisation(request))
    if account is None:
        messages.info(request, "No cloud account is connected.")
        return redirect("delegations:cloud_account")
    if not _recently_confirmed(request):
        return _confirm_then_replay(request)
    try:
        account_services.cloud_account_disconnect(
            cloud_account=account,
            disconnected_by=request.user,  # type: ignore[arg-type]
        )
    except ValidationError as error:
        _report(request, error)
    else:
        messages.success(
            request,
            f"Disconnected. The portal forgot the key {account.access_key_id}; it still exists "
            "in Alibaba Cloud: disable or delete it in the RAM console.",
        )
    return redirect("delegations:cloud_account")


# --- the catalogue and the allow-list --------------------------------------------------------


def _catalog_page(
    request: HttpRequest, *, allowance_form: PartnerAllowanceForm | None = None, status: int = 200
) -> HttpResponse:
    owner = _owner(request)
    return render(
        request,
        "delegations/catalog/index.html",
        {
            "organisation": owner,
            "account": selectors.cloud_account_of_organisation(organisation=owner),
            "roles": catalog_services.catalog_roles_with_high_privilege_reasons(
                selectors.catalog_roles_for_owner(owner=owner)
            ),
            "allowances": selectors.partner_allowances_for_owner(owner=owner),
            "allowance_form": allowance_form or PartnerAllowanceForm(),
            "is_admin": _is_admin(request),
        },
        status=status,
    )


@require_GET
@organisation_member_required(roles=READERS)
def catalog(request: HttpRequest) -> HttpResponse:
    return _catalog_page(request)


def _high_privilege_gate(
    request: HttpRequest,
    *,
    form: CatalogRoleForm,
    account: CloudAccount,
    keys: list[PolicyKey],
    role: CatalogRole | None = None,
) -> tuple[list[str], HttpResponse | None]:
    """The high-privilege policies among `keys`, and the answer to give instead of saving when
    the cloud cannot say, the owner has not ticked the box, or a fresh confirmation is due."""
    try:
        high_privilege = catalog_services.catalog_policies_high_privilege(
            cloud_account=account, policy_keys=keys
        )
    except CloudError as error:
        form.add_error(None, _cloud_message(error))
        return [], _role_form_page(request, form=form, status=400, role=role)
    if high_privilege and not form.cleaned_data["high_privilege_confirmed"]:
        form.add_error(
            "high_privilege_confirmed",
            f"{', '.join(high_privilege)}: RAM administration or full access to the account. "
            "Tick the box to confirm a partner may have that.",
        )
        return high_privilege, _role_form_page(
            request, form=form, high_privilege=high_privilege, status=400, role=role
        )
    if high_privilege and not _recently_confirmed(request):
        return high_privilege, _confirm_then_replay(request)
    return high_privilege, None


def _role_form_page(
    request: HttpRequest,
    *,
    form: CatalogRoleForm | None,
    policies_error: str = "",
    high_privilege: list[str] | None = None,
    status: int = 200,
    role: CatalogRole | None = None,
) -> HttpResponse:
    return render(
        request,
        "delegations/catalog/role_form.html",
        {
            "organisation": _organisation(request),
            "role": role,
            "form": form,
            "policies_error": policies_error,
            "high_privilege": high_privilege or [],
            "chosen": form.chosen_values() if form is not None else set(),
        },
        status=status,
    )


def _cloud_message(error: CloudError) -> str:
    reference = f" (request id {error.request_id})" if error.request_id else ""
    return (
        "The account's policies could not be listed: "
        f"{error.code or error.category.value}: {error.message}{reference}. "
        + ("Try again in a moment." if error.transient else "Check the connected key's rights.")
    )


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def catalog_role_create(request: HttpRequest) -> HttpResponse:
    owner = _owner(request)
    account = selectors.cloud_account_of_organisation(organisation=owner)
    if account is None:
        messages.info(request, "Connect your Alibaba Cloud account before adding roles.")
        return redirect("delegations:cloud_account")
    try:
        available = catalog_services.cloud_account_policies(
            cloud_account=account, refresh=request.method == "GET" and "refresh" in request.GET
        )
    except CloudError as error:
        return _role_form_page(request, form=None, policies_error=_cloud_message(error), status=503)
    except SecretDecryptionError as error:
        return _role_form_page(request, form=None, policies_error=str(error), status=503)
    if request.method == "GET":
        return _role_form_page(request, form=CatalogRoleForm(available=available))

    form = CatalogRoleForm(request.POST, available=available)
    if not form.is_valid():
        return _role_form_page(request, form=form, status=400)
    keys = form.policy_keys()
    try:
        # Every rule that needs no cloud call first: a refused name never costs a cloud read.
        catalog_services.catalog_role_validate(
            owner=owner,
            role_name=form.cleaned_data["role_name"],
            description=form.cleaned_data["description"],
            policy_keys=keys,
            max_session_duration=form.cleaned_data["max_session_duration"],
        )
    except ValidationError as error:
        _add_errors(form, error)
        return _role_form_page(request, form=form, status=400)
    high_privilege, stop = _high_privilege_gate(request, form=form, account=account, keys=keys)
    if stop is not None:
        return stop
    confirmed = form.cleaned_data["high_privilege_confirmed"]
    try:
        role = catalog_services.catalog_role_create(
            owner=owner,
            created_by=request.user,  # type: ignore[arg-type]
            role_name=form.cleaned_data["role_name"],
            description=form.cleaned_data["description"],
            policy_keys=keys,
            max_session_duration=form.cleaned_data["max_session_duration"],
            keep_role_when_empty=form.cleaned_data["keep_role_when_empty"],
            high_privilege_confirmed=confirmed,
        )
    except ValidationError as error:
        _add_errors(form, error)
        return _role_form_page(request, form=form, high_privilege=high_privilege, status=400)
    messages.success(request, f"{role.role_name} is in the catalogue; partners can ask for it.")
    return redirect("delegations:catalog")


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def catalog_role_edit(request: HttpRequest, catalog_role_id: str) -> HttpResponse:
    """Edit a role's description, policies, maximum session and unused-role setting, with the
    same rules (and the same high-privilege confirmation) as adding one."""
    owner = _owner(request)
    role = selectors.catalog_role_get_for_owner(owner=owner, catalog_role_id=catalog_role_id)
    if not role.cloud_account.is_active:
        messages.error(request, "Connect the role's cloud account again before editing it.")
        return redirect("delegations:catalog")
    try:
        available = catalog_services.cloud_account_policies(
            cloud_account=role.cloud_account,
            refresh=request.method == "GET" and "refresh" in request.GET,
        )
    except CloudError as error:
        return _role_form_page(
            request, form=None, policies_error=_cloud_message(error), status=503, role=role
        )
    except SecretDecryptionError as error:
        return _role_form_page(request, form=None, policies_error=str(error), status=503, role=role)
    if request.method == "GET":
        initial = {
            "description": role.description,
            "policies": [f"{p.get('type')}:{p.get('name')}" for p in role.policies or []],
            "max_session_duration": role.max_session_duration,
            "keep_role_when_empty": role.keep_role_when_empty,
            "high_privilege_confirmed": role.allows_high_privilege,
        }
        form = CatalogRoleEditForm(available=available, initial=initial)
        return _role_form_page(request, form=form, role=role)

    form = CatalogRoleEditForm(request.POST, available=available)
    if not form.is_valid():
        return _role_form_page(request, form=form, status=400, role=role)
    keys = form.policy_keys()
    try:
        catalog_services.catalog_role_validate_update(
            catalog_role=role,
            description=form.cleaned_data["description"],
            policy_keys=keys,
            max_session_duration=form.cleaned_data["max_session_duration"],
        )
    except ValidationError as error:
        _add_errors(form, error)
        return _role_form_page(request, form=form, status=400, role=role)
    high_privilege, stop = _high_privilege_gate(
        request, form=form, account=role.cloud_account, keys=keys, role=role
    )
    if stop is not None:
        return stop
    confirmed = form.cleaned_data["high_privilege_confirmed"]
    try:
        result = catalog_services.catalog_role_update(
            catalog_role=role,
            updated_by=request.user,  # type: ignore[arg-type]
            description=form.cleaned_data["description"],
            policy_keys=keys,
            max_session_duration=form.cleaned_data["max_session_duration"],
            keep_role_when_empty=form.cleaned_data["keep_role_when_empty"],
            high_privilege_confirmed=confirmed,
        )
    except ValidationError as error:
        _add_errors(form, error)
        return _role_form_page(
            request, form=form, high_privilege=high_privilege, status=400, role=role
        )
    if not result.changed:  # type: ignore[attr-defined]
        messages.info(request, f"Nothing changed in {role.role_name}.")
    elif result.delegations.exclude(status__in=list(FINAL_STATUSES)).exists():
        messages.success(
            request,
            f"{role.role_name} is saved. Access already granted is being updated in the cloud.",
        )
    else:
        messages.success(request, f"{role.role_name} is saved.")
    return redirect("delegations:catalog")


def _role_toggle(request: HttpRequest, catalog_role_id: str, *, active: bool) -> HttpResponse:
    owner = _owner(request)
    role = selectors.catalog_role_get_for_owner(owner=owner, catalog_role_id=catalog_role_id)
    if active and role.allows_high_privilege and not _recently_confirmed(request):
        return _confirm_then_replay(request)
    try:
        if active:
            result = catalog_services.catalog_role_reactivate(
                catalog_role=role,
                reactivated_by=request.user,  # type: ignore[arg-type]
            )
        else:
            result = catalog_services.catalog_role_deactivate(
                catalog_role=role,
                deactivated_by=request.user,  # type: ignore[arg-type]
            )
    except ValidationError as error:
        _report(request, error)
        return redirect("delegations:catalog")
    if not result.changed:  # type: ignore[attr-defined]
        messages.info(
            request, f"{role.role_name} was already {'active' if active else 'inactive'}."
        )
    elif active:
        messages.success(request, f"{role.role_name} can be requested and offered again.")
    else:
        messages.success(
            request,
            f"{role.role_name} can no longer be requested or offered. Existing delegations "
            "keep working until you revoke them.",
        )
    return redirect("delegations:catalog")


@require_POST
@organisation_member_required(roles=[ADMIN])
def catalog_role_deactivate(request: HttpRequest, catalog_role_id: str) -> HttpResponse:
    return _role_toggle(request, catalog_role_id, active=False)


@require_POST
@organisation_member_required(roles=[ADMIN])
def catalog_role_reactivate(request: HttpRequest, catalog_role_id: str) -> HttpResponse:
    return _role_toggle(request, catalog_role_id, active=True)


@require_POST
@organisation_member_required(roles=[ADMIN])
def allowance_add(request: HttpRequest) -> HttpResponse:
    owner = _owner(request)
    form = PartnerAllowanceForm(request.POST)
    if form.is_valid():
        try:
            allowance = catalog_services.partner_allowance_add(
                owner=owner,
                added_by=request.user,  # type: ignore[arg-type]
                partner_account_uid=form.cleaned_data["partner_account_uid"],
                label=form.cleaned_data["label"],
            )
        except ValidationError as error:
            _add_errors(form, error)
        else:
            messages.success(
                request, f"{allowance.partner_account_uid} may now appear in your trust policies."
            )
            return redirect(reverse("delegations:catalog") + "#allow-list")
    return _catalog_page(request, allowance_form=form, status=400)


@require_POST
@organisation_member_required(roles=[ADMIN])
def allowance_remove(request: HttpRequest, allowance_id: str) -> HttpResponse:
    owner = _owner(request)
    allowance = selectors.partner_allowance_get_for_owner(owner=owner, allowance_id=allowance_id)
    catalog_services.partner_allowance_remove(
        allowance=allowance,
        removed_by=request.user,  # type: ignore[arg-type]
    )
    messages.success(
        request,
        f"{allowance.partner_account_uid} is off the allow-list: no new requests or offers. "
        "Access already granted stays until you revoke it.",
    )
    return redirect(reverse("delegations:catalog") + "#allow-list")
