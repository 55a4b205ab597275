from allauth.account.decorators import reauthentication_required
from allauth.account.internal.flows.login import perform_login
from allauth.account.models import Login
from allauth.account.views import SignupView
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.forms import BaseForm
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.i18n import set_language

from accounts import invitations, selectors, services
from accounts.forms import (
    InvitationForm,
    InvitationSignupForm,
    OrganisationSwitchForm,
    PersonPreferencesForm,
    RoleChangeForm,
)
from accounts.models import Membership
from accounts.permissions import (
    ADMIN,
    AuthenticatedHttpRequest,
    SignedInHttpRequest,
    admin_required,
    is_admin,
    organisation_member_required,
)
from core.web import add_form_errors, report_refusal


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/")


class OrganisationSignupView(SignupView):
    """allauth's sign-up, with the person and their organisation written in one transaction."""

    def form_valid(self, form: BaseForm) -> HttpResponseBase:
        try:
            with transaction.atomic():
                return super().form_valid(form)
        except ValidationError as error:
            # A rule that only the database can check (another sign-up took the account UID a
            # moment ago): nothing was written; show it on the form.
            add_form_errors(form, error)
            return self.form_invalid(form)


organisation_signup = OrganisationSignupView.as_view()


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return render(request, "accounts/landing.html")
    membership = selectors.current_membership(request)
    if membership is None:
        return redirect("accounts:no_organisation")
    organisation = membership.organisation
    members = selectors.organisation_members(organisation=organisation)
    context = {
        "membership": membership,
        "organisation": organisation,
        "member_count": members.count(),
        "admin_count": selectors.organisation_admin_count(organisation=organisation),
        "open_invitation_count": (
            selectors.organisation_open_invitations(organisation=organisation).count()
            if membership.role == ADMIN
            else None
        ),
        "mfa_enabled": is_mfa_enabled(request.user, types=["totp"]),
    }
    return render(request, "accounts/home.html", context)


@login_required
@require_GET
def no_organisation(request: HttpRequest) -> HttpResponse:
    if selectors.current_membership(request) is not None:
        return redirect("accounts:home")
    return render(request, "accounts/no_organisation.html", status=403)


def _members_page(
    request: AuthenticatedHttpRequest,
    *,
    invite_form: InvitationForm | None = None,
    status: int = 200,
) -> HttpResponse:
    membership = request.membership
    organisation = membership.organisation
    admin = is_admin(request)
    members = list(selectors.organisation_members(organisation=organisation))
    context = {
        "organisation": organisation,
        "membership": membership,
        "is_admin": admin,
        "members": [
            {
                "membership": member,
                "role_form": RoleChangeForm(
                    organisation=organisation,
                    initial={"role": member.role},
                    prefix=f"m-{member.pk}",
                )
                if admin
                else None,
            }
            for member in members
        ],
        "invitations": (
            selectors.organisation_open_invitations(organisation=organisation) if admin else []
        ),
        "invite_form": invite_form
        if invite_form is not None
        else (InvitationForm(organisation=organisation) if admin else None),
    }
    return render(request, "accounts/members.html", context, status=status)


@organisation_member_required
@require_GET
def members(request: AuthenticatedHttpRequest) -> HttpResponse:
    return _members_page(request)


@admin_required
@require_POST
@reauthentication_required
def member_invite(request: AuthenticatedHttpRequest) -> HttpResponse:
    organisation = request.organisation
    form = InvitationForm(request.POST, organisation=organisation)
    if form.is_valid():
        try:
            invitation = invitations.invitation_create(
                organisation=organisation,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                invited_by=request.user,
                base_url=_base_url(request),
            )
        except ValidationError as error:
            add_form_errors(form, error)
        else:
            if invitation.email_delivery_failed:
                messages.warning(
                    request,
                    _(
                        "The invitation for %(email)s was created, but the email could not be "
                        "sent. Try Resend in a moment."
                    )
                    % {"email": invitation.email},
                )
            else:
                messages.success(
                    request,
                    _("Invitation sent to %(email)s as %(role)s.")
                    % {"email": invitation.email, "role": invitation.get_role_display()},
                )
            return redirect("accounts:members")
    return _members_page(request, invite_form=form, status=400)


@admin_required
@require_POST
def invitation_resend(request: AuthenticatedHttpRequest, invitation_id: str) -> HttpResponse:
    invitation = selectors.invitation_get_for_organisation(
        organisation=request.organisation,
        invitation_id=invitation_id,
    )
    try:
        invitation = invitations.invitation_resend(
            invitation=invitation, resent_by=request.user, base_url=_base_url(request)
        )
    except ValidationError as error:
        report_refusal(request, error)
    else:
        if invitation.email_delivery_failed:
            messages.warning(
                request,
                _("The email to %(email)s could not be sent.") % {"email": invitation.email},
            )
        else:
            messages.success(
                request,
                _("A new invitation link was sent to %(email)s.") % {"email": invitation.email},
            )
    return redirect("accounts:members")


@admin_required
@require_POST
def invitation_cancel(request: AuthenticatedHttpRequest, invitation_id: str) -> HttpResponse:
    invitation = selectors.invitation_get_for_organisation(
        organisation=request.organisation,
        invitation_id=invitation_id,
    )
    try:
        invitations.invitation_cancel(invitation=invitation, cancelled_by=request.user)
    except ValidationError as error:
        report_refusal(request, error)
    else:
        messages.success(
            request,
            _("The invitation for %(email)s was cancelled.") % {"email": invitation.email},
        )
    return redirect("accounts:members")


@admin_required
@require_POST
@reauthentication_required
def member_change_role(request: AuthenticatedHttpRequest, membership_id: str) -> HttpResponse:
    organisation = request.organisation
    member = selectors.membership_get_for_organisation(
        organisation=organisation, membership_id=membership_id
    )
    form = RoleChangeForm(request.POST, organisation=organisation, prefix=f"m-{member.pk}")
    if not form.is_valid():
        messages.error(request, _("Choose one of this organisation's roles."))
        return redirect("accounts:members")
    try:
        services.membership_change_role(
            membership=member, role=form.cleaned_data["role"], changed_by=request.user
        )
    except ValidationError as error:
        report_refusal(request, error)
    else:
        member.refresh_from_db()
        messages.success(
            request,
            _("%(email)s is now %(role)s.")
            % {"email": member.user.email, "role": member.get_role_display()},
        )
    return redirect("accounts:members")


@admin_required
@require_http_methods(["GET", "POST"])
@reauthentication_required(allow_get=True)
def member_remove(request: AuthenticatedHttpRequest, membership_id: str) -> HttpResponse:
    organisation = request.organisation
    member = selectors.membership_get_for_organisation(
        organisation=organisation, membership_id=membership_id
    )
    if request.method == "GET":
        return render(
            request,
            "accounts/member_remove.html",
            {"organisation": organisation, "member": member},
        )
    email = member.user.email
    removing_self = member.user_id == request.user.pk
    try:
        services.membership_remove(membership=member, removed_by=request.user)
    except ValidationError as error:
        report_refusal(request, error)
        return redirect("accounts:members")
    if removing_self:
        # Their own sessions, this one included, have just ended.
        return redirect("account_login")
    messages.success(
        request,
        _("%(email)s was removed from %(organisation)s and signed out everywhere.")
        % {"email": email, "organisation": organisation.name},
    )
    return redirect("accounts:members")


@login_required
@require_POST
def switch_organisation(request: SignedInHttpRequest) -> HttpResponse:
    form = OrganisationSwitchForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of your organisations."))
        return redirect("accounts:home")
    target = selectors.membership_get_for_user(
        user=request.user, organisation_id=form.cleaned_data["organisation"]
    )
    current = selectors.current_membership(request)
    if current is None or current.pk != target.pk:
        services.organisation_switch(user=request.user, from_membership=current, to=target)
        request.session[selectors.CURRENT_ORGANISATION_SESSION_KEY] = str(target.organisation_id)
        messages.success(
            request,
            _("You are now working in %(organisation)s as %(role)s.")
            % {"organisation": target.organisation.name, "role": target.get_role_display()},
        )
    return redirect("accounts:home")


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = selectors.invitation_get_by_token(raw_token=token)
    context: dict = {"invitation": invitation, "organisation": invitation.organisation}
    if not invitation.is_pending:
        return render(request, "accounts/invitation_closed.html", context, status=410)

    user = request.user
    if user.is_authenticated:
        owns = invitations.user_owns_email(user=user, email=invitation.email)
        already_member = Membership.objects.filter(
            user=user, organisation=invitation.organisation
        ).exists()
        context.update({"owns_email": owns, "already_member": already_member})
        if request.method == "POST" and owns and not already_member:
            try:
                membership = invitations.invitation_accept(invitation=invitation, user=user)
            except ValidationError as error:
                report_refusal(request, error)
                return redirect(request.path)
            request.session[selectors.CURRENT_ORGANISATION_SESSION_KEY] = str(
                membership.organisation_id
            )
            messages.success(
                request,
                _("Welcome to %(organisation)s. You are %(role)s there.")
                % {
                    "organisation": membership.organisation.name,
                    "role": membership.get_role_display().lower(),
                },
            )
            return redirect("accounts:home")
        status = 400 if request.method == "POST" else 200
        return render(request, "accounts/invitation_accept.html", context, status=status)

    has_account = selectors.user_exists_with_email(email=invitation.email)
    context["has_account"] = has_account
    if has_account:
        if request.method == "POST":
            return redirect(request.path)
        return render(request, "accounts/invitation_accept.html", context)

    form = InvitationSignupForm(
        request.POST if request.method == "POST" else None, email=invitation.email
    )
    if request.method == "POST" and form.is_valid():
        try:
            membership = invitations.invitation_accept_as_new_user(
                invitation=invitation,
                password=form.cleaned_data["password1"],
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            request.session[selectors.CURRENT_ORGANISATION_SESSION_KEY] = str(
                membership.organisation_id
            )
            messages.success(
                request,
                _("Welcome to %(organisation)s. Your account is ready.")
                % {"organisation": membership.organisation.name},
            )
            # allauth's own login flow, so its stages (MFA, session tracking) and signals run.
            return perform_login(request, Login(user=membership.user, redirect_url="/"))
    context["form"] = form
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/invitation_accept.html", context, status=status)


@require_POST
def language_set(request: HttpRequest) -> HttpResponse:
    """The header's language switcher: Django's `set_language` (the browser's cookie, a safe
    `next`), and for a signed-in person their profile too, so every browser, email and chat
    message follows."""
    response = set_language(request)
    language = request.POST.get("language", "")
    if request.user.is_authenticated and language in dict(settings.LANGUAGES):
        services.person_language_set(user=request.user, language=language)
    return response


@login_required
@require_http_methods(["GET", "POST"])
def preferences(request: SignedInHttpRequest) -> HttpResponse:
    user = request.user
    form = PersonPreferencesForm(
        request.POST or None,
        initial={"language": user.language, "time_zone": user.time_zone or "UTC"},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.person_preferences_update(
                user=user,
                language=form.cleaned_data["language"],
                time_zone=form.cleaned_data["time_zone"],
            )
        except ValidationError as error:
            add_form_errors(form, error)
        else:
            language = user.language or translation.get_language_from_request(request)
            translation.activate(language)
            messages.success(request, _("Your language and time zone are saved."))
            response = redirect("accounts:preferences")
            if user.language:
                response.set_cookie(
                    settings.LANGUAGE_COOKIE_NAME,
                    user.language,
                    max_age=settings.LANGUAGE_COOKIE_AGE,
                    secure=settings.LANGUAGE_COOKIE_SECURE,
                    httponly=settings.LANGUAGE_COOKIE_HTTPONLY,
                    samesite=settings.LANGUAGE_COOKIE_SAMESITE,  # type: ignore[arg-type]
                )
            return response
    status = 400 if form.is_bound else 200
    return render(request, "accounts/preferences.html", {"form": form}, status=status)
