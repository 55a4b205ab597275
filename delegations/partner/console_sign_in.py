"""One-click console sign-in (PORTAL_CONSOLE_FEDERATION): the portal assumes the role as the
person (the partner's broker key, their session name, SourceIdentity, their session policy, a
duration bounded by the delegation), exchanges the STS credentials for a single-use sign-in
token at the federation endpoint and hands back the `Action=Login` URL the browser is sent to.

The STS secret never reaches the browser; the login URL is a secret while its token lives
(about 30 s), so it is never logged, stored or cached. The issuance is recorded and audited
like any credentials (`via=console`)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from accounts.models import User
from cloud import console
from cloud.errors import CloudError
from delegations.models import CredentialIssuance, StaffAssignment
from delegations.partner.credentials import CredentialRefused, credentials_issue

# How long a federation sign-in token lives (the cloud's figure: about 30 s, single use).
SIGNIN_TOKEN_SECONDS = 30


def console_signin_base_url() -> str:
    """The federation endpoint's host: the only origin the Open console form may end on."""
    return str(settings.ALIBABA_CONSOLE_SIGNIN_URL)


def console_destination() -> str:
    """Where the console opens: PORTAL_CONSOLE_DESTINATION, else the sign-in host's console."""
    configured = str(getattr(settings, "PORTAL_CONSOLE_DESTINATION", "") or "")
    return configured or f"{settings.ALIBABA_CONSOLE_SIGNIN_URL.rstrip('/')}/console"


def console_sign_in_url(*, assignment: StaffAssignment, user: User, login_url: str) -> str:
    """The federation login URL for this person's assignment, or CredentialRefused (with a
    message the person can act on; a refused cloud call is audited as for credentials)."""
    if not getattr(settings, "PORTAL_CONSOLE_FEDERATION", False):
        raise CredentialRefused(
            "ConsoleFederationOff",
            gettext("One-click console sign-in is turned off here; use the Switch role link."),
            status=404,
        )
    try:
        issued = credentials_issue(
            assignment=assignment,
            user=user,
            duration_seconds=None,  # the longest allowed
            via=CredentialIssuance.Via.CONSOLE,
        )
    except ValidationError:
        # The only bad input of a console sign-in: not even the shortest session fits.
        raise CredentialRefused(
            "DurationTooLong", gettext("Less than 15 minutes are left on this access."), status=400
        ) from None
    try:
        token = console.federation_signin_token(
            signin_base_url=settings.ALIBABA_CONSOLE_SIGNIN_URL,
            credentials=issued.credentials,
            ticket_type=str(getattr(settings, "PORTAL_CONSOLE_TICKET_TYPE", "normal")),
            timeout_seconds=float(settings.ALIBABA_CLOUD_READ_TIMEOUT_MS) / 1000,
        )
    except CloudError as error:
        reason = error.code or error.category.value
        raise CredentialRefused(
            "ConsoleSignInFailed",
            gettext(
                "The console sign-in endpoint refused or did not answer (%(reason)s); "
                "use the Switch role link, or try again in a moment."
            )
            % {"reason": reason},
            status=502,
        ) from None
    return console.federation_login_url(
        signin_base_url=settings.ALIBABA_CONSOLE_SIGNIN_URL,
        signin_token=token,
        login_url=login_url,
        destination=console_destination(),
    )
