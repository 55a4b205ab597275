"""Per-person trust against a real cloudsim process, through the official SDKs.

company-a grants a role to company-b; the owner narrows its trust policy to named people.
Named Alice may assume the role with her own key, Bob (assigned, not named) is refused by
the cloud and by the portal; leaving the name list takes her out within one reconcile; the
scope switches both ways; an ExternalId is required, passed by the portal and enforced by the
cloud; every session the portal brokers carries SourceIdentity.
"""

from __future__ import annotations

import secrets

import pytest
from django.core.exceptions import ValidationError

from audit.actions import AuditAction
from audit.models import AuditEvent
from cloud import policies
from cloud.errors import CloudError
from delegations.lifecycle.named_people import trusted_person_decide
from delegations.models import Delegation, StaffAssignment, TrustedPerson, TrustScope
from delegations.partner import services as partner_services
from delegations.partner.credentials import CredentialRefused, credentials_issue
from delegations.role_state import delegation_external_id
from delegations.trust import services
from delegations.trust.selectors import BEING_APPLIED, IN_POLICY, PENDING, trust_view
from tests.fixtures.partner import BROKER, PartnerWorld

PARTNER = "12345678"
ALICE_ARN = f"acs:ram::{PARTNER}:user/Alice"
BOB_ARN = f"acs:ram::{PARTNER}:user/Bob"
BROKER_ARN = f"acs:ram::{PARTNER}:user/{BROKER}"
ROOT_ARN = f"acs:ram::{PARTNER}:root"


def _trust(world: PartnerWorld) -> dict:
    role = world.owner_root().get_role(world.role_name)
    assert role is not None
    return policies.canonical_policy(role.trust_document, trust=True)


def _principals(world: PartnerWorld) -> frozenset[str]:
    return policies.trust_policy_principals(_trust(world)).ram


def _set_scope(
    world: PartnerWorld,
    delegation: Delegation,
    scope: str,
    *,
    cap: int = 3,
    external_id=False,
    trust_broker: bool | None = True,
) -> Delegation:
    """The owner's scope change; these tests broker through the portal, so the owner says the
    broker is trusted unless a test asks for the rule (`trust_broker=None`: by use)."""
    changed = services.trust_scope_set(
        delegation=delegation,
        changed_by=world.owner_admin,
        scope=scope,
        named_people_cap=cap,
        require_external_id=external_id,
        with_mfa=True,
        trust_broker=trust_broker,
    )
    delegation.refresh_from_db()
    return changed


def _assume(world: PartnerWorld, name: str, **kwargs) -> bool:
    try:
        world.as_ram_user(name).assume_role(
            role_arn=world.role_arn,
            session_name=f"check-{secrets.token_hex(3)}",
            duration_seconds=900,
            **kwargs,
        )
    except CloudError as error:
        assert error.code == "NoPermission", error
        return False
    return True


@pytest.fixture
def staffed(partner_world: PartnerWorld) -> tuple[PartnerWorld, Delegation, dict]:
    world = partner_world
    delegation = world.active_delegation()
    world.link(world.alice, "Alice")
    world.link(world.bob, "Bob")
    assignments = {
        "alice": world.assign(delegation, world.alice),
        "bob": world.assign(delegation, world.bob),
    }
    world.drain()
    assert _assume(world, "Alice") and _assume(world, "Bob")  # the whole account is trusted
    return world, delegation, assignments


def test_owner_approved_names_alice_only_and_bob_is_refused_by_cloud_and_portal(staffed) -> None:
    world, delegation, assignments = staffed
    _set_scope(world, delegation, TrustScope.NAMED_OWNER_APPROVED)
    person = services.trusted_person_propose(
        delegation=delegation, proposed_by=world.partner_admin, ram_user_name="alice"
    )
    assert person.ram_user_name == "Alice"  # as RAM spells it (GetUser)
    assert [r.state for r in trust_view(delegation).rows] == [PENDING]
    world.drain()
    # Nobody is named yet: the partner's root is gone and nobody else got in.
    assert ROOT_ARN not in _principals(world)
    assert not _assume(world, "Alice")

    trusted_person_decide(person=person, decided_by=world.owner_admin, approve=True, with_mfa=True)
    assert [r.state for r in trust_view(delegation).rows] == [BEING_APPLIED]
    world.drain()
    assert _principals(world) == {ALICE_ARN, BROKER_ARN}
    delegation.refresh_from_db()
    assert delegation.status == Delegation.Status.ACTIVE
    assert [r.state for r in trust_view(delegation).rows] == [IN_POLICY]
    assert _assume(world, "Alice")
    assert not _assume(world, "Bob")

    with pytest.raises(CredentialRefused) as refused:
        credentials_issue(assignment=assignments["bob"], user=world.bob, duration_seconds=900)
    assert refused.value.code == "NotNamed"
    assert "propose you" in str(refused.value.message)

    issued = credentials_issue(
        assignment=assignments["alice"], user=world.alice, duration_seconds=900
    )
    assert issued.issuance.session_name == "alice@company-b"
    call = next(
        c
        for c in reversed(world.sim.calls(0))
        if c.get("action") == "AssumeRole"
        and c.get("parameters", {}).get("RoleSessionName") == "alice@company-b"
    )
    assert call["parameters"].get("SourceIdentity") == "alice@company-b"
    actions = set(
        AuditEvent.objects.filter(target_id__in=[str(delegation.pk), str(person.pk)]).values_list(
            "action", flat=True
        )
    )
    assert {
        AuditAction.TRUST_SCOPE_CHANGED,
        AuditAction.TRUST_PERSON_PROPOSED,
        AuditAction.TRUST_PERSON_APPROVED,
    } <= actions


def test_a_person_who_does_not_exist_or_over_the_cap_is_a_form_error(staffed) -> None:
    world, delegation, _ = staffed
    _set_scope(world, delegation, TrustScope.NAMED_OWNER_APPROVED, cap=1)
    with pytest.raises(ValidationError) as missing:
        services.trusted_person_propose(
            delegation=delegation, proposed_by=world.partner_admin, ram_user_name="Nobody"
        )
    assert "no RAM user called Nobody" in str(missing.value)
    with pytest.raises(ValidationError):
        services.trusted_person_propose(
            delegation=delegation, proposed_by=world.partner_admin, ram_user_name="bad name!"
        )
    services.trusted_person_propose(
        delegation=delegation, proposed_by=world.partner_admin, ram_user_name="Alice"
    )
    with pytest.raises(ValidationError) as over:
        services.trusted_person_propose(
            delegation=delegation, proposed_by=world.partner_admin, ram_user_name="Bob"
        )
    assert "at most 1" in str(over.value)
    assert TrustedPerson.objects.filter(delegation=delegation).count() == 1


def test_partner_managed_follows_assignments_and_switches_back(staffed) -> None:
    world, delegation, assignments = staffed
    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED, cap=2)
    world.drain()
    assert _principals(world) == {ALICE_ARN, BOB_ARN, BROKER_ARN}

    partner_services.staff_unassign(
        assignment=assignments["alice"], unassigned_by=world.partner_admin
    )
    world.drain()  # one reconcile of the owner's role
    assert _principals(world) == {BOB_ARN, BROKER_ARN}
    assert not _assume(world, "Alice")

    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED, cap=1)  # Bob fits
    with pytest.raises(ValidationError) as over:  # the cap counts the people named
        world.assign(delegation, world.alice)
    assert "at most 1 named people" in str(over.value)

    _set_scope(world, delegation, TrustScope.PARTNER_ACCOUNT)
    world.drain()
    assert _principals(world) == {ROOT_ARN}


def test_a_principal_added_by_hand_survives_a_scope_switch(staffed) -> None:
    world, delegation, _ = staffed
    document = _trust(world)
    hand_added = "acs:ram::99887766:root"
    document["Statement"].append(
        {"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": {"RAM": [hand_added]}}
    )
    world.owner_root().update_role(
        world.role_name, trust_document=policies.policy_to_text(document)
    )
    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED)
    world.drain()
    assert _principals(world) == {ALICE_ARN, BOB_ARN, BROKER_ARN, hand_added}


def test_external_id_is_required_by_the_cloud_and_passed_by_the_portal(staffed) -> None:
    world, delegation, assignments = staffed
    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED, external_id=True)
    world.drain()
    delegation.refresh_from_db()
    external_id = delegation_external_id(delegation)
    assert external_id and external_id not in delegation.external_id_ciphertext
    statements = [s for s in _trust(world)["Statement"] if s["Effect"] == "Allow"]
    assert statements == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"sts:ExternalId": [external_id]}},
            "Effect": "Allow",
            "Principal": {"RAM": sorted([ALICE_ARN, BOB_ARN, BROKER_ARN])},
        }
    ]
    assert not _assume(world, "Alice")
    assert not _assume(world, "Alice", external_id="wrong-id")
    assert _assume(world, "Alice", external_id=external_id)
    issued = credentials_issue(
        assignment=assignments["alice"], user=world.alice, duration_seconds=900
    )
    assert issued.credentials.access_key_id

    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED, external_id=False)
    world.drain()
    assert all("Condition" not in s for s in _trust(world)["Statement"])
    assert _assume(world, "Alice")


def test_named_principals_are_not_drift_and_a_hand_added_user_is(staffed, settings) -> None:
    from delegations.models import DriftFinding
    from delegations.worker.periodic import managed_role_check_drift

    settings.PORTAL_DRIFT_QUIET_AFTER_RECONCILE_SECONDS = 0
    world, delegation, _ = staffed
    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED, external_id=True)
    world.drain()
    check = managed_role_check_drift(managed_role_id=delegation.managed_role_id)
    assert check.outcome == "checked"
    assert check.open_findings == []

    document = _trust(world)
    document["Statement"].append(
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"RAM": "acs:ram::12345678:user/AAA"},
        }
    )
    world.owner_root().update_role(
        world.role_name, trust_document=policies.policy_to_text(document)
    )
    check = managed_role_check_drift(managed_role_id=delegation.managed_role_id)
    assert check.open_findings == [
        (DriftFinding.Kind.UNMANAGED_PRINCIPAL_ADDED, "acs:ram::12345678:user/AAA")
    ]


def _fresh(assignment: StaffAssignment) -> StaffAssignment:
    """The assignment with its delegation as the database has it now (the scope changed)."""
    return StaffAssignment.objects.select_related("delegation").get(pk=assignment.pk)


def test_by_default_a_named_scope_trusts_the_broker_only_when_the_portal_brokers(
    staffed,
) -> None:
    world, delegation, assignments = staffed
    # Never used through the portal (people switch role as themselves): no broker.
    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED, trust_broker=None)
    world.drain()
    assert delegation.named_scope_trusts_broker is False
    assert _principals(world) == {ALICE_ARN, BOB_ARN}
    event = AuditEvent.objects.filter(action=AuditAction.TRUST_SCOPE_CHANGED.value).last()
    assert event is not None and event.metadata["broker_decided_by"] == "use"
    with pytest.raises(CredentialRefused) as refused:
        credentials_issue(
            assignment=_fresh(assignments["alice"]), user=world.alice, duration_seconds=900
        )
    assert "use Switch role" in refused.value.message
    assert not trust_view(delegation).broker_arn

    # Back to the whole account, Alice takes credentials through the portal: now the
    # delegation is used through the broker, and narrowing it again keeps the broker.
    _set_scope(world, delegation, TrustScope.PARTNER_ACCOUNT, trust_broker=None)
    world.drain()
    credentials_issue(
        assignment=_fresh(assignments["alice"]), user=world.alice, duration_seconds=900
    )
    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED, trust_broker=None)
    world.drain()
    assert delegation.named_scope_trusts_broker is True
    assert _principals(world) == {ALICE_ARN, BOB_ARN, BROKER_ARN}
    assert trust_view(delegation).broker_arn == BROKER_ARN
    credentials_issue(
        assignment=_fresh(assignments["alice"]), user=world.alice, duration_seconds=900
    )

    # The owner's switch overrides the rule, both ways.
    _set_scope(world, delegation, TrustScope.NAMED_PARTNER_MANAGED, trust_broker=False)
    world.drain()
    assert _principals(world) == {ALICE_ARN, BOB_ARN}


def test_a_strict_scope_trusts_only_the_named_users_not_the_broker(staffed) -> None:
    world, delegation, assignments = staffed
    services.trust_scope_set(
        delegation=delegation,
        changed_by=world.owner_admin,
        scope=TrustScope.NAMED_PARTNER_MANAGED,
        named_people_cap=3,
        require_external_id=False,
        with_mfa=True,
        trust_broker=False,
    )
    world.drain()
    assert _principals(world) == {ALICE_ARN, BOB_ARN}  # the partner's broker key cannot assume
    assert _assume(world, "Alice")
    with pytest.raises(CredentialRefused) as refused:
        credentials_issue(assignment=assignments["alice"], user=world.alice, duration_seconds=900)
    assert refused.value.code == "NotNamed"
    assert "use Switch role" in refused.value.message
