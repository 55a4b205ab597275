"""Persona fixtures shared by every app's tests.

Two organisations that work together (owner company A, partner company B) and two foreign ones
(owner company C, partner company D) whose data nobody in A or B may ever see. Admins have an
authenticator app, as PORTAL_REQUIRE_MFA demands.
"""

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
from cryptography.fernet import Fernet
from django.core.cache import cache
from django.test import Client

from accounts.models import Membership, Organisation, User
from tests.factories import MembershipFactory, OrganisationFactory, UserFactory

_SUITE_ENCRYPTION_KEY = Fernet.generate_key().decode()
_NO_CLOUDSIM = Path(tempfile.gettempdir()) / "portal-tests-no-cloudsim-here"


@pytest.fixture(autouse=True)
def _fast_passwords_and_fresh_rate_limits(settings: object) -> None:
    # Test-speed knob: password hashing is not what these tests measure.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # type: ignore[attr-defined]
    # allauth keeps its rate-limit counters in the cache; every test starts from zero.
    cache.clear()
    # TOTP keys are encrypted at rest (accounts.mfa_secrets) and fail closed without a key;
    # admins enrol TOTP in almost every test. Tests about the keys set their own.
    settings.PORTAL_ENCRYPTION_KEYS = [_SUITE_ENCRYPTION_KEY]  # type: ignore[attr-defined]
    # `make run` leaves cloudsim's demo keys under var/cloudsim; no test may read a developer's
    # state (seed_demo would try to connect to a cloudsim that is not running). Tests that want
    # cloudsim's demo point this at their own.
    settings.CLOUDSIM_DATA_DIR = _NO_CLOUDSIM  # type: ignore[attr-defined]


def enable_totp(user: User) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def make_member(
    organisation: Organisation, role: str, *, email: str | None = None, mfa: bool | None = None
) -> User:
    kwargs = {"email": email} if email else {}
    user = UserFactory(**kwargs)
    MembershipFactory(user=user, organisation=organisation, role=role)
    if mfa if mfa is not None else role == Membership.Role.ADMIN:
        enable_totp(user)
    return user


@pytest.fixture
def company_a(db: None) -> Organisation:
    return OrganisationFactory(
        name="Company A",
        slug="company-a",
        kind=Organisation.Kind.OWNER,
        account_uid="11223344",
        enterprise_alias="company-a",
    )


@pytest.fixture
def company_b(db: None) -> Organisation:
    return OrganisationFactory(
        name="Company B",
        slug="company-b",
        kind=Organisation.Kind.PARTNER,
        account_uid="12345678",
        enterprise_alias="company-b",
    )


@pytest.fixture
def company_c(db: None) -> Organisation:
    return OrganisationFactory(
        name="Cobalt Foreign Holdings",
        slug="cobalt",
        kind=Organisation.Kind.OWNER,
        account_uid="5566778899001122",
    )


@pytest.fixture
def company_d(db: None) -> Organisation:
    return OrganisationFactory(
        name="Delta Foreign Services",
        slug="delta",
        kind=Organisation.Kind.PARTNER,
        account_uid="9988776655443322",
    )


@pytest.fixture
def owner_admin(company_a: Organisation) -> User:
    return make_member(company_a, Membership.Role.ADMIN, email="admin@company-a.example")


@pytest.fixture
def auditor(company_a: Organisation) -> User:
    return make_member(company_a, Membership.Role.AUDITOR, email="auditor@company-a.example")


@pytest.fixture
def partner_admin(company_b: Organisation) -> User:
    return make_member(company_b, Membership.Role.ADMIN, email="admin@company-b.example")


@pytest.fixture
def partner_staff(company_b: Organisation) -> User:
    return make_member(company_b, Membership.Role.STAFF, email="alice@company-b.example")


@pytest.fixture
def foreign_owner_admin(company_c: Organisation) -> User:
    return make_member(company_c, Membership.Role.ADMIN, email="admin@cobalt-foreign.example")


@pytest.fixture
def foreign_partner_staff(company_d: Organisation) -> User:
    return make_member(company_d, Membership.Role.STAFF, email="staff@delta-foreign.example")


def mark_reauthenticated(client: Client, user: User) -> None:
    """What allauth records after a password re-entry, so sensitive views run directly."""
    session = client.session
    session["account_authentication_methods"] = [
        {"method": "password", "at": time.time(), "email": user.email, "reauthenticated": True}
    ]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()


def mark_reauthenticated_with_mfa(client: Client, user: User) -> Client:
    """What allauth records after a second-factor re-entry, for views that ask for MFA."""
    session = client.session
    session["account_authentication_methods"] = [
        {"method": "mfa", "type": "totp", "at": time.time(), "reauthenticated": True}
    ]
    session["account_authentication_methods_user"] = str(user.pk)
    session.save()
    return client


@pytest.fixture
def login() -> Callable[..., Client]:
    """`login(user)` returns a fresh client signed in as `user` (recently re-authenticated)."""

    def sign_in(
        user: User, *, reauthenticated: bool = True, client: Client | None = None
    ) -> Client:
        client = client or Client()
        client.force_login(user)
        if reauthenticated:
            mark_reauthenticated(client, user)
        return client

    return sign_in
