"""The API's pages: a person's tokens (`/account/tokens/`), an admin's service accounts and
API settings (`/organisation/service-accounts/`) and the device-flow confirmation
(`/account/device/`) that `pap login` sends people to.

A new token or service-account key is shown once, in the answer to the POST that made it
(never stored, never in a URL or a redirect)."""

from collections.abc import Callable

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.forms import Form
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from accounts.permissions import (
    ADMIN,
    AuthenticatedHttpRequest,
    MfaRule,
    SignedInHttpRequest,
    organisation_member_required,
    recent_authentications,
    step_up,
)
from api import selectors, services
from api.forms import DecisionsForm, DeviceCodeForm, ServiceAccountForm, TokenForm
from core.ratelimit import rate_limit_consume
from core.web import add_form_errors, no_store, report_refusal


def _with_mfa(request: SignedInHttpRequest) -> bool:
    return any(record.get("method") == "mfa" for record in recent_authentications(request))


def _tokens_page(
    request: SignedInHttpRequest, form: TokenForm, *, created: object = None, status: int = 200
) -> HttpResponse:
    return no_store(
        render(
            request,
            "api/tokens.html",
            {
                "form": form,
                "tokens": selectors.tokens_of_user(user=request.user),
                "created": created,
            },
            status=status,
        ),
        secret=created is not None,
    )


@sensitive_variables("created")
def _create_secret(
    request: SignedInHttpRequest,
    form: Form,
    *,
    page: Callable[..., HttpResponse],
    create: Callable[[bool], object],
    fresh: Callable[[], Form],
) -> HttpResponse:
    """A page that makes a secret (a token, a service account's key): a GET shows `form`; a
    POST has the person confirm who they are first (by MFA when they have it), then
    `create(with_mfa)` from the valid form, and shows the secret once (201) beside a `fresh`
    form, or the form's errors (400)."""
    if request.method != "POST":
        return page(request, form)
    confirmation = step_up(request, rule=MfaRule.ENROLLED)
    if confirmation.response is not None:
        return confirmation.response
    if form.is_valid():
        try:
            created = create(confirmation.with_mfa)
        except ValidationError as error:
            add_form_errors(form, error)
        else:
            return page(request, fresh(), created=created, status=201)
    return page(request, form, status=400)


@require_http_methods(["GET", "POST"])
@login_required
def tokens(request: SignedInHttpRequest) -> HttpResponse:
    form = TokenForm(request.POST or None, memberships=request.memberships)

    def create(with_mfa: bool) -> object:
        membership = form.memberships.get(form.cleaned_data["organisation"])
        return services.api_token_create(
            user=request.user,
            name=form.cleaned_data["name"],
            scopes=form.cleaned_data["scopes"],
            expires_in_days=form.cleaned_data["expires_in_days"],
            organisation=membership.organisation if membership else None,
            with_mfa=with_mfa,
        )

    # A token acts as the person: they confirm who they are first.
    return _create_secret(
        request,
        form,
        page=_tokens_page,
        create=create,
        fresh=lambda: TokenForm(memberships=request.memberships),
    )


@require_POST
@login_required
def token_revoke(request: SignedInHttpRequest, token_id: str) -> HttpResponse:
    token = selectors.token_get_for_user(user=request.user, token_id=token_id)
    services.api_token_revoke(token=token, revoked_by=request.user)
    messages.success(request, _("Token revoked: it no longer works."))
    return redirect("account_tokens")


def _device_page(
    request: SignedInHttpRequest, form: DeviceCodeForm, *, status: int = 200, done: str = ""
) -> HttpResponse:
    return no_store(render(request, "api/device.html", {"form": form, "done": done}, status=status))


@require_http_methods(["GET", "POST"])
@organisation_member_required
def device(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The browser half of `pap login`: the person checks the code their terminal shows and
    allows (or refuses) a token for `read request credentials` in their current organisation."""
    if request.method != "POST":
        return _device_page(request, DeviceCodeForm())
    form = DeviceCodeForm(request.POST)
    if not form.is_valid():
        return _device_page(request, form, status=400)
    wait = rate_limit_consume(
        scope="api-device-confirm",
        key=str(request.user.pk),
        rate=settings.PORTAL_API_DEVICE_CONFIRM_RATE,
    )
    if wait is not None:
        form.add_error(None, _("Too many codes tried; wait a few minutes."))
        return _device_page(request, form, status=429)
    authorization = services.device_authorization_pending(user_code=form.cleaned_data["code"])
    if authorization is None:
        form.add_error("code", _("This code is not valid or has expired; run pap login again."))
        return _device_page(request, form, status=400)
    approve = "deny" not in request.POST
    if approve:
        confirmation = step_up(request, rule=MfaRule.ENROLLED)
        if confirmation.response is not None:
            return confirmation.response
    try:
        services.device_authorization_decide(
            authorization=authorization,
            user=request.user,
            organisation=request.organisation,
            approve=approve,
            with_mfa=_with_mfa(request),
        )
    except ValidationError as error:
        add_form_errors(form, error)
        return _device_page(request, form, status=400)
    return _device_page(request, DeviceCodeForm(), done="approved" if approve else "denied")


def _service_accounts_page(
    request: AuthenticatedHttpRequest,
    form: ServiceAccountForm,
    *,
    created: object = None,
    status: int = 200,
) -> HttpResponse:
    organisation = request.organisation
    return no_store(
        render(
            request,
            "api/service_accounts.html",
            {
                "organisation": organisation,
                "form": form,
                "accounts": selectors.service_accounts_of(organisation=organisation),
                "decisions_form": DecisionsForm(
                    initial={
                        "allow_decisions": services.api_decisions_allowed(organisation=organisation)
                    }
                ),
                "created": created,
            },
            status=status,
        ),
        secret=created is not None,
    )


@require_http_methods(["GET", "POST"])
@organisation_member_required(roles=[ADMIN])
def service_accounts(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = ServiceAccountForm(request.POST or None)

    def create(with_mfa: bool) -> object:
        return services.service_account_create(
            organisation=request.organisation,
            created_by=request.user,
            # The form's fields are the account's settings, one for one.
            **form.cleaned_data,
        )

    # Its token reads the organisation's whole record for months: the admin confirms who
    # they are first, as for a personal token.
    return _create_secret(
        request, form, page=_service_accounts_page, create=create, fresh=ServiceAccountForm
    )


@require_POST
@organisation_member_required(roles=[ADMIN])
def service_account_disable(request: AuthenticatedHttpRequest, account_id: str) -> HttpResponse:
    account = selectors.service_account_get(
        organisation=request.organisation, account_id=account_id
    )
    services.service_account_disable(account=account, disabled_by=request.user)
    messages.success(request, _("Service account disabled; its tokens no longer work."))
    return redirect("api_pages:service_accounts")


@require_POST
@organisation_member_required(roles=[ADMIN])
def api_decisions(request: AuthenticatedHttpRequest) -> HttpResponse:
    form = DecisionsForm(request.POST)
    if not form.is_valid():
        report_refusal(request, ValidationError(_("Choose on or off.")))
        return redirect("api_pages:service_accounts")
    confirmation = step_up(request)
    if confirmation.response is not None:
        return confirmation.response
    services.api_decisions_set(
        organisation=request.organisation,
        changed_by=request.user,
        allow=form.cleaned_data["allow_decisions"],
    )
    messages.success(request, _("API settings saved."))
    return redirect("api_pages:service_accounts")
