"""Pages for the organisation's cloud account (owners and partners): connect, check, replace
and disconnect its AccessKey; thin views over `connection.selectors` and `connection.services`.

Mutations are POST-only with CSRF; admins only (auditors read). Connecting or replacing a key
needs a recent sign-in (with MFA when the portal requires it) *before* the form is filled in:
a POST carrying a secret is never suspended into the session to be replayed after a sign-in,
it is refused and the key must be entered again.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.forms import Form
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.permissions import (
    ADMIN,
    AUDITOR,
    AuthenticatedHttpRequest,
    is_admin,
    organisation_member_required,
    step_up,
    step_up_confirmed,
    step_up_page,
)
from cloud.errors import CloudError
from core.crypto import SecretDecryptionError
from core.web import add_form_errors, no_store, report_refusal
from delegations.connection import selectors, services
from delegations.connection.forms import (
    COMMON_REGIONS,
    CloudAccountAddForm,
    CloudAccountConnectForm,
    CloudAccountReplaceForm,
)
from delegations.models import CloudAccount

READERS = (ADMIN, AUDITOR)


def _confirm_then_show(request: AuthenticatedHttpRequest, page: str) -> HttpResponse:
    """Send the person to confirm who they are, then back to `page` (a GET: nothing is kept)."""
    return redirect(f"{step_up_page(request)}?{urlencode({'next': page})}")


def _refuse_stale_confirmation(request: AuthenticatedHttpRequest, page: str) -> HttpResponse:
    messages.error(
        request,
        gettext(
            "Please confirm it is you again: the confirmation expired, so the key was not saved."
        ),
    )
    return _confirm_then_show(request, page)


@require_GET
@organisation_member_required(roles=READERS)
def cloud_account(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = request.organisation
    account = selectors.cloud_account_of_organisation(organisation=organisation)
    ram_users: list[Any] | None = None
    ram_users_error = ""
    if account is not None and organisation.is_partner:
        try:
            ram_users = services.partner_ram_users(cloud_account=account)
        except CloudError as error:
            ram_users_error = gettext("The RAM users could not be listed: %(code)s %(message)s") % {
                "code": error.code or "",
                "message": error.message,
            }
        except SecretDecryptionError as error:
            ram_users_error = str(error)
    return render(
        request,
        "delegations/connection/index.html",
        {
            "organisation": organisation,
            "account": account,
            # An owner's other accounts (production, staging…), each with its own key.
            "accounts": selectors.cloud_accounts_of_organisation(organisation=organisation),
            "is_admin": is_admin(request),
            "ram_users": ram_users,
            "ram_users_error": ram_users_error,
        },
    )


def _account(
    request: AuthenticatedHttpRequest, cloud_account_id: str | None
) -> CloudAccount | None:
    """The account a page acts on: the one named in the URL (another organisation's is 404),
    else the organisation's primary."""
    if cloud_account_id is None:
        return selectors.cloud_account_of_organisation(organisation=request.organisation)
    return selectors.cloud_account_get_for_organisation(
        organisation=request.organisation, cloud_account_id=cloud_account_id
    )


def _acts_on_an_account(
    view: Callable[[AuthenticatedHttpRequest, CloudAccount], HttpResponse],
) -> Callable[..., HttpResponse]:
    """An admin's POST on the account named in the URL, else on the primary; with no account
    connected, back to the cloud-account page."""

    @require_POST
    @organisation_member_required(roles=[ADMIN])
    @functools.wraps(view)
    def on_account(
        request: AuthenticatedHttpRequest, cloud_account_id: str | None = None
    ) -> HttpResponse:
        account = _account(request, cloud_account_id)
        if account is None:
            messages.info(request, gettext("No cloud account is connected."))
            return redirect("delegations:cloud_account")
        return view(request, account)

    return on_account


def _key_form_page(
    request: AuthenticatedHttpRequest,
    *,
    form: Form,
    replacing: bool,
    status: int = 200,
    account: CloudAccount | None = None,
) -> HttpResponse:
    return no_store(
        render(
            request,
            "delegations/connection/form.html",
            {
                "organisation": request.organisation,
                "form": form,
                "replacing": replacing,
                "account": account
                or selectors.cloud_account_of_organisation(organisation=request.organisation),
                "regions": COMMON_REGIONS,
            },
            status=status,
        )
    )


def _confirmation_gate(request: AuthenticatedHttpRequest, page: str) -> HttpResponse | None:
    """None when the person confirmed who they are recently; otherwise where to send them
    (a POST, which carries the key, is refused rather than kept for a replay)."""
    if step_up_confirmed(request):
        return None
    if request.method == "POST":
        return _refuse_stale_confirmation(request, page)
    return _confirm_then_show(request, page)


def _takes_a_key(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """An admin's page that shows a key form and takes the posted AccessKey. The secret stays
    out of error reports, and so do the locals of every frame below the view (the form's
    cleaned data, the services that try the key)."""
    view = organisation_member_required(roles=[ADMIN])(view)
    view = require_http_methods(["GET", "POST"])(view)
    return sensitive_variables()(sensitive_post_parameters("access_key_secret")(view))


def _connect_new(
    request: AuthenticatedHttpRequest,
    *,
    form_class: type[Form],
    initial: dict[str, Any] | None = None,
    success: str,
) -> HttpResponse:
    """Connecting an account (the organisation's first, or an owner's further one): the
    confirmation gate, the key form, then the key tried and stored."""
    stop = _confirmation_gate(request, request.path)
    if stop is not None:
        return stop
    if request.method == "GET":
        return _key_form_page(request, form=form_class(initial=initial), replacing=False)
    organisation = request.organisation
    return _save_key(
        request,
        form=form_class(request.POST),
        replacing=False,
        save=lambda data: services.cloud_account_connect(
            organisation=organisation, connected_by=request.user, **data
        ),
        success=success,
    )


def _confirmed_change(
    request: AuthenticatedHttpRequest, change: Callable[[], object], *, success: str
) -> HttpResponse:
    """An account change that wants a recent sign-in: a refusal is reported, else `success`;
    either way back to the cloud-account page."""
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    try:
        change()
    except ValidationError as error:
        report_refusal(request, error)
    else:
        messages.success(request, success)
    return redirect("delegations:cloud_account")


def _save_key(
    request: AuthenticatedHttpRequest,
    *,
    form: Form,
    replacing: bool,
    save: Callable[[dict[str, Any]], object],
    success: str,
    account: CloudAccount | None = None,
) -> HttpResponse:
    """Validate the posted key form and hand it to `save` (a service that tries the key)."""
    if form.is_valid():
        try:
            save(form.cleaned_data)
        except ValidationError as error:
            add_form_errors(form, error)
        except ImproperlyConfigured as error:
            form.add_error(None, str(error))
            return _key_form_page(
                request, form=form, replacing=replacing, status=503, account=account
            )
        else:
            messages.success(request, success)
            return redirect("delegations:cloud_account")
    return _key_form_page(request, form=form, replacing=replacing, status=400, account=account)


@_takes_a_key
def cloud_account_connect(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = request.organisation
    if selectors.cloud_account_of_organisation(organisation=organisation) is not None:
        messages.info(
            request, gettext("Your cloud account is connected; you can replace its key here.")
        )
        return redirect("delegations:cloud_account_replace")
    return _connect_new(
        request,
        form_class=CloudAccountConnectForm,
        initial={"account_uid": organisation.account_uid, "alias": organisation.enterprise_alias},
        success=gettext("Connected. The key works and is stored encrypted."),
    )


@_takes_a_key
def cloud_account_replace(
    request: AuthenticatedHttpRequest, cloud_account_id: str | None = None
) -> HttpResponse:
    account = _account(request, cloud_account_id)
    if account is None:
        messages.info(request, gettext("No cloud account is connected yet."))
        return redirect("delegations:cloud_account_connect")
    stop = _confirmation_gate(request, request.path)
    if stop is not None:
        return stop
    if request.method == "GET":
        form = CloudAccountReplaceForm(initial={"alias": account.alias, "region": account.region})
        return _key_form_page(request, form=form, replacing=True, account=account)
    return _save_key(
        request,
        form=CloudAccountReplaceForm(request.POST),
        replacing=True,
        account=account,
        save=lambda data: services.cloud_account_replace_key(
            cloud_account=account, replaced_by=request.user, **data
        ),
        success=gettext("Key replaced. The new key works and is stored encrypted."),
    )


@_acts_on_an_account
def cloud_account_verify(request: AuthenticatedHttpRequest, account: CloudAccount) -> HttpResponse:
    try:
        services.cloud_account_verify(cloud_account=account, checked_by=request.user)
    except (ValidationError, SecretDecryptionError, ImproperlyConfigured) as error:
        report_refusal(request, error)
    else:
        messages.success(request, gettext("The stored key still works."))
    return redirect("delegations:cloud_account")


@_acts_on_an_account
def cloud_account_disconnect(
    request: AuthenticatedHttpRequest, account: CloudAccount
) -> HttpResponse:
    return _confirmed_change(
        request,
        lambda: services.cloud_account_disconnect(
            cloud_account=account, disconnected_by=request.user
        ),
        success=gettext(
            "Disconnected. The portal forgot the key %(access_key_id)s; it still "
            "exists in Alibaba Cloud: disable or delete it in the RAM console."
        )
        % {"access_key_id": account.access_key_id},
    )


@_takes_a_key
def cloud_account_add(request: AuthenticatedHttpRequest) -> HttpResponse:
    """An owner connects a further account (staging, another business unit…), with its own
    key; the first account stays the primary."""
    organisation = request.organisation
    if not organisation.is_owner:
        messages.info(request, _("A partner organisation connects one account."))
        return redirect("delegations:cloud_account")
    if selectors.cloud_account_of_organisation(organisation=organisation) is None:
        return redirect("delegations:cloud_account_connect")
    return _connect_new(
        request,
        form_class=CloudAccountAddForm,
        success=_("Connected. The key works and is stored encrypted."),
    )


@_acts_on_an_account
def cloud_account_make_primary(
    request: AuthenticatedHttpRequest, account: CloudAccount
) -> HttpResponse:
    return _confirmed_change(
        request,
        lambda: services.cloud_account_make_primary(cloud_account=account, made_by=request.user),
        success=_("%(account)s is now the primary account: paths that name no account use it.")
        % {"account": account.label},
    )
