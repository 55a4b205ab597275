"""The approval-rules page and the approve page with a quorum: tenancy (404), roles (403),
step-up, form errors that save nothing, and the progress a second approver sees."""

from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import Membership, Organisation, User
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set, approver_group_create
from delegations.lifecycle.services import delegation_approve
from delegations.models import (
    ApprovalRule,
    ApproverGroup,
    CatalogRole,
    Delegation,
    TrustScope,
)
from tests.delegations.lifecycle.test_views import with_mfa

pytestmark = pytest.mark.django_db
S = Delegation.Status


def url(name: str, *args: object) -> str:
    return reverse(f"delegations:{name}", args=args)


@pytest.fixture
def owner_client(login: Callable[..., Client], owner_admin: User) -> Client:
    return with_mfa(login(owner_admin), owner_admin)


@pytest.fixture
def owner_client_2(login: Callable[..., Client], owner_admin_2: User) -> Client:
    return with_mfa(login(owner_admin_2), owner_admin_2)


def test_the_page_lists_groups_and_quorum(
    owner_client: Client,
    company_a: Organisation,
    owner_admin: User,
    ecs_admin: CatalogRole,
) -> None:
    approver_group_create(
        owner=company_a, created_by=owner_admin, name="Ops approvers", members=[owner_admin]
    )
    page = owner_client.get(url("approval_rules"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "Ops approvers" in body and "ecs-admin" in body and owner_admin.email in body


def test_create_a_group_attached_to_a_role(
    owner_client: Client,
    owner_admin: User,
    owner_admin_2: User,
    ecs_admin: CatalogRole,
) -> None:
    response = owner_client.post(
        url("approver_group_create"),
        {"name": "ECS approvers", "members": [owner_admin_2.pk], "catalog_roles": [ecs_admin.pk]},
    )
    assert response.status_code == 302
    group = ApproverGroup.objects.get()
    assert list(group.members.all()) == [owner_admin_2]
    assert list(group.catalog_roles.all()) == [ecs_admin]
    assert AuditEvent.objects.filter(action="approver_group.created").count() == 1


def test_group_form_errors_save_nothing(
    owner_client: Client, auditor: User, foreign_role: CatalogRole
) -> None:
    for data in (
        {"name": "", "members": []},
        {"name": "G", "members": [auditor.pk]},
        {"name": "G", "members": ["not-a-uuid"]},
        {"name": "x" * 200, "members": []},
    ):
        assert owner_client.post(url("approver_group_create"), data).status_code == 400
    assert not ApproverGroup.objects.exists()


def test_a_foreign_role_is_not_a_choice(
    owner_client: Client, owner_admin: User, foreign_role: CatalogRole
) -> None:
    response = owner_client.post(
        url("approver_group_create"),
        {"name": "G", "members": [owner_admin.pk], "catalog_roles": [foreign_role.pk]},
    )
    assert response.status_code == 400
    assert not ApproverGroup.objects.exists()


def test_foreign_ids_are_404_and_auditors_read_only(
    owner_client: Client,
    login: Callable[..., Client],
    auditor: User,
    foreign_owner_admin: User,
    partner_admin: User,
    company_a: Organisation,
    owner_admin: User,
    ecs_admin: CatalogRole,
) -> None:
    group = approver_group_create(
        owner=company_a, created_by=owner_admin, name="Ops", members=[owner_admin]
    )
    foreign = with_mfa(login(foreign_owner_admin), foreign_owner_admin)
    assert foreign.get(url("approver_group_edit", group.pk)).status_code == 404
    assert foreign.post(url("approver_group_delete", group.pk)).status_code == 404
    assert (
        foreign.post(
            url("approval_quorum_set", ecs_admin.pk), {f"{ecs_admin.pk}-approvals_required": 1}
        ).status_code
        == 404
    )
    reader = login(auditor)
    assert reader.get(url("approval_rules")).status_code == 200
    assert reader.post(url("approver_group_delete", group.pk)).status_code == 403
    assert login(partner_admin).get(url("approval_rules")).status_code == 403
    assert ApproverGroup.objects.filter(pk=group.pk).exists()


def test_set_quorum_and_bad_values(
    owner_client: Client, owner_admin_2: User, ecs_admin: CatalogRole
) -> None:
    field = f"{ecs_admin.pk}-approvals_required"
    for bad in ("0", "6", "abc", ""):
        response = owner_client.post(url("approval_quorum_set", ecs_admin.pk), {field: bad})
        assert response.status_code == 400
    assert not ApprovalRule.objects.exists()
    response = owner_client.post(url("approval_quorum_set", ecs_admin.pk), {field: "2"})
    assert response.status_code == 302
    assert ApprovalRule.objects.get(catalog_role=ecs_admin).approvals_required == 2


def test_changing_rules_needs_a_recent_sign_in(
    login: Callable[..., Client], owner_admin: User, ecs_admin: CatalogRole
) -> None:
    stale = login(owner_admin, reauthenticated=False)
    response = stale.post(
        url("approval_quorum_set", ecs_admin.pk), {f"{ecs_admin.pk}-approvals_required": "1"}
    )
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    assert not ApprovalRule.objects.exists()


def test_two_approvers_through_the_pages(
    owner_client: Client,
    owner_client_2: Client,
    requested: Delegation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    first = owner_client.post(url("approve", requested.pk), {"version": 1}, follow=True)
    assert "Your approval is recorded" in first.content.decode()
    assert "1 of 2 approvals" in first.content.decode()
    assert "You already approved" in first.content.decode()
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED
    page = owner_client_2.get(url("detail", requested.pk)).content.decode()
    assert "1 of 2 approvals" in page and owner_admin.email in page
    assert 'data-testid="approve"' in page
    second = owner_client_2.post(url("approve", requested.pk), {"version": 1}, follow=True)
    assert "Approved." in second.content.decode()
    assert Delegation.objects.get(pk=requested.pk).status == S.APPROVED


def test_outside_the_group_the_page_says_who_decides(
    owner_client: Client,
    company_a: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    ecs_admin: CatalogRole,
    requested: Delegation,
) -> None:
    approver_group_create(
        owner=company_a,
        created_by=owner_admin,
        name="ECS approvers",
        members=[owner_admin_2],
        catalog_roles=[ecs_admin],
    )
    page = owner_client.get(url("detail", requested.pk)).content.decode()
    assert "Only members of ECS approvers may decide" in page
    assert 'data-testid="approve"' not in page
    response = owner_client.post(url("approve", requested.pk), {"version": 1}, follow=True)
    assert "Only members of ECS approvers" in response.content.decode()
    assert Delegation.objects.get(pk=requested.pk).status == S.REQUESTED


def approvals_given(page: str) -> str:
    return page.split('data-testid="approvals-given"')[1].split("</ul>")[0]


def test_the_page_marks_an_approval_that_no_longer_counts(
    owner_client_2: Client,
    requested: Delegation,
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    page = owner_client_2.get(url("detail", requested.pk)).content.decode()
    assert "1 of 2 approvals" in page and "no longer counts" not in page
    Membership.objects.filter(user=owner_admin, organisation=company_a).update(
        role=Membership.Role.AUDITOR
    )
    page = owner_client_2.get(url("detail", requested.pk)).content.decode()
    assert "0 of 2 approvals" in page
    assert owner_admin.email in approvals_given(page) and "no longer counts" in approvals_given(
        page
    )


def test_the_page_shows_the_trust_scope_each_approver_chose(
    owner_client_2: Client,
    requested: Delegation,
    ecs_admin: CatalogRole,
    owner_admin: User,
) -> None:
    approval_rule_set(catalog_role=ecs_admin, approvals_required=2, set_by=owner_admin)
    delegation_approve(
        delegation=requested,
        approved_by=owner_admin,
        with_mfa=True,
        trust_scope=TrustScope.NAMED_OWNER_APPROVED,
    )
    page = owner_client_2.get(url("detail", requested.pk)).content.decode()
    assert "Named people, owner-approved" in approvals_given(page)
