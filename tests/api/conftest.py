"""The API's tests reuse the delegation world (company A's ecs-admin role, B's allowance and
A's partner link) and add tokens made through the real service."""

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import Organisation, User
from api.models import Scope
from api.services import api_decisions_set, api_token_create

# The active, four-hour delegation of the extension services' tests (tests/api/test_extensions).
from tests.delegations.approvals.test_extensions import active  # noqa: F401

# The delegation world's fixtures, shared rather than copied.
from tests.delegations.conftest import (  # noqa: F401
    allow_b,
    cloud_account_a,
    cloud_account_c,
    ecs_admin,
    foreign_role,
    link_a,
    make_request,
    owner_admin_2,
    partner_admin_d,
    requested,
)

ALL_SCOPES = tuple(Scope.values)


@pytest.fixture
def make_token() -> Callable[..., str]:
    """`make_token(user, scopes=..., organisation=..., with_mfa=...)` → the raw token."""

    def make(
        user: User,
        *,
        scopes: tuple[str, ...] = ALL_SCOPES,
        organisation: Organisation | None = None,
        with_mfa: bool = False,
        days: int = 30,
    ) -> str:
        return api_token_create(
            user=user,
            name="test",
            scopes=scopes,
            expires_in_days=days,
            organisation=organisation,
            with_mfa=with_mfa,
        ).raw

    return make


class Api:
    """A test client that sends the bearer token and JSON."""

    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def get(self, path: str, **params: Any) -> Any:
        return self.client.get(path, params, headers=self.headers)

    def post(self, path: str, body: Any = None, **extra: Any) -> Any:
        return self.client.post(
            path,
            body if body is not None else {},
            content_type="application/json",
            headers={**self.headers, **extra},
        )

    def delete(self, path: str) -> Any:
        return self.client.delete(path, headers=self.headers)


@pytest.fixture
def api() -> Callable[[str | None], Api]:
    return Api


@pytest.fixture
def decisions_on(company_a: Organisation, owner_admin: User) -> None:
    api_decisions_set(organisation=company_a, changed_by=owner_admin, allow=True)
