"""When the ledger cannot record a change, the change is not made and the person is told so:
a 503 page (JSON for JSON clients) saying nothing was changed, with the request id; never an
unhandled 500 (issue 18, item 9). Each test breaks the audit insert under a real mutating view.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError
from django.test import Client
from django.urls import reverse

from accounts.models import Invitation, User
from audit import one_statement
from audit.models import AuditEvent
from delegations.models import CredentialIssuance, Delegation, OutboxMessage
from tests.delegations.lifecycle.test_views import with_mfa
from tests.fixtures.partner import PartnerWorld

pytestmark = pytest.mark.django_db


def break_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: AuditEvent, *args: Any, **kwargs: Any) -> None:
        raise DatabaseError("database or disk is full")

    monkeypatch.setattr(AuditEvent, "save", refuse)
    # PostgreSQL writes an event in one call of its own, a batch in one statement, without
    # `save`.
    monkeypatch.setattr(one_statement, "audit_append", lambda **kwargs: refuse(None))
    monkeypatch.setattr(one_statement, "audit_write_events", lambda **kwargs: refuse(None))
    monkeypatch.setattr(one_statement, "insert_events", lambda *args: refuse(None))


@pytest.fixture
def broken_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    break_ledger(monkeypatch)


def assert_nothing_was_changed_page(response: Any) -> None:
    body = response.content.decode()
    assert response.status_code == 503
    assert "Nothing was changed" in body
    assert f'data-testid="request-id">{response["X-Request-ID"]}<' in body
    assert response["Retry-After"]
    assert "Traceback" not in body and "database or disk is full" not in body


def test_approve_with_a_broken_ledger_is_a_503_and_changes_nothing(
    login: Callable[..., Client],
    owner_admin: User,
    requested: Delegation,
    broken_ledger: None,
) -> None:
    events = AuditEvent.objects.count()
    client = with_mfa(login(owner_admin), owner_admin)
    client.raise_request_exception = False
    response = client.post(
        reverse("delegations:approve", args=[requested.pk]), {"version": 1, "note": "ok"}
    )
    assert_nothing_was_changed_page(response)
    fresh = Delegation.objects.get(pk=requested.pk)
    assert fresh.status == Delegation.Status.REQUESTED and fresh.version == requested.version
    assert OutboxMessage.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_inviting_a_member_with_a_broken_ledger_is_a_503_and_sends_nothing(
    login: Callable[..., Client],
    owner_admin: User,
    broken_ledger: None,
    django_capture_on_commit_callbacks: Callable,
    mailoutbox: list,
) -> None:
    client = login(owner_admin)
    client.raise_request_exception = False
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/organisation/members/invite/", {"email": "new@example.com", "role": "auditor"}
        )
    assert_nothing_was_changed_page(response)
    assert Invitation.objects.count() == 0
    assert mailoutbox == []


def test_a_json_client_gets_a_json_503(
    login: Callable[..., Client], owner_admin: User, requested: Delegation, broken_ledger: None
) -> None:
    client = with_mfa(login(owner_admin), owner_admin)
    client.raise_request_exception = False
    response = client.post(
        reverse("delegations:approve", args=[requested.pk]),
        {"version": 1},
        HTTP_ACCEPT="application/json",
    )
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    body = json.loads(response.content)
    assert body["Code"] == "AuditUnavailable" and "nothing was changed" in body["Message"]
    assert body["RequestId"] == response["X-Request-ID"]


def test_issuing_credentials_with_a_broken_ledger_is_a_503_with_no_cloud_call(
    partner_world: PartnerWorld, login: Callable[..., Client], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = partner_world
    active = world.active_delegation()
    world.assign(active, world.alice)
    world.drain()
    break_ledger(monkeypatch)
    client = login(world.alice)
    client.raise_request_exception = False
    issued_before = CredentialIssuance.objects.count()
    since = world.sim.last_call_seq()
    response = client.post(
        reverse("delegations:credentials_get", args=[active.pk]), {"duration_seconds": "1800"}
    )
    assert_nothing_was_changed_page(response)
    assert CredentialIssuance.objects.count() == issued_before
    assert [c for c in world.sim.calls(since) if c.get("action") == "AssumeRole"] == []


def test_the_credentials_uri_answers_json_when_the_ledger_is_broken(
    partner_world: PartnerWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_ledger(monkeypatch)
    client = Client(raise_request_exception=False)
    response = client.get(reverse("delegations:credentials_uri", args=["pcu_" + "x" * 40]))
    assert response.status_code == 503 and response["Content-Type"] == "application/json"
    assert json.loads(response.content)["Code"] == "AuditUnavailable"
