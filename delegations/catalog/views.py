"""The owner's catalogue, allow-list and partner links: thin views over
`catalog.selectors` and the services.

Mutations are POST-only with CSRF; admins only (auditors read the catalogue); another
organisation's ids answer 404. Allowing a high-privilege policy needs a recent sign-in (with
MFA when the portal requires it); allauth replays the POST afterwards.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext, gettext_lazy
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

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
from cloud.errors import CloudError
from core.crypto import SecretDecryptionError
from core.web import add_form_errors, no_store, report_refusal
from delegations.catalog import account_policies, selectors
from delegations.catalog import partner_links as link_services
from delegations.catalog import proposals as catalog_proposals
from delegations.catalog import services as catalog_services
from delegations.catalog.account_policies import AvailablePolicy, PolicyKey
from delegations.catalog.forms import (
    CatalogRoleEditForm,
    CatalogRoleForm,
    PartnerAllowanceForm,
    PartnerLinkForm,
)
from delegations.connection.selectors import (
    cloud_account_of_organisation,
    cloud_accounts_of_organisation,
)
from delegations.connection.services import cloud_error_reference
from delegations.models import FINAL_STATUSES, CatalogRole, CloudAccount, RuleProposal, TrustScope
from delegations.proposals import PROPOSED_MESSAGE

READERS = (ADMIN, AUDITOR)


_owner = current_organisation_of(
    Organisation.Kind.OWNER,
    refusal=gettext_lazy("Only resource owner organisations keep a catalogue."),
)


# --- the catalogue and the allow-list --------------------------------------------------------


def _catalog_page(
    request: AuthenticatedHttpRequest,
    *,
    allowance_form: PartnerAllowanceForm | None = None,
    status: int = 200,
) -> HttpResponse:
    owner = _owner(request)
    return render(
        request,
        "delegations/catalog/index.html",
        {
            "organisation": owner,
            "account": cloud_account_of_organisation(organisation=owner),
            "roles": account_policies.catalog_roles_with_high_privilege_reasons(
                selectors.catalog_roles_for_owner(owner=owner)
            ),
            "allowances": selectors.partner_allowances_for_owner(owner=owner),
            "allowance_form": allowance_form or PartnerAllowanceForm(),
            "is_admin": is_admin(request),
        },
        status=status,
    )


@require_GET
@organisation_member_required(roles=READERS)
def catalog(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _catalog_page(request)


def _high_privilege_gate(
    request: AuthenticatedHttpRequest,
    *,
    form: CatalogRoleForm,
    account: CloudAccount,
    keys: list[PolicyKey],
    role: CatalogRole | None = None,
) -> tuple[list[str], HttpResponse | None]:
    """The high-privilege policies among `keys` (for an edited role, also in the other
    accounts it is offered or granted in), and the answer to give instead of saving when the
    cloud cannot say, the owner has not ticked the box, or a fresh confirmation is due."""
    try:
        if role is None:
            high_privilege = account_policies.catalog_policies_high_privilege(
                cloud_account=account, policy_keys=keys
            )
        else:
            high_privilege = account_policies.catalog_role_edit_high_privilege(
                catalog_role=role, policy_keys=keys
            )
    except CloudError as error:
        form.add_error(None, _cloud_message(error))
        return [], _role_form_page(request, form=form, status=400, role=role)
    if high_privilege and not form.cleaned_data["high_privilege_confirmed"]:
        form.add_error(
            "high_privilege_confirmed",
            gettext(
                "%(policies)s: RAM administration or full access to the account. "
                "Tick the box to confirm a partner may have that."
            )
            % {"policies": ", ".join(high_privilege)},
        )
        return high_privilege, _role_form_page(
            request, form=form, high_privilege=high_privilege, status=400, role=role
        )
    if high_privilege:
        confirmation = step_up(request)
        if confirmation.response is not None:
            return high_privilege, confirmation.response
    return high_privilege, None


def _role_form_page(
    request: AuthenticatedHttpRequest,
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
            "organisation": request.organisation,
            "role": role,
            # The role's account: its home, or for a new role the primary (with several
            # accounts, "your account" would name none of them).
            "account": role.cloud_account
            if role is not None
            else cloud_account_of_organisation(organisation=request.organisation),
            "form": form,
            "policies_error": policies_error,
            "high_privilege": high_privilege or [],
            "chosen": form.chosen_values() if form is not None else set(),
        },
        status=status,
    )


def _cloud_message(error: CloudError) -> str:
    names = {
        "code": error.code or error.category.value,
        "message": error.message,
        "reference": cloud_error_reference(error),
    }
    if error.transient:
        return (
            gettext(
                "The account's policies could not be listed: %(code)s: %(message)s%(reference)s. "
                "Try again in a moment."
            )
            % names
        )
    return (
        gettext(
            "The account's policies could not be listed: %(code)s: %(message)s%(reference)s. "
            "Check the connected key's rights."
        )
        % names
    )


def _available_policies(
    request: AuthenticatedHttpRequest, *, account: CloudAccount, role: CatalogRole | None = None
) -> tuple[list[AvailablePolicy], HttpResponse | None]:
    """The account's policies to choose from, or the page to show when they cannot be read."""
    try:
        available = account_policies.cloud_account_policies(
            cloud_account=account, refresh=request.method == "GET" and "refresh" in request.GET
        )
    except CloudError as error:
        problem = _cloud_message(error)
    except SecretDecryptionError as error:
        problem = str(error)
    else:
        return available, None
    return [], _role_form_page(request, form=None, policies_error=problem, status=503, role=role)


def _role_form_submit(
    request: AuthenticatedHttpRequest,
    *,
    form: CatalogRoleForm,
    account: CloudAccount,
    validate: Callable[[list[PolicyKey]], object],
    save: Callable[[list[PolicyKey]], CatalogRole | RuleProposal],
    role: CatalogRole | None = None,
) -> CatalogRole | RuleProposal | HttpResponse:
    """Adding and editing a role follow the same steps: the form, then every rule that needs
    no cloud call (so a refused name never costs a cloud read), then the high-privilege gate,
    then the save. Returns the saved role, or the answer to give instead."""
    if not form.is_valid():
        return _role_form_page(request, form=form, status=400, role=role)
    keys = form.policy_keys()
    try:
        validate(keys)
    except ValidationError as error:
        add_form_errors(form, error)
        return _role_form_page(request, form=form, status=400, role=role)
    high_privilege, stop = _high_privilege_gate(
        request, form=form, account=account, keys=keys, role=role
    )
    if stop is not None:
        return stop
    try:
        return save(keys)
    except ValidationError as error:
        add_form_errors(form, error)
        return _role_form_page(
            request, form=form, high_privilege=high_privilege, status=400, role=role
        )


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def catalog_role_create(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    account = cloud_account_of_organisation(organisation=owner)
    if account is None:
        messages.info(request, gettext("Connect your Alibaba Cloud account before adding roles."))
        return redirect("delegations:cloud_account")
    available, stop = _available_policies(request, account=account)
    if stop is not None:
        return stop
    if request.method == "GET":
        return _role_form_page(request, form=CatalogRoleForm(available=available))

    form = CatalogRoleForm(request.POST, available=available)

    def validate(keys: list[PolicyKey]) -> None:
        catalog_services.catalog_role_validate(
            owner=owner,
            role_name=form.cleaned_data["role_name"],
            description=form.cleaned_data["description"],
            policy_keys=keys,
            max_session_duration=form.cleaned_data["max_session_duration"],
        )

    def save(keys: list[PolicyKey]) -> CatalogRole | RuleProposal:
        return catalog_proposals.catalog_role_create_or_propose(
            owner=owner,
            user=request.user,
            role_name=form.cleaned_data["role_name"],
            description=form.cleaned_data["description"],
            policy_keys=keys,
            max_session_duration=form.cleaned_data["max_session_duration"],
            keep_role_when_empty=form.cleaned_data["keep_role_when_empty"],
            high_privilege_confirmed=form.cleaned_data["high_privilege_confirmed"],
            default_trust_scope=form.cleaned_data["default_trust_scope"]
            or TrustScope.PARTNER_ACCOUNT,
            one_role_per_partner=form.cleaned_data["one_role_per_partner"],
        )

    role = _role_form_submit(request, form=form, account=account, validate=validate, save=save)
    if isinstance(role, HttpResponse):
        return role
    if isinstance(role, RuleProposal):
        messages.success(request, str(PROPOSED_MESSAGE))
        return redirect("delegations:catalog")
    messages.success(
        request,
        gettext("%(role)s is in the catalogue; partners can ask for it.")
        % {"role": role.role_name},
    )
    return redirect("delegations:catalog")


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def catalog_role_edit(request: AuthenticatedHttpRequest, catalog_role_id: str) -> HttpResponse:
    """Edit a role's description, policies, maximum session and unused-role setting, with the
    same rules (and the same high-privilege confirmation) as adding one."""
    owner = _owner(request)
    role = selectors.catalog_role_get_for_owner(owner=owner, catalog_role_id=catalog_role_id)
    if not role.cloud_account.is_active:
        messages.error(
            request, gettext("Connect the role's cloud account again before editing it.")
        )
        return redirect("delegations:catalog")
    available, stop = _available_policies(request, account=role.cloud_account, role=role)
    if stop is not None:
        return stop
    if request.method == "GET":
        initial = {
            "description": role.description,
            "policies": [f"{p.get('type')}:{p.get('name')}" for p in role.policies or []],
            "max_session_duration": role.max_session_duration,
            "keep_role_when_empty": role.keep_role_when_empty,
            "default_trust_scope": role.default_trust_scope,
            "high_privilege_confirmed": role.allows_high_privilege,
        }
        form = CatalogRoleEditForm(available=available, initial=initial)
        return _role_form_page(request, form=form, role=role)

    form = CatalogRoleEditForm(request.POST, available=available)

    def validate(keys: list[PolicyKey]) -> None:
        catalog_services.catalog_role_validate_update(
            catalog_role=role,
            description=form.cleaned_data["description"],
            policy_keys=keys,
            max_session_duration=form.cleaned_data["max_session_duration"],
        )

    def save(keys: list[PolicyKey]) -> CatalogRole | RuleProposal:
        return catalog_proposals.catalog_role_update_or_propose(
            catalog_role=role,
            user=request.user,
            description=form.cleaned_data["description"],
            policy_keys=keys,
            max_session_duration=form.cleaned_data["max_session_duration"],
            keep_role_when_empty=form.cleaned_data["keep_role_when_empty"],
            high_privilege_confirmed=form.cleaned_data["high_privilege_confirmed"],
            default_trust_scope=form.cleaned_data["default_trust_scope"] or None,
        )

    result = _role_form_submit(
        request, form=form, account=role.cloud_account, validate=validate, save=save, role=role
    )
    if isinstance(result, HttpResponse):
        return result
    if isinstance(result, RuleProposal):
        messages.success(request, str(PROPOSED_MESSAGE))
        return redirect("delegations:catalog")
    if not result.changed:
        messages.info(request, gettext("Nothing changed in %(role)s.") % {"role": role.role_name})
    elif result.delegations.exclude(status__in=list(FINAL_STATUSES)).exists():
        messages.success(
            request,
            gettext("%(role)s is saved. Access already granted is being updated in the cloud.")
            % {"role": role.role_name},
        )
    else:
        messages.success(request, gettext("%(role)s is saved.") % {"role": role.role_name})
    return redirect("delegations:catalog")


def _role_toggle(
    request: AuthenticatedHttpRequest, catalog_role_id: str, *, active: bool
) -> HttpResponse:
    owner = _owner(request)
    role = selectors.catalog_role_get_for_owner(owner=owner, catalog_role_id=catalog_role_id)
    if active and role.allows_high_privilege:
        confirmation = step_up(request)
        if confirmation.response is not None:
            return confirmation.response
    change = (
        catalog_proposals.catalog_role_reactivate_or_propose
        if active
        else catalog_proposals.catalog_role_deactivate_or_propose
    )
    try:
        result = change(catalog_role=role, user=request.user)
    except ValidationError as error:
        report_refusal(request, error)
        return redirect("delegations:catalog")
    if isinstance(result, RuleProposal):
        messages.success(request, str(PROPOSED_MESSAGE))
    elif not result.changed:
        messages.info(
            request,
            (
                gettext("%(role)s was already active.")
                if active
                else gettext("%(role)s was already inactive.")
            )
            % {"role": role.role_name},
        )
    elif active:
        messages.success(
            request,
            gettext("%(role)s can be requested and offered again.") % {"role": role.role_name},
        )
    else:
        messages.success(
            request,
            gettext(
                "%(role)s can no longer be requested or offered. Existing delegations "
                "keep working until you revoke them."
            )
            % {"role": role.role_name},
        )
    return redirect("delegations:catalog")


@require_POST
@organisation_member_required(roles=[ADMIN])
def catalog_role_deactivate(
    request: AuthenticatedHttpRequest, catalog_role_id: str
) -> HttpResponse:
    return _role_toggle(request, catalog_role_id, active=False)


@require_POST
@organisation_member_required(roles=[ADMIN])
def catalog_role_reactivate(
    request: AuthenticatedHttpRequest, catalog_role_id: str
) -> HttpResponse:
    return _role_toggle(request, catalog_role_id, active=True)


@require_POST
@organisation_member_required(roles=[ADMIN])
def allowance_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    form = PartnerAllowanceForm(request.POST)
    if form.is_valid():
        try:
            allowance = catalog_proposals.partner_allowance_add_or_propose(
                owner=owner,
                user=request.user,
                partner_account_uid=form.cleaned_data["partner_account_uid"],
                label=form.cleaned_data["label"],
            )
        except ValidationError as error:
            add_form_errors(form, error)
        else:
            if isinstance(allowance, RuleProposal):
                messages.success(request, str(PROPOSED_MESSAGE))
                return redirect(reverse("delegations:catalog") + "#allow-list")
            messages.success(
                request,
                gettext("%(partner_account_uid)s may now appear in your trust policies.")
                % {"partner_account_uid": allowance.partner_account_uid},
            )
            return redirect(reverse("delegations:catalog") + "#allow-list")
    return _catalog_page(request, allowance_form=form, status=400)


@require_POST
@organisation_member_required(roles=[ADMIN])
def allowance_remove(request: AuthenticatedHttpRequest, allowance_id: str) -> HttpResponse:
    owner = _owner(request)
    allowance = selectors.partner_allowance_get_for_owner(owner=owner, allowance_id=allowance_id)
    if catalog_proposals.partner_allowance_remove_or_propose(
        allowance=allowance, user=request.user
    ):
        messages.success(request, str(PROPOSED_MESSAGE))
        return redirect(reverse("delegations:catalog") + "#allow-list")
    messages.success(
        request,
        gettext(
            "%(partner_account_uid)s is off the allow-list: no new requests or "
            "offers. Access already granted stays until you revoke it."
        )
        % {"partner_account_uid": allowance.partner_account_uid},
    )
    return redirect(reverse("delegations:catalog") + "#allow-list")


# --- partner links ---------------------------------------------------------------------------


@sensitive_variables()
@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def partner_links(request: AuthenticatedHttpRequest) -> HttpResponse:
    owner = _owner(request)
    new_code = ""
    new_link = None
    status = 200
    if request.method == "POST":
        form = PartnerLinkForm(request.POST)
        if form.is_valid():
            try:
                new_link, new_code = link_services.partner_link_create(
                    owner=owner,
                    created_by=request.user,
                    label=form.cleaned_data["label"],
                    expires_at=form.expires_at(),
                    partner_account_uid=form.cleaned_data["partner_account_uid"],
                    single_use=form.cleaned_data["single_use"],
                )
            except ValidationError as error:
                add_form_errors(form, error)
                status = 400
            else:
                form = PartnerLinkForm()
        else:
            status = 400
    else:
        form = PartnerLinkForm()
    # The new code is shown once: never from a cache.
    return no_store(
        render(
            request,
            "delegations/partner_links.html",
            {
                "organisation": owner,
                "form": form,
                "links": selectors.partner_links_for_owner(owner=owner),
                "new_code": new_code,
                "new_link": new_link,
                # Where the partner types the code: the code itself never goes into a URL.
                "request_url": request.build_absolute_uri(reverse("delegations:request")),
            },
            status=status,
        )
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def partner_link_revoke(request: AuthenticatedHttpRequest, link_id: str) -> HttpResponse:
    owner = _owner(request)
    link = selectors.partner_link_get_for_owner(owner=owner, link_id=link_id)
    link_services.partner_link_revoke(link=link, revoked_by=request.user)
    messages.success(
        request,
        gettext("The partner link code …%(code_hint)s no longer works.")
        % {"code_hint": link.code_hint},
    )
    return redirect("delegations:partner_links")


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def catalog_role_accounts(request: AuthenticatedHttpRequest, catalog_role_id: str) -> HttpResponse:
    """Where a role may be granted besides its home account: all the owner's connected
    accounts, or the ones ticked."""
    owner = _owner(request)
    role = selectors.catalog_role_get_for_owner(owner=owner, catalog_role_id=catalog_role_id)
    accounts = cloud_accounts_of_organisation(organisation=owner)
    if request.method == "POST":
        chosen = set(request.POST.getlist("accounts"))
        try:
            result = catalog_proposals.catalog_role_set_accounts_or_propose(
                catalog_role=role,
                user=request.user,
                all_accounts=request.POST.get("all_accounts") == "on",
                accounts=[account for account in accounts if str(account.pk) in chosen],
            )
        except ValidationError as error:
            report_refusal(request, error)
        else:
            if isinstance(result, RuleProposal):
                messages.success(request, str(PROPOSED_MESSAGE))
            else:
                messages.success(
                    request, gettext("Saved where %(role)s is offered.") % {"role": role}
                )
            return redirect("delegations:catalog")
    offered = {account.pk for account in selectors.catalog_role_accounts(catalog_role=role)}
    return render(
        request,
        "delegations/catalog/role_accounts.html",
        {"organisation": owner, "role": role, "accounts": accounts, "offered": offered},
    )
