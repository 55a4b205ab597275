"""Tenant isolation of the delegation pages: every delegation URL, filled with ids of another
owner's delegation, partner link and drift finding (and with malformed ids), requested with
GET and POST by every persona of companies A and B. Nothing answers 5xx, no page shows the
foreign data, the answer for a foreign id is the answer for a missing one, and the foreign
objects are unchanged afterwards."""

import itertools
import uuid

import pytest
from django.test import Client
from django.urls import URLPattern, get_resolver

from accounts.models import Membership, Organisation, User
from delegations.catalog.partner_links import partner_link_create
from delegations.fleet.services import fleet_request
from delegations.lifecycle.drift import drift_record
from delegations.lifecycle.starting import delegation_request
from delegations.models import CatalogRole, Delegation, DriftFinding, FleetGrant, PartnerLink
from tests.delegations.factories import CloudAccountFactory, PartnerAllowanceFactory
from tests.personas import make_member, mark_reauthenticated_with_mfa

pytestmark = pytest.mark.django_db
FOREIGN_MARKERS = (
    "FOREIGN-REASON-7731",
    "foreign-ops",
    "Delta Foreign Services",
    "9988776655443322",
)
MISSING = str(uuid.UUID(int=0))


def delegation_routes() -> list[str]:
    resolver = get_resolver()
    (delegations,) = [
        entry
        for entry in resolver.url_patterns
        if getattr(entry, "namespace", None) == "delegations"
    ]
    routes = []
    for entry in delegations.url_patterns:
        assert isinstance(entry, URLPattern)
        routes.append("/delegations/" + str(entry.pattern))
    return routes


@pytest.fixture
def foreign(
    company_c: Organisation,
    company_d: Organisation,
    foreign_owner_admin: User,
    foreign_role: CatalogRole,
) -> dict:
    partner_admin_d = make_member(company_d, Membership.Role.ADMIN, email="d-admin@delta.example")
    PartnerAllowanceFactory(organisation=company_c, partner_account_uid=company_d.account_uid)
    link, _code = partner_link_create(
        owner=company_c, created_by=foreign_owner_admin, label="for delta"
    )
    delegation = delegation_request(
        partner=company_d,
        requested_by=partner_admin_d,
        partner_link=link,
        catalog_role=foreign_role,
        reason="FOREIGN-REASON-7731",
        ends_at=None,
    )
    finding = drift_record(
        managed_role=delegation.managed_role, kind=DriftFinding.Kind.ROLE_DELETED
    )
    # A fleet grant of the same role in another of the foreign owner's accounts (issue 12).
    staging = CloudAccountFactory(
        organisation=company_c, account_uid="9988776655440001", is_primary=False
    )
    foreign_role.extra_accounts.add(staging)
    fleet = fleet_request(
        partner=company_d,
        requested_by=partner_admin_d,
        partner_link=link,
        catalog_role=foreign_role,
        accounts=[staging],
        regions=["cn-shanghai"],
        reason="FOREIGN-REASON-7731",
        ends_at=None,
    )
    return {"delegation": delegation, "link": link, "finding": finding, "fleet": fleet}


def snapshot(foreign: dict) -> tuple:
    delegation = Delegation.objects.get(pk=foreign["delegation"].pk)
    link = PartnerLink.objects.get(pk=foreign["link"].pk)
    finding = DriftFinding.objects.get(pk=foreign["finding"].pk)
    fleet = FleetGrant.objects.get(pk=foreign["fleet"].pk)
    return (
        fleet.version,
        list(fleet.delegations.values_list("status", flat=True)),
        delegation.status,
        delegation.version,
        link.revoked_at,
        finding.resolved_at,
        Delegation.objects.count(),
        PartnerLink.objects.count(),
    )


def fill(route: str, value: str) -> str:
    return (
        route.replace("<uuid:delegation_id>", value)
        .replace("<uuid:link_id>", value)
        .replace("<uuid:finding_id>", value)
        .replace("<uuid:fleet_id>", value)
    )


@pytest.mark.parametrize("persona", ["owner_admin", "auditor", "partner_admin", "partner_staff"])
@pytest.mark.slow
def test_foreign_ids_are_missing_ids_for_every_persona(
    request: pytest.FixtureRequest, foreign: dict, persona: str, requested: Delegation
) -> None:
    user = request.getfixturevalue(persona)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    mark_reauthenticated_with_mfa(client, user)
    before = snapshot(foreign)
    foreign_ids = [str(foreign[key].pk) for key in ("delegation", "link", "finding", "fleet")]
    failures = []
    post_body = {
        "version": "1",
        "reason": "crawl",
        "resolution": "accept",
        "status": "revoked",
        "organisation": str(foreign["delegation"].owner_id),
        "code": "",
    }
    for route, method in itertools.product(delegation_routes(), ("get", "post")):
        if "<" not in route:
            continue
        missing = getattr(client, method)(fill(route, MISSING), post_body)
        for foreign_id in foreign_ids:
            response = getattr(client, method)(fill(route, foreign_id), post_body)
            body = response.content.decode(errors="replace")
            leaked = [marker for marker in FOREIGN_MARKERS if marker in body]
            if response.status_code >= 500 or leaked or response.status_code != missing.status_code:
                failures.append((method, route, foreign_id[:8], response.status_code, leaked))
    assert not failures, failures
    assert snapshot(foreign) == before


@pytest.mark.parametrize("persona", ["owner_admin", "auditor", "partner_admin"])
def test_lists_never_show_foreign_delegations(
    request: pytest.FixtureRequest, foreign: dict, persona: str, requested: Delegation
) -> None:
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    for path in (
        "/delegations/",
        "/delegations/roles/",
        "/delegations/partner-links/",
        "/delegations/fleets/",
    ):
        response = client.get(path, {"partner": str(foreign["delegation"].partner_id)})
        body = response.content.decode()
        assert response.status_code < 500
        assert not [m for m in FOREIGN_MARKERS if m in body], path
