"""Receivers that forward allauth and django.contrib.auth signals to services. No logic here."""

from typing import Any

from allauth.account.signals import email_confirmed, user_logged_in
from allauth.mfa.signals import authenticator_added, authenticator_removed, authenticator_reset
from django.conf import settings
from django.contrib.auth.signals import user_login_failed
from django.dispatch import receiver

from accounts import services


@receiver(user_logged_in, dispatch_uid="accounts.audit_sign_in")
def on_user_logged_in(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    services.auth_sign_in_succeeded(user=user)
    if request is not None:
        # The sign-in form's hidden field, filled by static/js/time-zone.js from the browser.
        services.person_time_zone_default(
            user=user, browser_time_zone=str(request.POST.get("time_zone") or "")
        )
        # A language picked on the sign-in page (the switcher's cookie) becomes the person's.
        chosen = request.COOKIES.get(settings.LANGUAGE_COOKIE_NAME, "")
        if not user.language and chosen in dict(settings.LANGUAGES):
            services.person_language_set(user=user, language=chosen)


@receiver(user_login_failed, dispatch_uid="accounts.audit_sign_in_failed")
def on_user_login_failed(
    sender: Any, credentials: dict, request: Any = None, **kwargs: Any
) -> None:
    # django.contrib.auth has already masked the password in `credentials`; only the typed
    # address is passed on.
    services.auth_sign_in_failed(attempted_email=str(credentials.get("email") or ""))


@receiver(authenticator_added, dispatch_uid="accounts.audit_mfa_added")
def on_authenticator_added(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    services.mfa_authenticator_added(user=user, authenticator_type=authenticator.type)


@receiver(authenticator_removed, dispatch_uid="accounts.audit_mfa_removed")
def on_authenticator_removed(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    services.mfa_authenticator_removed(user=user, authenticator_type=authenticator.type)


@receiver(authenticator_reset, dispatch_uid="accounts.audit_mfa_reset")
def on_authenticator_reset(sender: Any, user: Any, authenticator: Any, **kwargs: Any) -> None:
    if authenticator.type == "recovery_codes":
        services.mfa_recovery_codes_regenerated(user=user)


@receiver(email_confirmed, dispatch_uid="accounts.email_confirmed")
def on_email_confirmed(sender: Any, request: Any, email_address: Any, **kwargs: Any) -> None:
    services.email_address_confirmed(email_address=email_address)
