"""A delegation history for the auditor's page tests, written by the real services.

`history` (a pytest fixture: import `history_fixture` to use it): an owner in its own
cloudsim account (`owner_world`), partner "Company B" with an admin and a staff member, an
auditor of the owner, and one delegation that went the whole way: offered with MFA →
applied by the real worker (its cloud calls recorded with their request ids) → active →
revoked by the owner → removed by the worker. A foreign owner with its own delegation gives
another tenant's events. `active_history` stops while the delegation is active.

`record_staff_events` adds a staff assignment and a credential issuance, in the shape the
timeline and access report read, through `audit_record` itself.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.utils import timezone

from accounts.models import Membership, Organisation, User
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from delegations.models import Delegation
from tests.fixtures.worker import OwnerWorld
from tests.personas import make_member


@dataclass
class History:
    world: OwnerWorld
    owner: Organisation
    partner: Organisation
    owner_admin: User
    auditor: User
    partner_admin: User
    partner_staff: User
    delegation: Delegation
    foreign_owner: Organisation
    foreign_admin: User
    foreign_delegation: Delegation

    def client(self, user: User) -> Client:
        client = Client()
        client.force_login(user)
        return client

    def end(self) -> None:
        """The owner revokes; the worker removes the partner from the trust policy."""
        self.world.revoke(self.delegation)
        self.world.reconcile()
        self.delegation.refresh_from_db()
        assert self.delegation.status == Delegation.Status.REVOKED

    def events(self, **filters: Any) -> list[AuditEvent]:
        return list(AuditEvent.objects.filter(**filters).order_by("sequence"))


def _second_owner(world: OwnerWorld) -> tuple[Organisation, User, Delegation]:
    """A foreign owner in the same database: its delegation and events are another tenant's."""
    from delegations.lifecycle.starting import delegation_offer
    from tests.delegations.factories import (
        CatalogRoleFactory,
        CloudAccountFactory,
        PartnerAllowanceFactory,
    )
    from tests.factories import OrganisationFactory

    foreign = OrganisationFactory(
        name="Cobalt Foreign Holdings",
        slug="cobalt-history",
        kind=Organisation.Kind.OWNER,
        account_uid="5566778899001122",
    )
    admin = make_member(foreign, Membership.Role.ADMIN, email="admin@cobalt-foreign.example")
    account = CloudAccountFactory(organisation=foreign, account_uid=foreign.account_uid)
    role = CatalogRoleFactory(cloud_account=account, role_name="foreign-ops")
    partner = OrganisationFactory(
        name="Delta Foreign Services",
        slug="delta-history",
        kind=Organisation.Kind.PARTNER,
        account_uid="9988776655443322",
    )
    PartnerAllowanceFactory(organisation=foreign, partner_account_uid=partner.account_uid)
    delegation = delegation_offer(
        owner=foreign,
        offered_by=admin,
        partner=partner,
        catalog_role=role,
        reason="Foreign secret reason",
        ends_at=None,
        with_mfa=True,
    )
    return foreign, admin, delegation


def build_history(world: OwnerWorld, *, end: bool = True) -> History:
    partner = world.partner(uid="12345678", name="Company B")
    auditor = make_member(world.organisation, Membership.Role.AUDITOR, email="auditor@a.example")
    partner_admin = make_member(partner, Membership.Role.ADMIN, email="admin@b.example")
    partner_staff = make_member(partner, Membership.Role.STAFF, email="alice@b.example")
    delegation = world.offer(partner)
    world.reconcile()
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.ACTIVE
    foreign, foreign_admin, foreign_delegation = _second_owner(world)
    history = History(
        world=world,
        owner=world.organisation,
        partner=partner,
        owner_admin=world.admin,
        auditor=auditor,
        partner_admin=partner_admin,
        partner_staff=partner_staff,
        delegation=delegation,
        foreign_owner=foreign,
        foreign_admin=foreign_admin,
        foreign_delegation=foreign_delegation,
    )
    if end:
        history.end()
    return history


@pytest.fixture(name="history")
def history_fixture(owner_world: OwnerWorld) -> History:
    """A delegation that was offered, applied, active, revoked and removed."""
    return build_history(owner_world)


@pytest.fixture(name="active_history")
def active_history_fixture(owner_world: OwnerWorld) -> History:
    """The same delegation, still active (call `.end()` to revoke it)."""
    return build_history(owner_world, end=False)


def record_staff_events(
    history: History,
    *,
    person: User,
    assigned_at_offset: dt.timedelta = dt.timedelta(0),
    credential_lifetime: dt.timedelta = dt.timedelta(hours=1),
    unassign: bool = False,
) -> list[AuditEvent]:
    """The partner admin assigns `person`, the person takes credentials (session name,
    AccessKey id, expiration; never the secret)."""
    delegation = history.delegation
    common: dict[str, Any] = {
        "organisation": delegation.owner,
        "related_organisations": [delegation.partner],
        "target": delegation,
    }
    events = []
    with transaction.atomic():
        events.append(
            audit_record(
                action=AuditAction.STAFF_ASSIGNED,
                actor=history.partner_admin,
                actor_organisation=delegation.partner,
                metadata={
                    "person": person.email,
                    "person_id": person.pk,
                    "ram_user": "alice",
                },
                **common,
            )
        )
    expiration = timezone.now() + credential_lifetime
    with transaction.atomic():
        events.append(
            audit_record(
                action=AuditAction.CREDENTIALS_ISSUED,
                actor=person,
                actor_organisation=delegation.partner,
                metadata={
                    "person": person.email,
                    "person_id": person.pk,
                    "session_name": "alice@company-b",
                    "access_key_id": "STS.NTESTACCESSKEYID",
                    "expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "duration_seconds": int(credential_lifetime.total_seconds()),
                },
                **common,
            )
        )
    if unassign:
        with transaction.atomic():
            events.append(
                audit_record(
                    action=AuditAction.STAFF_UNASSIGNED,
                    actor=history.partner_admin,
                    actor_organisation=delegation.partner,
                    metadata={"person": person.email, "person_id": person.pk},
                    **common,
                )
            )
    return events
