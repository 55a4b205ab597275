"""Extensions through the API: the partner admin asks for more time, both sides list them,
the owner's approvers decide with the same decision rules as approving a request; foreign
ids are 404, errors are problem+json, and every change is audited as the token."""

import datetime as dt
from collections.abc import Callable

import pytest

from accounts.models import Organisation, User
from api.services import token_prefix_of
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set, approver_group_create
from delegations.models import CatalogRole, Delegation, DelegationExtension
from tests.api.test_api import problem
from tests.delegations.approvals.test_extensions import ask

pytestmark = pytest.mark.django_db
E = DelegationExtension.Status


def extensions_url(delegation: Delegation) -> str:
    return f"/api/v1/delegations/{delegation.pk}/extensions/"


def later(delegation: Delegation, hours: int = 8) -> str:
    assert delegation.ends_at is not None
    return (delegation.ends_at + dt.timedelta(hours=hours)).isoformat()


@pytest.fixture
def asked(active: Delegation, partner_admin: User) -> DelegationExtension:
    return ask(active, partner_admin)


def test_partner_admin_asks_for_more_time_audited_as_the_token(
    api: Callable, make_token: Callable, partner_admin: User, owner_admin: User, active: Delegation
) -> None:
    raw = make_token(partner_admin, scopes=("read", "request"))
    response = api(raw).post(
        extensions_url(active), {"new_ends_at": later(active), "reason": "Cut-over moved"}
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "requested" and body["reason"] == "Cut-over moved"
    assert body["delegation"] == str(active.pk) and body["approvals_counted"] == 0
    event = AuditEvent.objects.get(action="delegation.extension_requested")
    assert event.source == f"api:token:{token_prefix_of(raw)}"
    # Both sides list it; the end has not moved yet.
    for user in (partner_admin, owner_admin):
        listed = api(make_token(user, scopes=("read",))).get(extensions_url(active))
        assert listed.status_code == 200, listed.content
        assert [item["id"] for item in listed.json()] == [body["id"]]
    one = api(make_token(owner_admin, scopes=("read",))).get(
        f"{extensions_url(active)}{body['id']}/"
    )
    assert one.status_code == 200 and one.json()["new_ends_at"]
    assert Delegation.objects.get(pk=active.pk).ends_at == active.ends_at


def test_asking_needs_the_request_scope_a_partner_admin_and_valid_input(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    partner_staff: User,
    owner_admin: User,
    active: Delegation,
) -> None:
    url = extensions_url(active)
    good = {"new_ends_at": later(active), "reason": "More time"}
    problem(
        api(make_token(partner_admin, scopes=("read",))).post(url, good), 403, "insufficient-scope"
    )
    problem(api(make_token(owner_admin)).post(url, good), 403, "forbidden")
    problem(api(make_token(partner_staff)).post(url, good), 403, "forbidden")
    client = api(make_token(partner_admin, scopes=("read", "request")))
    earlier = {"new_ends_at": later(active, hours=-1), "reason": "Earlier?"}
    assert "new_ends_at" in problem(client.post(url, earlier), 400, "validation")["errors"]
    problem(client.post(url, {"new_ends_at": "tomorrow", "reason": "x"}), 400, "validation")
    problem(client.post(url, {**good, "status": "approved"}), 400, "validation")
    assert client.post(url, good).status_code == 201
    # One open extension at a time.
    problem(client.post(url, {**good, "reason": "Again"}), 400, "validation")
    assert DelegationExtension.objects.count() == 1


def test_foreign_delegations_and_extensions_are_404(
    api: Callable,
    make_token: Callable,
    partner_admin_d: User,
    owner_admin: User,
    active: Delegation,
    asked: DelegationExtension,
    decisions_on: None,
) -> None:
    stranger = api(make_token(partner_admin_d))
    problem(stranger.get(extensions_url(active)), 404, "not-found")
    problem(
        stranger.post(extensions_url(active), {"new_ends_at": later(active), "reason": "x"}),
        404,
        "not-found",
    )
    problem(stranger.get(f"{extensions_url(active)}{asked.pk}/"), 404, "not-found")
    owner = api(make_token(owner_admin, with_mfa=True))
    problem(
        owner.post(f"{extensions_url(active)}{'0' * 8}-0000-0000-0000-{'0' * 12}/approve/"),
        404,
        "not-found",
    )
    assert DelegationExtension.objects.get(pk=asked.pk).status == E.REQUESTED


def test_the_owner_approves_with_the_decision_rules_of_a_request(
    api: Callable,
    make_token: Callable,
    owner_admin_2: User,
    active: Delegation,
    asked: DelegationExtension,
    decisions_on: None,
) -> None:
    approve = f"{extensions_url(active)}{asked.pk}/approve/"
    problem(api(make_token(owner_admin_2, with_mfa=False)).post(approve), 403, "mfa-required")
    raw = make_token(owner_admin_2, with_mfa=True)
    response = api(raw).post(approve, {"note": "Fine"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    assert Delegation.objects.get(pk=active.pk).ends_at == asked.new_ends_at
    event = AuditEvent.objects.get(action="delegation.extended")
    assert event.source == f"api:token:{token_prefix_of(raw)}"
    reject = f"{extensions_url(active)}{asked.pk}/reject/"
    problem(api(raw).post(reject, {"reason": "Too late"}), 409, "conflict")


def test_decisions_are_off_until_allowed_and_partners_cannot_decide(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    partner_admin: User,
    active: Delegation,
    asked: DelegationExtension,
) -> None:
    approve = f"{extensions_url(active)}{asked.pk}/approve/"
    problem(api(make_token(owner_admin, with_mfa=True)).post(approve), 403, "decisions-disabled")
    problem(api(make_token(partner_admin, with_mfa=True)).post(approve), 403, "forbidden")
    assert DelegationExtension.objects.get(pk=asked.pk).status == E.REQUESTED


def test_a_quorum_keeps_it_requested_and_nobody_approves_twice(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    owner_admin_2: User,
    company_a: Organisation,
    ecs_admin: CatalogRole,
    active: Delegation,
    asked: DelegationExtension,
    decisions_on: None,
) -> None:
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin, owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    approve = f"{extensions_url(active)}{asked.pk}/approve/"
    first = api(make_token(owner_admin, with_mfa=True))
    response = first.post(approve)
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "requested" and response.json()["approvals_counted"] == 1
    problem(first.post(approve), 403, "forbidden")
    assert AuditEvent.objects.filter(action="delegation.extension_denied").exists()
    second = api(make_token(owner_admin_2, with_mfa=True)).post(approve)
    assert second.json()["status"] == "approved"


def test_the_owner_rejects_and_access_ends_as_planned(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    active: Delegation,
    asked: DelegationExtension,
    decisions_on: None,
) -> None:
    client = api(make_token(owner_admin, with_mfa=True))
    reject = f"{extensions_url(active)}{asked.pk}/reject/"
    problem(client.post(reject, {}), 400, "validation")
    response = client.post(reject, {"reason": "Finish next week"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "rejected"
    assert response.json()["decision_reason"] == "Finish next week"
    assert Delegation.objects.get(pk=active.pk).ends_at == asked.previous_ends_at
