"""Service accounts through the API (issue 16, item 4): a partner's CI pipeline files and
withdraws requests with a person-less token. The lifecycle records it as "service account
<name>" (no person row), with `source = api:token:<prefix>` and the account's id; it never
decides, never takes credentials, and acts for its own organisation only."""

import uuid
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client

from accounts.actors import ServiceActor
from accounts.models import Organisation, User
from api.services import api_decisions_set, service_account_create, token_prefix_of
from audit.models import AuditEvent
from delegations.lifecycle.starting import delegation_withdraw
from delegations.models import CatalogRole, Delegation, PartnerLink
from tests.api.test_api import problem

pytestmark = pytest.mark.django_db

DELEGATIONS = "/api/v1/delegations/"


@pytest.fixture
def pipeline(company_b: Organisation, partner_admin: User) -> str:
    """Company B's CI pipeline: a service account that reads and requests."""
    return service_account_create(
        organisation=company_b,
        created_by=partner_admin,
        name="ci-pipeline",
        scopes=["read", "request"],
        expires_in_days=30,
    ).raw


def test_a_service_account_files_and_withdraws_a_request(
    api: Callable,
    pipeline: str,
    allow_b: None,
    ecs_admin: CatalogRole,
    link_a: tuple[PartnerLink, str],
    owner_admin: User,
) -> None:
    client = api(pipeline)
    body = {"partner_link_code": link_a[1], "catalog_role": "ecs-admin", "reason": "Nightly job"}
    created = client.post(DELEGATIONS, body)
    assert created.status_code == 201, created.content
    assert created.json()["requested_by"] == "service account ci-pipeline"
    delegation = Delegation.objects.get(pk=created.json()["id"])
    assert delegation.requested_by is None
    assert delegation.requester == "service account ci-pipeline"
    assert delegation.status == Delegation.Status.REQUESTED

    prefix = token_prefix_of(pipeline)
    requested = AuditEvent.objects.get(action="delegation.requested")
    assert requested.actor is None
    assert requested.actor_label == "service account ci-pipeline"
    assert requested.actor_organisation_label == "Company B"
    assert requested.source == f"api:token:{prefix}"
    account = delegation.partner.service_accounts.get()
    assert requested.metadata["service_account"] == str(account.pk)

    # A request it made shows who made it on the owner's page too.
    owner_page = Client()
    owner_page.force_login(owner_admin)
    page = owner_page.get(f"/delegations/{delegation.pk}/").content.decode()
    assert "service account ci-pipeline" in page

    withdrawn = client.post(f"{DELEGATIONS}{delegation.pk}/withdraw/")
    assert withdrawn.status_code == 200, withdrawn.content
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.WITHDRAWN
    assert (
        delegation.withdrawn_by is None and delegation.withdrawer == "service account ci-pipeline"
    )
    event = AuditEvent.objects.get(action="delegation.withdrawn")
    assert (event.actor_label, event.source) == (
        "service account ci-pipeline",
        f"api:token:{prefix}",
    )


def test_a_service_account_never_decides_nor_takes_credentials(
    api: Callable,
    requested: Delegation,
    company_a: Organisation,
    owner_admin: User,
    pipeline: str,
) -> None:
    api_decisions_set(organisation=company_a, changed_by=owner_admin, allow=True)
    owners_pipeline = service_account_create(
        organisation=company_a,
        created_by=owner_admin,
        name="owner-ci",
        scopes=["read", "request"],
        expires_in_days=30,
    ).raw
    for raw in (owners_pipeline, pipeline):
        client = api(raw)
        for action in ("approve", "reject", "revoke"):
            answer = client.post(f"{DELEGATIONS}{requested.pk}/{action}/", {"reason": "x"})
            problem(answer, 403, "insufficient-scope")
        answer = client.post(f"/api/v1/access/{requested.pk}/credentials/", {})
        problem(answer, 403, "insufficient-scope")
    # An owner's service account cannot request (it is not a partner).
    problem(
        api(owners_pipeline).post(DELEGATIONS, {"owner": "company-a", "catalog_role": "x"}),
        403,
        "forbidden",
    )
    requested.refresh_from_db()
    assert requested.status == Delegation.Status.REQUESTED


def test_a_read_only_service_account_cannot_request(
    api: Callable,
    company_b: Organisation,
    partner_admin: User,
    allow_b: None,
    ecs_admin: CatalogRole,
    link_a: tuple[PartnerLink, str],
) -> None:
    reader = service_account_create(
        organisation=company_b,
        created_by=partner_admin,
        name="reader",
        scopes=["read"],
        expires_in_days=30,
    ).raw
    body = {"partner_link_code": link_a[1], "catalog_role": "ecs-admin", "reason": "x"}
    problem(api(reader).post(DELEGATIONS, body), 403, "insufficient-scope")
    assert not Delegation.objects.exists()


def test_the_lifecycle_takes_a_service_actor_of_the_partner_only(
    company_a: Organisation,
    company_b: Organisation,
    allow_b: None,
    ecs_admin: CatalogRole,
    link_a: tuple[PartnerLink, str],
    requested: Delegation,
) -> None:
    stranger = ServiceActor(account_id=uuid.uuid4(), name="other", organisation=company_a)
    with pytest.raises(PermissionDenied):
        delegation_withdraw(delegation=requested, withdrawn_by=stranger)
    requested.refresh_from_db()
    assert requested.status == Delegation.Status.REQUESTED
