from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from accounts import emails, mfa_secrets
from accounts.models import Membership, User
from core.client_ip import client_ip


class PortalAccountAdapter(DefaultAccountAdapter):
    """allauth's hooks into the portal.

    Sign-up registers an organisation through `accounts.forms.OrganisationSignupForm` (set in
    ACCOUNT_FORMS); sign-in events reach the audit log through `accounts.signals`.
    """

    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # The same words whether the address is unknown or the password is wrong.
        "email_password_mismatch": _("The email address or password is not correct."),
        "too_many_login_attempts": _(
            "Too many failed sign-in attempts. Wait a few minutes, then try again."
        ),
    }

    def format_email_subject(self, subject: str) -> str:
        # The prefix in the recipient's language too ("[合作伙伴访问门户] ").
        return emails.subject_prefix() + str(subject)

    def send_mail(self, template_prefix: str, email: str, context: dict) -> None:
        # allauth's emails (confirmation, password reset) in the language and time zone of the
        # person the address belongs to. One who chose no language yet is the person asking
        # for this email in this very request: the page's language is theirs.
        person = User.objects.filter(email__iexact=email).first()
        if person is not None and not person.language:
            person.language = translation.get_language() or ""
        with emails.person_locale(person):
            super().send_mail(template_prefix, email, context)

    def get_client_ip(self, request: HttpRequest) -> str:
        # The audit log's notion of the client (PORTAL_TRUSTED_PROXY_COUNT), so rate limits
        # and user sessions count the same address; a malformed X-Forwarded-For falls back to
        # REMOTE_ADDR instead of allauth's ImproperlyConfigured.
        ip = client_ip(request)
        if not ip:
            raise PermissionDenied("Unable to determine client IP address")
        return ip


class PortalMFAAdapter(DefaultMFAAdapter):
    """allauth's MFA hooks: the admins-keep-MFA rule, and TOTP keys and recovery-code seeds
    encrypted at rest with PORTAL_ENCRYPTION_KEYS (`accounts.mfa_secrets`)."""

    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "cannot_delete_authenticator": _(
            "Admins must keep two-factor authentication on. Ask another admin to change your "
            "role first if you no longer need it."
        ),
    }

    def can_delete_authenticator(self, authenticator: Authenticator) -> bool:
        if not settings.PORTAL_REQUIRE_MFA:
            return True
        return not Membership.objects.filter(
            user_id=authenticator.user_id, role=Membership.Role.ADMIN
        ).exists()

    def encrypt(self, text: str) -> str:
        return mfa_secrets.seal(text)

    def decrypt(self, encrypted_text: str) -> str:
        return mfa_secrets.unseal(encrypted_text)
