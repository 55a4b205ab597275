"""A granted delegation in the portal's database and a scripted ActionTrail for ingestion tests.

`grant`: company A's connected account, a delegation of its role `ecs-ops` to company B, and
one set of credentials the portal issued to B's staff member (key `STS.issued-alice`).
`FakeTrail` answers `lookup_events` from pages it is given, and can fail on chosen calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Organisation, User
from cloud.actiontrail import EventPage
from cloud.errors import CloudError
from delegations.models import CredentialIssuance, Delegation, StaffAssignment
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
)

ROLE = "ecs-ops"
ROLE_ID = "300000000000000001"
ISSUED_KEY = "STS.issued-alice"


@dataclass
class Grant:
    delegation: Delegation
    staff: User
    owner: Organisation

    @property
    def cloud_account(self):
        return self.delegation.catalog_role.cloud_account


@pytest.fixture
def grant(company_a, company_b, owner_admin, partner_staff, partner_admin) -> Grant:
    account = CloudAccountFactory(organisation=company_a)
    role = CatalogRoleFactory(cloud_account=account, organisation=company_a, role_name=ROLE)
    delegation = DelegationFactory(
        catalog_role=role,
        partner=company_b,
        status=Delegation.Status.ACTIVE,
        starts_at=timezone.now() - dt.timedelta(days=10),
        activated_at=timezone.now() - dt.timedelta(days=10),
    )
    assignment = StaffAssignment.objects.create(
        delegation=delegation, partner=company_b, user=partner_staff, assigned_by=partner_admin
    )
    CredentialIssuance.objects.create(
        delegation=delegation,
        assignment=assignment,
        user=partner_staff,
        partner=company_b,
        session_name="staff@company-b",
        access_key_id=ISSUED_KEY,
        expiration=timezone.now() + dt.timedelta(hours=1),
        duration_seconds=3600,
    )
    return Grant(delegation=delegation, staff=partner_staff, owner=company_a)


def event(
    n: int,
    *,
    name: str = "DescribeInstances",
    rw: str = "Read",
    session: str = "staff@company-b",
    key: str = ISSUED_KEY,
    role: str = ROLE,
    partner_uid: str = "12345678",
    at: dt.datetime | None = None,
    error: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    moment = at or timezone.now() - dt.timedelta(minutes=n)
    body: dict[str, Any] = {
        "eventId": f"evt-{n}",
        "eventName": name,
        "eventTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "eventRW": rw,
        "eventType": "ApiCall",
        "serviceName": "Ecs",
        "acsRegion": "cn-hangzhou",
        "sourceIpAddress": "203.0.113.7",
        "requestId": f"REQ-{n}",
        "resourceName": "i-web1",
        "resourceType": "ACS::ECS::Instance",
        "userIdentity": {
            "type": "assumed-role",
            "accountId": "11223344",
            "principalId": f"{ROLE_ID}:{session}",
            "userName": f"{role}:{session}",
            "accessKeyId": key,
        },
        "requestParameters": {"stsTokenPlayerUid": partner_uid, "RegionId": "cn-hangzhou"},
    }
    if error:
        body["errorCode"] = error
    body.update(extra)
    return body


@dataclass
class FakeTrail:
    """Pages of events, served in order; `failures[n]` is raised on call number n (1-based)."""

    pages: list[list[dict[str, Any]]]
    failures: dict[int, CloudError] = field(default_factory=dict)
    calls: int = 0
    windows: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)

    def lookup_events(
        self, *, start: dt.datetime, end: dt.datetime, next_token: str | None = None, **_: Any
    ) -> EventPage:
        self.calls += 1
        self.windows.append((start, end))
        failure = self.failures.get(self.calls)
        if failure is not None:
            raise failure
        index = int(next_token) if next_token else 0
        more = index + 1 < len(self.pages)
        return EventPage(events=self.pages[index], next_token=str(index + 1) if more else None)


@pytest.fixture
def no_sleep() -> Iterator[list[float]]:
    waits: list[float] = []
    yield waits
