"""Issuing credentials: durations (BI-05), session names (BI-04), the audit trail of each
issuance and refusal, fail-closed audit (G10), cloud refusals, and the formats."""

from __future__ import annotations

import datetime as dt
import json
import shlex

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Membership
from audit.models import AuditEvent
from cloud import policies
from delegations import delegation_audit
from delegations.models import CredentialIssuance, Delegation, StaffAssignment
from delegations.partner import credentials
from delegations.partner.credentials import (
    CredentialRefused,
    DurationBounds,
    credentials_issue,
    parse_duration,
)
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
    ManagedRoleFactory,
)
from tests.factories import OrganisationFactory, UserFactory
from tests.fixtures.partner import PartnerWorld
from tests.personas import make_member

BOUNDS = DurationBounds(minimum=900, maximum=3600, limited_by="the portal's cap")


@pytest.mark.parametrize("value", [900, "900", "3600", " 1800 "])
def test_durations_in_range(value) -> None:
    assert 900 <= parse_duration(value, bounds=BOUNDS) <= 3600


@pytest.mark.parametrize(
    "value",
    [0, 899, 3601, 43201, "3600.5", "1e30", "abc", "-5", "", None, True, 3600.0, "٣٦٠٠", "9" * 30],
)
def test_durations_out_of_range_or_malformed(value) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_duration(value, bounds=BOUNDS)
    assert "duration_seconds" in refused.value.error_dict


def test_no_duration_fits_when_less_than_15_minutes_are_left() -> None:
    with pytest.raises(ValidationError) as refused:
        parse_duration(900, bounds=DurationBounds(900, 600, "the time left"))
    assert "Less than 15 minutes" in str(refused.value)


def test_bounds_take_the_smallest_limit(partner_world: PartnerWorld, settings) -> None:
    world = partner_world
    now = timezone.now()
    delegation = world.active_delegation(ends_at=now + dt.timedelta(minutes=40))
    bounds = credentials.credential_duration_bounds(delegation=delegation, now=now)
    assert (bounds.maximum, bounds.limited_by) == (2400, "the time left")
    settings.PORTAL_MAX_CREDENTIAL_SECONDS = 1200
    bounds = credentials.credential_duration_bounds(delegation=delegation, now=now)
    assert (bounds.maximum, bounds.limited_by) == (1200, "the portal's cap")


@pytest.mark.parametrize(
    "email",
    ["alice@company-b.example", "a@x.y", "Ünïcödé.Name+tag@example.com", "x" * 60 + "@b.example"],
)
def test_session_names_follow_the_sts_rules(db, email: str) -> None:
    partner = OrganisationFactory(kind="partner", slug="company-b")
    user = UserFactory(email=email)
    name = credentials.session_name_for(user=user, partner=partner)
    assert policies.validate_role_session_name(name) == name
    assert len(name) <= 32


def test_two_people_with_the_same_mailbox_name_get_distinct_session_names(db) -> None:
    partner = OrganisationFactory(kind="partner", slug="company-b")
    first = make_member(partner, Membership.Role.STAFF, email="sam@one.example")
    second = make_member(partner, Membership.Role.STAFF, email="sam@two.example")
    names = {credentials.session_name_for(user=u, partner=partner) for u in (first, second)}
    assert len(names) == 2


def test_one_issuance_writes_an_intent_and_a_result_event_without_secrets(
    partner_world: PartnerWorld,
) -> None:
    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice, session_policy_kind="read_only")
    before = AuditEvent.objects.count()
    issued = credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    events = list(AuditEvent.objects.order_by("sequence")[before:])
    assert [e.action for e in events] == ["credentials.issue_started", "credentials.issued"]
    result = events[1]
    assert result.actor == world.alice and result.actor_organisation == world.partner
    assert result.organisation == world.owner
    assert result.metadata["access_key_id"] == issued.credentials.access_key_id
    assert result.metadata["session_name"] == "alice@company-b"
    assert result.metadata["session_policy_kind"] == "read_only"
    assert result.metadata["sts_request_id"]
    text = json.dumps([e.metadata for e in events] + [e.after for e in events])
    assert issued.credentials.access_key_secret not in text
    assert issued.credentials.security_token not in text
    row = CredentialIssuance.objects.get()
    assert row.expiration == issued.credentials.expiration
    assert issued.credentials.access_key_secret not in str(row.__dict__)


def test_a_failing_audit_log_means_no_cloud_call_and_no_credentials(
    partner_world: PartnerWorld, monkeypatch
) -> None:
    from audit.services import AuditError

    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)

    def broken(**kwargs):
        raise AuditError("the audit table is not writable")

    # The credentials' events go through the ledger's one writer for delegation events.
    monkeypatch.setattr(delegation_audit, "audit_record", broken)
    since = world.sim.last_call_seq()
    with pytest.raises(AuditError):
        credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    assert not [c for c in world.sim.calls(since) if c.get("action") == "AssumeRole"]
    assert not CredentialIssuance.objects.exists()


def test_a_cloud_refusal_is_recorded_and_explained(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    # Someone took the role's trust away from company-b outside the portal.
    root = world.owner_root()
    role = root.get_role(world.role_name)
    parked = policies.build_trust_policy([f"acs:ram::{world.owner.account_uid}:root"])
    root.update_role(world.role_name, trust_document=parked)
    try:
        with pytest.raises(CredentialRefused) as refused:
            credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    finally:
        root.update_role(world.role_name, trust_document=role.trust_document)
    assert refused.value.code == "AssumeRoleDenied"
    assert "NoPermission" in refused.value.message
    failed = AuditEvent.objects.get(action="credentials.issue_failed")
    assert failed.outcome == "failure" and failed.metadata["error_code"] == "NoPermission"
    assert not CredentialIssuance.objects.exists()


def test_throttled_sts_is_a_503_style_refusal(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    world.sim.set_faults("AssumeRole:throttle:1")
    with pytest.raises(CredentialRefused) as refused:
        credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    assert (refused.value.code, refused.value.status) == ("CloudUnavailable", 503)


def test_a_root_partner_key_is_refused_plainly(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    world.partner_account.caller_arn = f"acs:ram::{world.partner.account_uid}:root"
    world.partner_account.save(update_fields=["caller_arn"])
    since = world.sim.last_call_seq()
    with pytest.raises(CredentialRefused) as refused:
        credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    assert refused.value.code == "PartnerKeyIsRoot"
    assert "root account" in refused.value.message
    assert not [c for c in world.sim.calls(since) if c.get("action") == "AssumeRole"]


def test_past_its_end_date_a_delegation_issues_nothing(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation(ends_at=timezone.now() + dt.timedelta(hours=1))
    assignment = world.assign(delegation, world.alice)
    Delegation.objects.filter(pk=delegation.pk).update(
        starts_at=timezone.now() - dt.timedelta(days=1),
        ends_at=timezone.now() - dt.timedelta(seconds=1),
    )
    assignment.refresh_from_db()
    with pytest.raises((CredentialRefused, ValidationError)):
        credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    assert not CredentialIssuance.objects.exists()


def test_a_delegation_no_longer_active_is_named_with_its_account(db) -> None:
    """A fleet's role has one name in each of the owner's accounts: the refusal says which
    account's delegation ended, as lists name a delegation's role."""
    owner = OrganisationFactory(kind="owner", name="Company A", account_uid="11223344")
    primary = CloudAccountFactory(organisation=owner, account_uid="11223344")
    staging = CloudAccountFactory(
        organisation=owner, account_uid="11223355", alias="", is_primary=False
    )
    role = CatalogRoleFactory(cloud_account=primary, role_name="ecs-fleet-operator")
    partner = OrganisationFactory(kind="partner", slug="company-b")
    staff = make_member(partner, Membership.Role.STAFF, email="alice@company-b.example")
    delegation = DelegationFactory(
        catalog_role=role,
        partner=partner,
        status=Delegation.Status.REVOKED,
        managed_role=ManagedRoleFactory(cloud_account=staging, role_name=role.role_name),
    )
    assignment = StaffAssignment.objects.create(
        delegation=delegation, partner=partner, user=staff, assigned_by=staff
    )
    with pytest.raises(CredentialRefused) as refused:
        credentials_issue(assignment=assignment, user=staff, duration_seconds=None)
    assert refused.value.code == "DelegationNotActive"
    assert "Company A's delegation of ecs-fleet-operator (11223355) is" in refused.value.message


def test_the_formats_carry_the_same_values(partner_world: PartnerWorld) -> None:
    world = partner_world
    delegation = world.active_delegation()
    assignment = world.assign(delegation, world.alice)
    issued = credentials_issue(assignment=assignment, user=world.alice, duration_seconds=900)
    formats = credentials.credential_formats(issued=issued)
    secret = issued.credentials.access_key_secret
    token = issued.credentials.security_token
    exports = dict(
        line.removeprefix("export ").split("=", 1)
        for line in formats["bash"].splitlines()
        if not line.startswith("#")
    )
    assert shlex.split(exports["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]) == [secret]
    assert shlex.split(exports["ALIBABA_CLOUD_SECURITY_TOKEN"]) == [token]
    config = json.loads(formats["config_json"])
    assert config["mode"] == "StsToken" and config["sts_token"] == token
    assert config["name"] == f"company-a-{world.role_name}"
    cli = shlex.split(formats["cli"].splitlines()[0])
    assert cli[cli.index("--sts-token") + 1] == token
    assert f'security_token="{token}"' in formats["python"]
    assert f"$Env:ALIBABA_CLOUD_SECURITY_TOKEN = '{token}'" in formats["powershell"]
    body = credentials.credentials_uri_body(issued=issued)
    assert list(body) == ["Code", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"]
    assert dt.datetime.strptime(body["Expiration"], "%Y-%m-%dT%H:%M:%SZ")
