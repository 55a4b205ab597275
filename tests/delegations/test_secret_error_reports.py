"""Views that handle a secret keep it out of Django's error reports and the logs when they
fail, with DEBUG off and on: the AccessKey secret (connect, replace), STS credentials (the
credentials page and the credentials URI), credentials-URI keys, and partner link codes
(issue 18, item 7). Each test breaks the view after the secret is in hand."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Organisation, User
from delegations.catalog import partner_links
from delegations.connection import services as connection_services
from delegations.models import PartnerLink
from delegations.partner import credentials as credential_services
from delegations.partner import services as partner_services
from tests.delegations.factories import CloudAccountFactory
from tests.delegations.lifecycle.test_views import with_mfa
from tests.error_reports import assert_no_secret_in_reports
from tests.fixtures.partner import PartnerWorld

pytestmark = pytest.mark.django_db

# Made at run time: a literal would be in the report's source context of this file's frames.
ACCESS_KEY_SECRET = secrets.token_urlsafe(24)


def broken(*args: Any, **kwargs: Any) -> None:
    raise RuntimeError("the view failed after the secret was in hand")


def failing_client(client: Client) -> Client:
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize(
    ("page", "service"),
    [
        ("cloud_account_connect", "cloud_account_connect"),
        ("cloud_account_replace", "cloud_account_replace_key"),
    ],
)
def test_the_access_key_secret_is_in_no_report(
    login: Callable[..., Client],
    owner_admin: User,
    company_a: Organisation,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    page: str,
    service: str,
) -> None:
    if page == "cloud_account_replace":
        CloudAccountFactory(organisation=company_a)
    monkeypatch.setattr(connection_services, service, broken)
    client = failing_client(with_mfa(login(owner_admin), owner_admin))
    form = {
        "account_uid": company_a.account_uid,
        "alias": "company-a",
        "region": "cn-hangzhou",
        "access_key_id": "LTAI5tOwnerKeyId000000",
        "access_key_secret": ACCESS_KEY_SECRET,
    }
    assert_no_secret_in_reports(
        lambda: client.post(reverse(f"delegations:{page}"), form),
        lambda: [ACCESS_KEY_SECRET],
        caplog=caplog,
    )


@pytest.fixture
def alice_assigned(partner_world: PartnerWorld) -> tuple[PartnerWorld, Any]:
    world = partner_world
    active = world.active_delegation()
    assignment = world.assign(active, world.alice)
    world.drain()
    return world, assignment


def capture_issued(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every set of STS credentials issued during the test (the real issuance runs)."""
    issued: list[Any] = []
    real = credential_services.credentials_issue

    def issue(**kwargs: Any) -> Any:
        result = real(**kwargs)
        issued.append(result)
        return result

    monkeypatch.setattr(credential_services, "credentials_issue", issue)
    return issued


def sts_secrets(issued: list[Any]) -> list[str]:
    assert issued, "credentials were issued before the failure"
    return [
        secret
        for each in issued
        for secret in (each.credentials.access_key_secret, each.credentials.security_token)
    ]


def test_sts_credentials_on_the_credentials_page_are_in_no_report(
    alice_assigned: tuple[PartnerWorld, Any],
    login: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, assignment = alice_assigned
    issued = capture_issued(monkeypatch)

    def formats_then_fail(*, issued: Any) -> None:
        secret = issued.credentials.access_key_secret  # noqa: F841 - a local, as a real bug's
        raise RuntimeError("formatting failed")

    monkeypatch.setattr(credential_services, "credential_formats", formats_then_fail)
    client = failing_client(login(world.alice))
    assert_no_secret_in_reports(
        lambda: client.post(
            reverse("delegations:credentials_get", args=[assignment.delegation_id]),
            {"duration_seconds": "900"},
        ),
        lambda: sts_secrets(issued),
        caplog=caplog,
    )


def test_a_new_credentials_uri_key_is_in_no_report(
    alice_assigned: tuple[PartnerWorld, Any],
    login: Callable[..., Client],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, assignment = alice_assigned
    keys: list[str] = []
    real = partner_services.credentials_uri_create

    def create(**kwargs: Any) -> Any:
        row, raw_key = real(**kwargs)
        keys.append(raw_key)
        return row, raw_key

    monkeypatch.setattr(partner_services, "credentials_uri_create", create)
    monkeypatch.setattr(credential_services, "credentials_uri_formats", broken)
    client = failing_client(login(world.alice))
    assert_no_secret_in_reports(
        lambda: client.post(
            reverse("delegations:uri_keys", args=[assignment.delegation_id]),
            {"label": "laptop", "valid_days": "7"},
        ),
        lambda: keys,
        caplog=caplog,
    )


def test_the_credentials_uri_key_and_its_sts_secret_are_in_no_report(
    alice_assigned: tuple[PartnerWorld, Any],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    world, assignment = alice_assigned
    _row, raw_key = partner_services.credentials_uri_create(
        assignment=assignment, user=world.alice, label="cli", valid_days=7
    )
    issued = capture_issued(monkeypatch)

    def body_then_fail(*, issued: Any) -> None:
        body = {"AccessKeySecret": issued.credentials.access_key_secret}  # noqa: F841
        raise RuntimeError("answer failed")

    monkeypatch.setattr(credential_services, "credentials_uri_body", body_then_fail)
    client = Client(raise_request_exception=False)
    assert_no_secret_in_reports(
        lambda: client.get(reverse("delegations:credentials_uri", args=[raw_key])),
        lambda: [raw_key, raw_key.removeprefix("pcu_"), *sts_secrets(issued)],
        caplog=caplog,
    )


def test_a_partner_link_code_is_in_no_report(
    login: Callable[..., Client],
    partner_admin: User,
    link_a: tuple[PartnerLink, str],
    allow_b: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    code = link_a[1]
    monkeypatch.setattr(partner_links, "hash_token", broken)
    client = failing_client(with_mfa(login(partner_admin), partner_admin))
    assert_no_secret_in_reports(
        lambda: client.post(reverse("delegations:request"), {"partner_link_code": code}),
        lambda: [code, code.replace("-", "")],
        caplog=caplog,
    )
