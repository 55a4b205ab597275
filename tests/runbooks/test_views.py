"""The runbook pages: each view's success, wrong method, another tenant's run (404) and a
missing role (403); the form's bad input; the export."""

from __future__ import annotations

import json
import time

import pytest
import yaml
from django.urls import reverse

from runbooks import oos_template as tpl
from runbooks import services
from runbooks.models import RunbookRun
from tests.runbooks.conftest import A_INSTANCE, C_INSTANCE

pytestmark = pytest.mark.django_db


def form_data(grant, **overrides):
    data = {
        "title": "say hello",
        "targets": [f"{grant.pk}|cn-shanghai", f"{grant.pk}|cn-beijing"],
        "command_type": "RunShellScript",
        "command_content": "echo hello",
        "working_dir": "",
        "timeout_seconds": "600",
        "target_type": "All",
        "instance_ids": "",
        "tags": "",
        "concurrency": "10",
        "max_errors": "0",
    }
    data.update(overrides)
    return data


@pytest.fixture
def run(company_b, partner_staff, consent, choice, published):
    return services.run_start(partner=company_b, started_by=partner_staff, choice=choice())


def test_partner_staff_start_a_run_from_the_form(login, partner_staff, grant, consent, published):
    client = login(partner_staff)
    page = client.get(reverse("runbooks:new"))
    assert page.status_code == 200 and f"{grant.pk}|cn-shanghai" in page.content.decode()
    response = client.post(reverse("runbooks:new"), form_data(grant))
    run = RunbookRun.objects.get()
    assert response.status_code == 302 and response["Location"] == reverse(
        "runbooks:detail", args=[run.pk]
    )
    detail = client.get(response["Location"])
    assert detail.status_code == 200 and "echo hello" in detail.content.decode()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"concurrency": "0"}, "Concurrency is between 1 and 100."),
        ({"concurrency": "101"}, "Concurrency is between 1 and 100."),
        ({"max_errors": "-1"}, "MaxErrors cannot be negative."),
        ({"timeout_seconds": "5"}, "The timeout is between 10 and 86,400 seconds."),
        ({"command_content": "y" * 65536}, "The command must be smaller than 64 KiB."),
        ({"target_type": "ResourceIds"}, "List at least one instance id."),
        ({"target_type": "ResourceIds", "instance_ids": "not-an-id"}, "Not an instance id"),
        ({"targets": []}, "This field is required."),
        ({"targets": ["00000000-0000-0000-0000-000000000000|cn-shanghai"]}, "Select a valid"),
    ],
)
def test_bad_input_is_a_form_error_and_starts_nothing(
    login, partner_staff, grant, consent, published, overrides, message
):
    response = login(partner_staff).post(reverse("runbooks:new"), form_data(grant, **overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not RunbookRun.objects.exists() and published == []


def test_the_export_is_the_exact_template_and_parameters(login, partner_staff, run):
    client = login(partner_staff)
    template = client.get(reverse("runbooks:export_template", args=[run.pk]))
    assert template.status_code == 200
    assert "attachment" in template["Content-Disposition"]
    assert yaml.safe_load(template.content) == yaml.safe_load(tpl.MULTI_ACCOUNT_TEMPLATE)
    parameters = json.loads(
        client.get(reverse("runbooks:export_parameters", args=[run.pk])).content
    )
    assert parameters["templateParameters"]["commandContent"] == "echo hello"
    assert parameters["templateName"] == "ACS-ECS-BulkyRunCommand"
    assert len(parameters["accountRoleAndRegions"]) == 2


def test_the_owner_sees_the_run_over_its_accounts_but_not_the_export(
    login, owner_admin, auditor, run
):
    for person in (owner_admin, auditor):
        client = login(person)
        listing = client.get(reverse("runbooks:list"))
        assert str(run.pk) in listing.content.decode()
        assert client.get(reverse("runbooks:detail", args=[run.pk])).status_code == 200
        assert client.get(reverse("runbooks:live", args=[run.pk])).status_code == 200
    assert (
        login(owner_admin).get(reverse("runbooks:export_parameters", args=[run.pk])).status_code
        == 403
    )


def test_another_tenants_run_is_a_404_everywhere(
    login, foreign_owner_admin, foreign_partner_staff, run
):
    for person in (foreign_owner_admin, foreign_partner_staff):
        client = login(person)
        for name in ("runbooks:detail", "runbooks:live"):
            assert client.get(reverse(name, args=[run.pk])).status_code == 404
        assert client.post(reverse("runbooks:cancel", args=[run.pk])).status_code in (403, 404)
    assert (
        login(foreign_partner_staff)
        .get(reverse("runbooks:export_parameters", args=[run.pk]))
        .status_code
        == 404
    )
    assert (
        login(foreign_owner_admin).post(reverse("runbooks:approve", args=[run.pk])).status_code
        == 404
    )


def test_wrong_methods_and_missing_roles(login, partner_staff, auditor, run, grant):
    client = login(partner_staff)
    assert client.get(reverse("runbooks:cancel", args=[run.pk])).status_code == 405
    assert client.get(reverse("runbooks:consent")).status_code == 405
    assert client.post(reverse("runbooks:consent"), {"agree": "on"}).status_code == 403
    assert client.post(reverse("runbooks:approve", args=[run.pk])).status_code == 403
    auditor_client = login(auditor)
    assert auditor_client.post(reverse("runbooks:cancel", args=[run.pk])).status_code == 403
    assert auditor_client.get(reverse("runbooks:new")).status_code == 403
    assert auditor_client.post(reverse("runbooks:requirement", args=[grant.pk])).status_code == 403


def test_cancel_from_both_sides(login, partner_staff, owner_admin, run):
    response = login(owner_admin).post(reverse("runbooks:cancel", args=[run.pk]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == RunbookRun.Status.CANCELLED


def test_owner_requires_approval_and_approves_with_step_up(
    login, owner_admin, partner_staff, grant, consent, published
):
    owner = login(owner_admin)
    assert (
        owner.post(reverse("runbooks:requirement", args=[grant.pk]), {"required": "on"}).status_code
        == 302
    )
    login(partner_staff).post(reverse("runbooks:new"), form_data(grant))
    run = RunbookRun.objects.get()
    assert run.status == RunbookRun.Status.AWAITING_APPROVAL
    detail = owner.get(reverse("runbooks:detail", args=[run.pk])).content.decode()
    assert 'data-testid="approve-run"' in detail
    # Without a recent confirmation the approval waits for the step-up.
    stale = login(owner_admin, reauthenticated=False)
    response = stale.post(reverse("runbooks:approve", args=[run.pk]))
    assert response.status_code == 302 and "reauthenticate" in response["Location"]
    run.refresh_from_db()
    assert run.status == RunbookRun.Status.AWAITING_APPROVAL
    session = owner.session
    session["account_authentication_methods"] = [
        {"method": "mfa", "type": "totp", "at": time.time(), "reauthenticated": True}
    ]
    session.save()
    assert owner.post(reverse("runbooks:approve", args=[run.pk]), {"note": "ok"}).status_code == 302
    run.refresh_from_db()
    assert run.status == RunbookRun.Status.QUEUED
    assert run.approvals.get().with_mfa


def test_partner_admin_gives_consent(login, partner_admin, partner_account, published):
    client = login(partner_admin)
    page = client.get(reverse("runbooks:list")).content.decode()
    assert 'data-testid="consent-form"' in page
    assert client.post(reverse("runbooks:consent"), {"agree": "on"}).status_code == 302
    assert published[0][0] == "runbooks.ensure_oos_service_role"


def _pages(client, run) -> list[str]:
    return [
        client.get(reverse(name, args=[run.pk])).content.decode()
        for name in ("runbooks:detail", "runbooks:live")
    ]


def test_an_owner_sees_only_the_instance_ids_in_its_own_accounts_and_the_partner_sees_all(
    login, owner_admin, foreign_owner_admin, partner_staff, company_c, two_owner_run
):
    detail, live = _pages(login(owner_admin), two_owner_run)
    assert A_INSTANCE in detail
    for page in (detail, live):
        assert C_INSTANCE not in page and company_c.account_uid not in page
    for page in _pages(login(foreign_owner_admin), two_owner_run):
        assert A_INSTANCE not in page and "11223344" not in page
    assert C_INSTANCE in _pages(login(foreign_owner_admin), two_owner_run)[0]
    partner_detail = _pages(login(partner_staff), two_owner_run)[0]
    assert f"{C_INSTANCE}, {A_INSTANCE}" in partner_detail
    assert company_c.account_uid in partner_detail


def test_an_owner_is_told_its_own_outcome_not_the_executions_message_naming_other_owners(
    login, owner_admin, partner_staff, company_c, two_owner_run
):
    # What OOS (and cloudsim, oos_engine's loop) says of a failed loop: the first failed
    # item's own message, which may be another owner's account and instance.
    message = (
        "Task executeTemplate: 1 of 3 loop items failed (MaxErrors 0); 0 not started. "
        f"First failure: Forbidden.RAM: acs:ram::{company_c.account_uid}:role/ecs-admin "
        f"cannot run on {C_INSTANCE}"
    )
    RunbookRun.objects.filter(pk=two_owner_run.pk).update(
        status=RunbookRun.Status.FAILED,
        execution_id="exec-0001",
        oos_status="Failed",
        status_message=message,
    )
    for page in _pages(login(owner_admin), two_owner_run):
        assert company_c.account_uid not in page and C_INSTANCE not in page
        assert "The outcome in each of your accounts and regions is below." in page
    assert message in _pages(login(partner_staff), two_owner_run)[1]
