"""The access-review pages and the review report: both sides answer in the browser's forms,
form errors save nothing, tenancy (404) and roles (403); the report exports CSV and JSON."""

import datetime as dt
import json
from collections.abc import Callable

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts.models import Organisation, User
from delegations.models import (
    Delegation,
    ReviewCampaign,
    ReviewItem,
    ReviewSchedule,
    StaffAssignment,
)
from delegations.reviews.services import review_campaign_start
from tests.delegations.factories import fleet_of
from tests.delegations.lifecycle.test_views import with_mfa

pytestmark = pytest.mark.django_db
D = ReviewItem.Decision


def url(name: str, *args: object) -> str:
    return reverse(f"delegations:{name}", args=args)


@pytest.fixture
def campaign(
    company_a: Organisation,
    owner_admin: User,
    active: Delegation,
    assignment: StaffAssignment,
    schedule: Callable[..., ReviewSchedule],
) -> ReviewCampaign:
    schedule()
    return review_campaign_start(owner=company_a, started_by=owner_admin)


def test_the_owner_schedules_and_bad_input_saves_nothing(
    login: Callable[..., Client], owner_admin: User
) -> None:
    client = with_mfa(login(owner_admin), owner_admin)
    data = {"every_days": 90, "deadline_days": 14, "default_outcome": "revoke"}
    assert client.post(url("access_review_schedule"), {**data, "every_days": 0}).status_code == 400
    assert client.post(
        url("access_review_schedule"), {**data, "deadline_days": 99}
    ).status_code == (400)
    assert not ReviewSchedule.objects.exists()
    assert client.post(url("access_review_schedule"), data).status_code == 302
    assert ReviewSchedule.objects.get().default_outcome == "revoke"
    assert client.post(url("access_review_start")).status_code == 302
    assert ReviewCampaign.objects.count() == 1


def test_both_sides_answer_on_the_campaign_page(
    login: Callable[..., Client],
    campaign: ReviewCampaign,
    owner_admin_2: User,
    partner_admin: User,
    active: Delegation,
) -> None:
    owner = with_mfa(login(owner_admin_2), owner_admin_2)
    partner = with_mfa(login(partner_admin), partner_admin)
    assert owner.get(url("access_review", campaign.pk)).status_code == 200
    page = partner.get(url("access_review", campaign.pk))
    assert page.status_code == 200 and "alice@company-b.example" in page.content.decode()
    owner_item = ReviewItem.objects.get(side="owner")
    partner_item = ReviewItem.objects.get(side="partner")
    target = url("access_review_answer", owner_item.pk)
    prefix = str(owner_item.pk)
    # Shorten without a date, or revoke without a reason: form errors, nothing changes.
    assert owner.post(target, {f"{prefix}-decision": "shorten"}).status_code == 400
    assert owner.post(target, {f"{prefix}-decision": "revoke"}).status_code == 400
    assert ReviewItem.objects.get(pk=owner_item.pk).decision == D.PENDING
    new_end = (timezone.now() + dt.timedelta(days=2)).strftime("%Y-%m-%dT%H:%M")
    done = owner.post(target, {f"{prefix}-decision": "shorten", f"{prefix}-new_ends_at": new_end})
    assert done.status_code == 302
    assert ReviewItem.objects.get(pk=owner_item.pk).decision == D.SHORTEN
    # The partner's admin cannot reach the owner's question; answers their own.
    assert partner.post(target, {f"{prefix}-decision": "keep"}).status_code == 404
    partner_prefix = str(partner_item.pk)
    answered = partner.post(
        url("access_review_answer", partner_item.pk), {f"{partner_prefix}-decision": "keep"}
    )
    assert answered.status_code == 302
    assert ReviewItem.objects.get(pk=partner_item.pk).decision == D.KEEP


def test_tenancy_and_roles(
    login: Callable[..., Client],
    campaign: ReviewCampaign,
    auditor: User,
    foreign_owner_admin: User,
    partner_staff: User,
) -> None:
    assert login(auditor).get(url("access_review", campaign.pk)).status_code == 200
    assert login(auditor).post(url("access_review_start")).status_code == 403
    assert login(foreign_owner_admin).get(url("access_review", campaign.pk)).status_code == 404
    assert login(partner_staff).get(url("access_reviews")).status_code == 403
    assert login(auditor).get(url("access_review_start")).status_code == 405


def test_the_review_report_exports_csv_and_json(
    login: Callable[..., Client], campaign: ReviewCampaign, auditor: User, partner_admin: User
) -> None:
    client = login(auditor)
    page = client.get(reverse("audit:review_report") + f"?campaign={campaign.pk}")
    assert page.status_code == 200 and "ecs-admin" in page.content.decode()
    csv_body = b"".join(client.get(reverse("audit:review_report_csv")).streaming_content)
    assert b"decision" in csv_body and b"pending" in csv_body
    json_body = b"".join(client.get(reverse("audit:review_report_json")).streaming_content)
    rows = json.loads(json_body)["rows"]
    assert {row["side"] for row in rows} == {"owner", "partner"}
    # The partner's admin reads the questions of its own organisation.
    partner_rows = json.loads(
        b"".join(login(partner_admin).get(reverse("audit:review_report_json")).streaming_content)
    )["rows"]
    assert len(partner_rows) == 2
    assert login(partner_admin).get(reverse("audit:rules")).status_code == 403


def test_the_rules_page_lists_rules_proposals_windows_and_decisions(
    login: Callable[..., Client], campaign: ReviewCampaign, auditor: User
) -> None:
    page = login(auditor).get(reverse("audit:rules"))
    assert page.status_code == 200
    body = page.content.decode()
    assert "ecs-admin" in body and "Access reviews every 90 days" in body


def test_each_question_and_report_row_names_the_owners_account(
    login: Callable[..., Client],
    company_a: Organisation,
    owner_admin: User,
    auditor: User,
    active: Delegation,
    schedule: Callable[..., ReviewSchedule],
) -> None:
    """A fleet puts one role name in several of the owner's accounts; each is a question of
    its own, and must not read the same as the others. A fleet's account is asked about as a
    fleet's ("· fleet"), as the delegation lists name it."""
    from tests.delegations.factories import (
        CloudAccountFactory,
        DelegationFactory,
        ManagedRoleFactory,
    )

    staging = CloudAccountFactory(
        organisation=company_a, account_uid="11223355", alias="", is_primary=False
    )
    elsewhere = DelegationFactory(
        catalog_role=active.catalog_role,
        partner=active.partner,
        managed_role=ManagedRoleFactory(cloud_account=staging, role_name="ecs-admin"),
        status=Delegation.Status.ACTIVE,
    )
    fleet_of(elsewhere)
    schedule()
    campaign = review_campaign_start(owner=company_a, started_by=owner_admin)
    expected = {
        str(active.pk): active.managed_role.cloud_account.account_uid,
        str(elsewhere.pk): "11223355",
    }
    page = login(auditor).get(url("access_review", campaign.pk)).content.decode()
    report = (
        login(auditor)
        .get(reverse("audit:review_report") + f"?campaign={campaign.pk}")
        .content.decode()
    )
    for delegation_id, uid in expected.items():
        for body in (page, report):
            row = body[body.index(f"/delegations/{delegation_id}/") :]
            assert uid in row[: row.index("</tr>")]
    question = page[page.index(f"/delegations/{elsewhere.pk}/") :]
    assert "account 11223355 · fleet" in question[: question.index("</tr>")]
    json_body = b"".join(login(auditor).get(reverse("audit:review_report_json")).streaming_content)
    rows = json.loads(json_body)["rows"]
    assert {row["delegation_id"]: row["account_uid"] for row in rows} == expected
