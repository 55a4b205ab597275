from allauth.account.adapter import DefaultAccountAdapter
from allauth.mfa.adapter import DefaultMFAAdapter
from allauth.mfa.models import Authenticator
from django.conf import settings

from accounts import mfa_secrets
from accounts.models import Membership


class PortalAccountAdapter(DefaultAccountAdapter):
    """allauth's hooks into the portal.

    Sign-up registers an organisation through `accounts.forms.OrganisationSignupForm` (set in
    ACCOUNT_FORMS); sign-in events reach the audit log through `accounts.signals`.
    """

    error_messages = {
        **DefaultAccountAdapter.error_messages,
        # The same words whether the address is unknown or the password is wrong.
        "email_password_mismatch": "The email address or password is not correct.",
        "too_many_login_attempts": (
            "Too many failed sign-in attempts. Wait a few minutes, then try again."
        ),
    }


class PortalMFAAdapter(DefaultMFAAdapter):
    """allauth's MFA hooks: the admins-keep-MFA rule, and TOTP keys and recovery-code seeds
    encrypted at rest with PORTAL_ENCRYPTION_KEYS (`accounts.mfa_secrets`)."""

    error_messages = {
        **DefaultMFAAdapter.error_messages,
        "cannot_delete_authenticator": (
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
