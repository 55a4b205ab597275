"""`Authorization: Bearer pap_<prefix>_<secret>`: the one way into the API.

The token resolves to a caller: a person acting for one organisation (the token's, or the one
the `X-Portal-Organisation` header names, or their current one), or a service account acting
for its own. A person's membership is read on every call, so a removed member's tokens stop
working at once.
"""

from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext
from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts import selectors as account_selectors
from accounts.actors import ServiceActor
from accounts.models import Membership, Organisation, User
from accounts.permissions import admin_must_enrol_mfa
from api import services
from api.models import ApiToken
from core.client_ip import client_ip

ORGANISATION_HEADER = "X-Portal-Organisation"


@dataclass(frozen=True)
class ApiCaller:
    """Who is calling: `user` is None for a service account; `role` is the membership role,
    or None for a service account (a reader of its organisation)."""

    token: ApiToken
    organisation: Organisation
    user: User | None
    role: str | None

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.token.scopes)

    @property
    def label(self) -> str:
        if self.token.service_account is not None:
            return str(self.token.service_account)
        return str(self.user)

    @property
    def actor(self) -> User | ServiceActor:
        """Whom the lifecycle services record: the person, or the service account."""
        if self.user is not None:
            return self.user
        account = self.token.service_account
        assert account is not None  # a token has a person or a service account (a constraint)
        return ServiceActor(
            account_id=account.pk, name=account.name, organisation=account.organisation
        )


class ServiceAccountUser(AnonymousUser):
    """What `request.user` is for a service account: authenticated for DRF, nobody for the
    services (which are handed `ApiCaller.actor`, a `ServiceActor`, instead)."""

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True


def _membership(token: ApiToken, request: Request) -> Membership | None:
    user = token.user
    assert user is not None
    memberships = account_selectors.memberships_for_user(user=user)
    if token.organisation_id is not None:
        return next((m for m in memberships if m.organisation_id == token.organisation_id), None)
    wanted = request.headers.get(ORGANISATION_HEADER, "").strip()
    if wanted:
        return next((m for m in memberships if m.organisation.slug == wanted), None)
    return account_selectors.membership_resolve_current(
        memberships=memberships, preferred_organisation_id=None
    )


class BearerTokenAuthentication(BaseAuthentication):
    keyword = b"bearer"

    def authenticate(self, request: Request) -> tuple[Any, ApiCaller] | None:
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("Send exactly one token: Bearer pap_….")
        try:
            raw = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("This is not a portal token.") from None
        token = services.api_token_authenticate(raw=raw)
        if token is None:
            raise exceptions.AuthenticationFailed(
                "This token is unknown, expired or revoked; create a new one or run pap login."
            )
        if token.user is not None and not token.user.is_active:
            raise exceptions.AuthenticationFailed("This token's owner can no longer sign in.")
        if token.service_account is not None:
            caller = ApiCaller(
                token=token, organisation=token.service_account.organisation, user=None, role=None
            )
            user: Any = ServiceAccountUser()
        else:
            membership = _membership(token, request)
            if membership is None:
                raise exceptions.AuthenticationFailed(
                    "This token's owner is no longer a member of the organisation it acts for."
                )
            if admin_must_enrol_mfa(membership):
                raise exceptions.PermissionDenied(
                    gettext(
                        "Your organisation requires two-factor authentication for admins: set "
                        "up an authenticator app in the portal, then call again."
                    )
                )
            caller = ApiCaller(
                token=token,
                organisation=membership.organisation,
                user=token.user,
                role=membership.role,
            )
            user = token.user
        services.api_token_mark_used(token=token, ip=client_ip(request._request) or "")
        return user, caller

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'
