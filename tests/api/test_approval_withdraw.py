"""An approver takes back their own approval through the API, as on the request page, while
the request still waits for its quorum: under the same checks as approving through the API
(the `decide` scope, the organisation's switch, a fresh-MFA token, an owner admin), answered
with the delegation, audited as the token, and a 409 when there is no approval of theirs. The
same for an extension's approval, beside approving the extension (answered with the
extension)."""

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from accounts.models import Organisation, User
from api.models import SERVICE_ACCOUNT_SCOPES, ApiToken
from api.services import api_decisions_set, service_account_create, token_prefix_of
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set
from delegations.lifecycle.extensions import extension_approve
from delegations.lifecycle.services import delegation_approve
from delegations.models import CatalogRole, Delegation, DelegationExtension
from tests.api.test_api import problem
from tests.delegations.approvals.test_approval_withdraw import approvers_of
from tests.delegations.approvals.test_extension_approval_withdraw import asked  # noqa: F401

pytestmark = pytest.mark.django_db
S = Delegation.Status


def url(delegation: Delegation) -> str:
    return f"/api/v1/delegations/{delegation.pk}/approval/withdraw/"


@pytest.fixture
def approved_once(
    requested: Delegation, ecs_admin: CatalogRole, owner_admin: User, owner_admin_2: User
) -> Delegation:
    """A request of a role that needs two approvals, approved by `owner_admin` only."""
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    assert approvers_of(requested) == {owner_admin.pk}
    return requested


def test_an_approver_withdraws_their_approval_audited_as_the_token(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    approved_once: Delegation,
    decisions_on: None,
) -> None:
    raw = make_token(owner_admin, scopes=("read", "decide"), with_mfa=True)
    version = Delegation.objects.get(pk=approved_once.pk).version
    # The body is ignored: the action takes none.
    response = api(raw).post(url(approved_once))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(approved_once.pk)
    assert body["status"] == "requested" and body["version"] == version
    assert approvers_of(approved_once) == set()
    event = AuditEvent.objects.get(action="delegation.approval_withdrawn")
    assert event.source == f"api:token:{token_prefix_of(raw)}"
    assert event.actor_id == owner_admin.pk
    assert event.metadata["approvals_counted"] == 0


def test_nothing_to_withdraw_is_a_409_and_changes_nothing(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    owner_admin_2: User,
    approved_once: Delegation,
    decisions_on: None,
) -> None:
    # Another approver has no approval of their own here: theirs is not to take back.
    other = api(make_token(owner_admin_2, with_mfa=True))
    body = problem(other.post(url(approved_once)), 409, "conflict")
    assert "no approval" in body["detail"]
    assert approvers_of(approved_once) == {owner_admin.pk}
    # A second call by the approver who withdrew finds nothing left to withdraw either.
    mine = api(make_token(owner_admin, with_mfa=True))
    assert mine.post(url(approved_once)).status_code == 200
    problem(mine.post(url(approved_once)), 409, "conflict")
    assert AuditEvent.objects.filter(action="delegation.approval_withdrawn").count() == 1


def test_an_approval_that_completed_the_quorum_is_a_409(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    owner_admin_2: User,
    approved_once: Delegation,
    decisions_on: None,
) -> None:
    delegation_approve(delegation=approved_once, approved_by=owner_admin_2, with_mfa=True)
    body = problem(
        api(make_token(owner_admin, with_mfa=True)).post(url(approved_once)), 409, "conflict"
    )
    assert "already decided" in body["detail"]
    assert Delegation.objects.get(pk=approved_once.pk).status == S.APPROVED
    assert approvers_of(approved_once) == {owner_admin.pk, owner_admin_2.pk}


def test_decisions_through_the_api_must_be_on(
    api: Callable, make_token: Callable, owner_admin: User, approved_once: Delegation
) -> None:
    client = api(make_token(owner_admin, with_mfa=True))
    problem(client.post(url(approved_once)), 403, "decisions-disabled")
    assert approvers_of(approved_once) == {owner_admin.pk}


def test_the_token_must_be_fresh_from_mfa(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    approved_once: Delegation,
    decisions_on: None,
) -> None:
    problem(
        api(make_token(owner_admin, with_mfa=False)).post(url(approved_once)), 403, "mfa-required"
    )
    stale = make_token(owner_admin, with_mfa=True)
    ApiToken.objects.filter(prefix=token_prefix_of(stale)).update(
        created_at=timezone.now() - dt.timedelta(hours=13)
    )
    problem(api(stale).post(url(approved_once)), 403, "mfa-required")
    assert approvers_of(approved_once) == {owner_admin.pk}


def test_the_token_must_hold_the_decide_scope(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    approved_once: Delegation,
    decisions_on: None,
) -> None:
    client = api(make_token(owner_admin, scopes=("read", "request"), with_mfa=True))
    body = problem(client.post(url(approved_once)), 403, "insufficient-scope")
    assert body["required_scope"] == "decide"
    assert approvers_of(approved_once) == {owner_admin.pk}


@pytest.mark.parametrize("who", ["auditor", "partner_admin"])
def test_only_the_owners_admins_withdraw(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    approved_once: Delegation,
    decisions_on: None,
    who: str,
    request: pytest.FixtureRequest,
) -> None:
    caller = request.getfixturevalue(who)
    problem(api(make_token(caller, with_mfa=True)).post(url(approved_once)), 403, "forbidden")
    assert approvers_of(approved_once) == {owner_admin.pk}


def test_a_service_account_never_withdraws_an_approval(
    api: Callable,
    owner_admin: User,
    company_a: Organisation,
    approved_once: Delegation,
    decisions_on: None,
) -> None:
    raw = service_account_create(
        organisation=company_a,
        created_by=owner_admin,
        name="pipeline",
        scopes=SERVICE_ACCOUNT_SCOPES,
        expires_in_days=1,
    ).raw
    problem(api(raw).post(url(approved_once)), 403, "insufficient-scope")
    assert approvers_of(approved_once) == {owner_admin.pk}


def test_another_organisations_request_is_404(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    foreign_owner_admin: User,
    company_c: Organisation,
    approved_once: Delegation,
) -> None:
    api_decisions_set(organisation=company_c, changed_by=foreign_owner_admin, allow=True)
    client = api(make_token(foreign_owner_admin, with_mfa=True))
    problem(client.post(url(approved_once)), 404, "not-found")
    assert approvers_of(approved_once) == {owner_admin.pk}


def test_the_schema_lists_it_with_its_problems() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"]["/api/v1/delegations/{delegation_id}/approval/withdraw/"]["post"]
    assert "requestBody" not in operation
    assert set(operation["responses"]) == {"200", "401", "403", "404", "406", "409", "503"}
    assert operation["security"] == [{"PersonalAccessToken": []}]


# --- an extension's approval, beside approving it ----------------------------------------------


def extension_url(extension: DelegationExtension) -> str:
    return (
        f"/api/v1/delegations/{extension.delegation_id}/extensions/{extension.pk}"
        "/approval/withdraw/"
    )


@pytest.fixture
def extension_once(asked: DelegationExtension) -> DelegationExtension:  # noqa: F811
    """An extension of a role that needs two approvals, approved by `owner_admin` only
    (the page's own tests' `asked`)."""
    return asked


def extension_approvers(extension: DelegationExtension) -> list[object]:
    return [
        entry["approver"] for entry in DelegationExtension.objects.get(pk=extension.pk).approvals
    ]


def test_an_approver_withdraws_their_extension_approval_audited_as_the_token(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    extension_once: DelegationExtension,
    decisions_on: None,
) -> None:
    raw = make_token(owner_admin, scopes=("read", "decide"), with_mfa=True)
    response = api(raw).post(extension_url(extension_once))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(extension_once.pk)
    assert body["status"] == "requested" and body["approvals_counted"] == 0
    assert extension_approvers(extension_once) == []
    event = AuditEvent.objects.get(action="delegation.extension_approval_withdrawn")
    assert event.source == f"api:token:{token_prefix_of(raw)}"
    assert event.actor_id == owner_admin.pk
    assert event.metadata["extension"] == str(extension_once.pk)


def test_no_extension_approval_to_withdraw_is_a_409_and_changes_nothing(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    owner_admin_2: User,
    extension_once: DelegationExtension,
    decisions_on: None,
) -> None:
    url = extension_url(extension_once)
    body = problem(api(make_token(owner_admin_2, with_mfa=True)).post(url), 409, "conflict")
    assert "no approval" in body["detail"]
    assert extension_approvers(extension_once) == [owner_admin.pk]
    mine = api(make_token(owner_admin, with_mfa=True))
    assert mine.post(url).status_code == 200
    problem(mine.post(url), 409, "conflict")
    assert AuditEvent.objects.filter(action="delegation.extension_approval_withdrawn").count() == 1


def test_an_extension_approval_that_completed_the_quorum_is_a_409(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    owner_admin_2: User,
    extension_once: DelegationExtension,
    decisions_on: None,
) -> None:
    extension_approve(extension=extension_once, approved_by=owner_admin_2, with_mfa=True)
    body = problem(
        api(make_token(owner_admin, with_mfa=True)).post(extension_url(extension_once)),
        409,
        "conflict",
    )
    assert "already decided" in body["detail"]
    assert extension_approvers(extension_once) == [owner_admin.pk, owner_admin_2.pk]


def test_withdrawing_an_extension_approval_takes_what_approving_it_takes(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    partner_admin: User,
    foreign_owner_admin: User,
    company_c: Organisation,
    extension_once: DelegationExtension,
) -> None:
    url = extension_url(extension_once)
    problem(api(make_token(owner_admin, with_mfa=True)).post(url), 403, "decisions-disabled")
    api_decisions_set(
        organisation=extension_once.delegation.owner, changed_by=owner_admin, allow=True
    )
    problem(api(make_token(owner_admin, with_mfa=False)).post(url), 403, "mfa-required")
    scoped = api(make_token(owner_admin, scopes=("read", "request"), with_mfa=True))
    assert problem(scoped.post(url), 403, "insufficient-scope")["required_scope"] == "decide"
    problem(api(make_token(partner_admin, with_mfa=True)).post(url), 403, "forbidden")
    api_decisions_set(organisation=company_c, changed_by=foreign_owner_admin, allow=True)
    problem(api(make_token(foreign_owner_admin, with_mfa=True)).post(url), 404, "not-found")
    missing = url.replace(str(extension_once.pk), str(uuid.UUID(int=0)))
    problem(api(make_token(owner_admin, with_mfa=True)).post(missing), 404, "not-found")
    assert extension_approvers(extension_once) == [owner_admin.pk]


def test_the_schema_lists_the_extension_withdrawal_with_its_problems() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    path = "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/approval/withdraw/"
    operation = schema["paths"][path]["post"]
    assert "requestBody" not in operation
    assert set(operation["responses"]) == {"200", "401", "403", "404", "406", "409", "503"}
    assert operation["security"] == [{"PersonalAccessToken": []}]


# --- where the quorum stands, in what the API answers -------------------------------------------


def test_a_delegation_says_how_many_approvals_it_has_and_needs_while_it_waits(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    owner_admin_2: User,
    partner_admin: User,
    approved_once: Delegation,
    decisions_on: None,
) -> None:
    """An approval that does not complete the quorum, and a withdrawal, change neither the
    status nor the version: the counts are what a client sees move."""
    detail = f"/api/v1/delegations/{approved_once.pk}/"
    for reader in (owner_admin, partner_admin):
        body = api(make_token(reader, scopes=("read",))).get(detail).json()
        assert (body["approvals_counted"], body["approvals_required"]) == (1, 2)
    listed = api(make_token(owner_admin, scopes=("read",))).get("/api/v1/delegations/").json()
    assert [(d["approvals_counted"], d["approvals_required"]) for d in listed["results"]] == [
        (1, 2)
    ]
    first = api(make_token(owner_admin, with_mfa=True))
    withdrawn = first.post(url(approved_once)).json()
    assert (withdrawn["approvals_counted"], withdrawn["approvals_required"]) == (0, 2)
    approved = first.post(f"{detail}approve/").json()
    assert approved["status"] == "requested" and approved["version"] == withdrawn["version"]
    assert (approved["approvals_counted"], approved["approvals_required"]) == (1, 2)
    # Decided, it waits for nothing: the counts are no longer given.
    decided = api(make_token(owner_admin_2, with_mfa=True)).post(f"{detail}approve/").json()
    assert decided["status"] == "approved"
    assert decided["approvals_counted"] is None and decided["approvals_required"] is None


def test_an_extension_says_how_many_approvals_it_needs_while_it_waits(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    owner_admin_2: User,
    extension_once: DelegationExtension,
    decisions_on: None,
) -> None:
    one = f"/api/v1/delegations/{extension_once.delegation_id}/extensions/{extension_once.pk}/"
    body = api(make_token(owner_admin, scopes=("read",))).get(one).json()
    assert (body["approvals_counted"], body["approvals_required"]) == (1, 2)
    withdrawn = api(make_token(owner_admin, with_mfa=True)).post(extension_url(extension_once))
    assert (withdrawn.json()["approvals_counted"], withdrawn.json()["approvals_required"]) == (0, 2)
    extension_approve(extension=extension_once, approved_by=owner_admin, with_mfa=True)
    extension_approve(extension=extension_once, approved_by=owner_admin_2, with_mfa=True)
    decided = api(make_token(owner_admin, scopes=("read",))).get(one).json()
    assert decided["status"] == "approved" and decided["approvals_required"] is None


def test_the_schema_documents_the_approval_counts_as_read_only() -> None:
    schemas = SchemaGenerator().get_schema(request=None, public=True)["components"]["schemas"]
    for component, fields in (
        ("DelegationOutput", ("approvals_counted", "approvals_required")),
        ("ExtensionOutput", ("approvals_required",)),
    ):
        for name in fields:
            field = schemas[component]["properties"][name]
            assert field["type"] == "integer" and field["readOnly"], (component, name)
            assert field.get("nullable") and field["description"], (component, name)
