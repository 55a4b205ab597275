"""A granted delegation in the portal's database and a scripted ActionTrail for ingestion tests.

`grant`: company A's connected account, a delegation of its role `ecs-ops` to company B, and
one set of credentials the portal issued to B's staff member (key `STS.issued-alice`).
`FakeTrail` answers `lookup_events` from pages it is given, and can fail on chosen calls.
"""

from __future__ import annotations

import datetime as dt
import threading
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
    """Pages of events, newest first, served in order (and the other way round, each page's
    events reversed, to a reader asking for the oldest first). `failures[n]` is raised on the
    newest-first reader's call number n (1-based), `oldest_first_failures[n]` on the other's.
    Thread-safe enough for the two readers of an ingestion: each counts its own calls.
    `oldest_first_after=n` holds the oldest-first reader's calls back until the other has made
    n calls, to place a failure between the two."""

    pages: list[list[dict[str, Any]]]
    failures: dict[int, CloudError] = field(default_factory=dict)
    oldest_first_failures: dict[int, CloudError] = field(default_factory=dict)
    calls: int = 0
    oldest_first_calls: int = 0
    windows: list[tuple[dt.datetime, dt.datetime]] = field(default_factory=list)
    oldest_first_after: int = 0
    _newest_calls_made: threading.Condition = field(default_factory=threading.Condition)

    def lookup_events(
        self,
        *,
        start: dt.datetime,
        end: dt.datetime,
        next_token: str | None = None,
        oldest_first: bool = False,
        **_: Any,
    ) -> EventPage:
        self.windows.append((start, end))
        if oldest_first:
            with self._newest_calls_made:
                self._newest_calls_made.wait_for(
                    lambda: self.calls >= self.oldest_first_after, timeout=10
                )
            self.oldest_first_calls += 1
            failure = self.oldest_first_failures.get(self.oldest_first_calls)
            pages = [list(reversed(page)) for page in reversed(self.pages)]
        else:
            with self._newest_calls_made:
                self.calls += 1
                self._newest_calls_made.notify_all()
            failure = self.failures.get(self.calls)
            pages = self.pages
        if failure is not None:
            raise failure
        index = int(next_token) if next_token else 0
        more = index + 1 < len(pages)
        return EventPage(events=pages[index], next_token=str(index + 1) if more else None)


@pytest.fixture
def no_sleep() -> Iterator[list[float]]:
    waits: list[float] = []
    yield waits
