"""The auditor's history says which of the owner's accounts each thing happened in. A fleet
puts one role name in several accounts: its accounts' delegations, their events, the cloud
calls that apply them and the people assigned to them would otherwise read the same."""

import pytest

from audit.models import AuditEvent
from auditor.presentation import describe_event
from auditor.selectors import audit_delegation_choices
from tests.audit.conftest import record
from tests.audit.history import History, history_fixture  # noqa: F401
from tests.delegations.factories import (
    CatalogRoleFactory,
    CloudAccountFactory,
    DelegationFactory,
    ManagedRoleFactory,
)
from tests.factories import OrganisationFactory

pytestmark = pytest.mark.django_db


def facts(event: AuditEvent) -> dict[str, str]:
    return {fact.label: fact.value for fact in describe_event(event).facts}


def test_the_delegation_filter_names_each_delegations_account() -> None:
    owner = OrganisationFactory(kind="owner", account_uid="11223344")
    primary = CloudAccountFactory(organisation=owner, account_uid="11223344")
    staging = CloudAccountFactory(
        organisation=owner, account_uid="11223355", alias="", is_primary=False
    )
    role = CatalogRoleFactory(cloud_account=primary, role_name="ecs-fleet-operator")
    partner = OrganisationFactory(kind="partner", name="Company B")
    for account in (primary, staging):
        DelegationFactory(
            catalog_role=role,
            partner=partner,
            managed_role=ManagedRoleFactory(cloud_account=account, role_name=role.role_name),
        )

    labels = sorted(label for _pk, label in audit_delegation_choices(organisation=owner))

    assert len(set(labels)) == 2
    assert labels[0].startswith("ecs-fleet-operator (11223344) · Company B · ")
    assert labels[1].startswith("ecs-fleet-operator (11223355) · Company B · ")


@pytest.mark.parametrize(
    ("action", "metadata"),
    [
        ("delegation.activated", {"fleet": "f"}),
        # The account whose ActionTrail recorded the calls.
        ("activity.alert_raised", {"alerts": {"after_end": 2}, "link": ""}),
    ],
)
def test_a_delegation_event_in_another_account_shows_it(
    history: History, action: str, metadata: dict
) -> None:
    event = record(
        action=action,
        organisation=history.owner,
        target=history.delegation,
        target_label="ecs-fleet-operator for Company B",
        metadata={**metadata, "account_uid": "11223355"},
    )
    assert not describe_event(event).title.startswith(action)  # a title of its own
    assert facts(event)["Account"] == "11223355"


def test_an_assignment_shows_the_role_it_is_on(history: History) -> None:
    arn = "acs:ram::11223355:role/ecs-fleet-operator"
    event = record(
        action="staff.assigned",
        organisation=history.partner,
        target_type="delegations.staffassignment",
        target_id="1",
        target_label="alice on ecs-fleet-operator of Company A",
        metadata={"role_arn": arn, "staff": history.partner_staff.email},
    )
    assert facts(event)["Role"] == arn


def test_a_cloud_call_names_the_account_it_was_made_in(history: History) -> None:
    for event in AuditEvent.objects.filter(
        action__in=["cloud.call_intent", "cloud.call_result"],
        metadata__managed_role=str(history.delegation.managed_role_id),
    ):
        assert event.metadata["account_uid"] == history.world.uid
        assert facts(event)["Account"] == history.world.uid


def test_the_timeline_names_the_owners_account(history: History) -> None:
    body = (
        history.client(history.auditor)
        .get(f"/audit/delegations/{history.delegation.pk}/")
        .content.decode()
    )
    head = body[body.index("<h1>") : body.index("</p>", body.index("<h1>"))]
    assert f'in account <span class="mono">{history.world.uid}</span>' in head
