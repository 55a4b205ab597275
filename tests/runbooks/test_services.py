"""Starting, approving, following and cancelling runs, with the OOS door replaced by a
recording double (the end-to-end tests use the real SDK against cloudsim)."""

from __future__ import annotations

import importlib
import logging

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import PermissionDenied, ValidationError

from audit.models import AuditEvent
from delegations.models import Delegation
from runbooks import dispatch, services, worker
from runbooks import oos_template as tpl
from runbooks.models import RunApproval, RunbookInstanceResult, RunbookRun, RunbookTarget
from tests.delegations.factories import fleet_of
from tests.runbooks.conftest import A_INSTANCE, C_INSTANCE, active_grant, owner_account_of
from tests.runbooks.fakes import permanent_error

pytestmark = pytest.mark.django_db
S = RunbookRun.Status


def actions(run: RunbookRun) -> list[str]:
    return list(
        AuditEvent.objects.filter(target_id=str(run.pk))
        .order_by("sequence")
        .values_list("action", flat=True)
    )


def test_a_run_is_stored_encrypted_and_queued_with_its_id_only(
    company_b, partner_staff, consent, choice, published, caplog
):
    caplog.set_level(logging.DEBUG)
    run = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    assert run.status == S.QUEUED
    assert "echo hello" not in run.command_ciphertext
    assert run.command_bytes == len("echo hello")
    assert published == [(dispatch.SUBMIT_RUN, str(run.pk))]
    assert [(t.account_uid, t.region_id) for t in run.targets.all()] == [
        ("11223344", "cn-beijing"),
        ("11223344", "cn-shanghai"),
    ]
    event = AuditEvent.objects.filter(action="runbook.run_started").first()
    assert event.metadata["owner_accounts"] == ["11223344"]
    assert "echo hello" not in str(event.metadata) and "echo hello" not in caplog.text


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"concurrency": 101}, "concurrency"),
        ({"max_errors": -1}, "max_errors"),
        ({"timeout_seconds": 9}, "timeout_seconds"),
        ({"timeout_seconds": 86401}, "timeout_seconds"),
        ({"command_content": "x" * (64 * 1024)}, "command_content"),
        ({"target_type": "ResourceIds", "instance_ids": []}, "instance_ids"),
        ({"targets": []}, "targets"),
        ({"targets": "outside"}, "targets"),
    ],
)
def test_bad_input_starts_nothing(
    company_b, partner_staff, consent, choice, published, overrides, field, company_c
):
    if overrides.get("targets") == "outside":
        foreign = active_grant(owner_account_of(company_c), company_b)
        overrides = {"targets": [(foreign, "cn-shanghai")]}
    with pytest.raises(ValidationError) as raised:
        services.run_start(partner=company_b, started_by=partner_staff, choice=choice(**overrides))
    assert field in raised.value.error_dict
    assert not RunbookRun.objects.exists() and published == []


def test_a_command_just_under_64_kib_and_the_limits_themselves_are_accepted(
    company_b, partner_staff, consent, choice, published
):
    run = services.run_start(
        partner=company_b,
        started_by=partner_staff,
        choice=choice(
            command_content="x" * (64 * 1024 - 1),
            concurrency=100,
            max_errors=0,
            timeout_seconds=86400,
        ),
    )
    assert run.status == S.QUEUED


def test_a_region_the_grant_does_not_cover_is_refused(
    company_b, partner_staff, consent, choice, grant, settings
):
    settings.PORTAL_RUNBOOK_REGIONS = ["cn-shanghai"]
    with pytest.raises(ValidationError) as raised:
        services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    assert "cn-beijing" in str(raised.value.error_dict["targets"])


def test_staff_run_only_under_grants_they_are_assigned_to(
    company_b, partner_staff, consent, choice, grant
):
    grant.staff_assignments.update(ended_at=grant.created_at)
    with pytest.raises(ValidationError):
        services.run_start(partner=company_b, started_by=partner_staff, choice=choice())


def test_without_the_partner_admins_consent_nothing_starts(
    company_b, partner_staff, partner_account, choice
):
    with pytest.raises(ValidationError):
        services.run_start(partner=company_b, started_by=partner_staff, choice=choice())


def test_the_worker_puts_the_template_and_starts_once_per_client_token(
    company_b, partner_staff, consent, choice, published, oos
):
    run = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    run = worker.run_submit(run_id=run.pk, client=oos)
    assert run is not None and run.status == S.RUNNING and run.execution_id == "exec-0001"
    assert oos.templates[tpl.TEMPLATE_NAME] == tpl.MULTI_ACCOUNT_TEMPLATE
    parameters = oos.started_parameters["exec-0001"]
    assert parameters["accountRoleAndRegions"] == [
        {"OOSAssumeRole": f"OOSServiceRole|11223344/{run.targets.first().role_name}", "RegionId": r}
        for r in ("cn-beijing", "cn-shanghai")
    ]
    assert (dispatch.FOLLOW_RUN, str(run.pk)) in published
    # A duplicate delivery claims nothing and starts nothing.
    assert worker.run_submit(run_id=run.pk, client=oos) is None
    assert [c for c, _ in oos.calls].count("start_execution") == 1
    assert "runbook.run_submitted" in actions(run)


def test_following_stores_every_instance_and_ends_with_audited_outcomes(
    company_b, partner_staff, consent, choice, published, oos
):
    run = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    worker.run_submit(run_id=run.pk, client=oos)
    assert worker.run_follow(run_id=run.pk, client=oos).more is True
    oos.finish("exec-0001")
    report = worker.run_follow(run_id=run.pk, client=oos)
    assert report.more is False and report.status == S.SUCCEEDED
    results = RunbookInstanceResult.objects.filter(run=run)
    assert results.count() == 2 and {r.output for r in results} == {"hello\n"}
    assert set(RunbookTarget.objects.filter(run=run).values_list("status", flat=True)) == {
        "Success"
    }
    events = AuditEvent.objects.filter(action="runbook.target_finished")
    assert events.count() == 2
    assert {e.metadata["execution_id"] for e in events} == {"exec-0001"}
    finished = AuditEvent.objects.filter(action="runbook.run_finished")
    assert [e.metadata["owner_accounts"] for e in finished] == [["11223344"], ["11223344"]]
    # Following an ended run does nothing more.
    assert worker.run_follow(run_id=run.pk, client=oos).more is False


def test_a_failed_execution_fails_the_run(
    company_b, partner_staff, consent, choice, published, oos
):
    run = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    worker.run_submit(run_id=run.pk, client=oos)
    oos.finish("exec-0001", "Failed", output="")
    assert worker.run_follow(run_id=run.pk, client=oos).status == S.FAILED
    assert (
        AuditEvent.objects.filter(action="runbook.target_finished", outcome="failure").count() == 2
    )


def test_oos_refusing_the_start_fails_the_run_with_the_error(
    company_b, partner_staff, consent, choice, published, oos
):
    run = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    oos.fail_start = permanent_error()
    run = worker.run_submit(run_id=run.pk, client=oos)
    assert run.status == S.FAILED and run.last_error_code == "InvalidTemplate"
    assert "runbook.run_submit_failed" in actions(run)


def test_cancel_before_and_after_oos_has_the_run(
    company_b, partner_staff, owner_admin, consent, choice, published, oos
):
    queued = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    queued = services.run_cancel(run=queued, cancelled_by=partner_staff)
    assert queued.status == S.CANCELLED
    assert worker.run_submit(run_id=queued.pk, client=oos) is None  # starts nothing

    running = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    worker.run_submit(run_id=running.pk, client=oos)
    running = services.run_cancel(
        run=RunbookRun.objects.get(pk=running.pk), cancelled_by=owner_admin
    )
    assert running.status == S.CANCELLING
    assert (dispatch.CANCEL_RUN, str(running.pk)) in published
    assert worker.run_cancel_in_cloud(run_id=running.pk, client=oos) is True
    assert worker.run_follow(run_id=running.pk, client=oos).status == S.CANCELLED
    event = (
        AuditEvent.objects.filter(action="runbook.run_cancel_requested").order_by("sequence").last()
    )
    assert event.actor_id == owner_admin.pk


def test_four_eyes_an_owner_admin_approves_before_anything_runs(
    company_b, partner_staff, owner_admin, consent, choice, grant, published, oos
):
    assert services.run_approval_requirement_set(
        delegation=grant, required=True, set_by=owner_admin
    )
    run = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    assert run.status == S.AWAITING_APPROVAL and published == []
    assert worker.run_submit(run_id=run.pk, client=oos) is None
    run = services.run_decide(
        run=run, owner=grant.owner, decided_by=owner_admin, approve=True, with_mfa=True
    )
    assert run.status == S.QUEUED
    assert published == [(dispatch.SUBMIT_RUN, str(run.pk))]
    approval = RunApproval.objects.get(run=run)
    assert approval.decided_by == owner_admin and approval.with_mfa
    # The run's start is recorded for the partner and for the owner it touches.
    assert actions(run) == ["runbook.run_started", "runbook.run_started", "runbook.run_approved"]


def test_a_rejection_ends_the_run_and_partners_cannot_decide(
    company_b, partner_staff, partner_admin, owner_admin, consent, choice, grant, published
):
    services.run_approval_requirement_set(delegation=grant, required=True, set_by=owner_admin)
    run = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    with pytest.raises(PermissionDenied):
        services.run_decide(
            run=run, owner=grant.owner, decided_by=partner_admin, approve=True, with_mfa=False
        )
    with pytest.raises(PermissionDenied):
        services.run_approval_requirement_set(
            delegation=grant, required=False, set_by=partner_admin
        )
    run = services.run_decide(
        run=run, owner=grant.owner, decided_by=owner_admin, approve=False, with_mfa=False
    )
    assert run.status == S.REJECTED and published == []


def test_consent_is_recorded_once_and_hands_the_setup_to_the_worker(
    company_b, partner_admin, partner_staff, partner_account, published
):
    with pytest.raises(PermissionDenied):
        services.oos_consent_give(partner=company_b, given_by=partner_staff)
    consent = services.oos_consent_give(partner=company_b, given_by=partner_admin)
    again = services.oos_consent_give(partner=company_b, given_by=partner_admin)
    assert again.pk == consent.pk
    assert published == [(dispatch.ENSURE_OOS_ROLE, str(consent.pk))]
    assert AuditEvent.objects.filter(action="runbook.consent_given").count() == 1


def test_an_inactive_grant_is_not_runnable(company_b, partner_staff, consent, choice, grant):
    Delegation.objects.filter(pk=grant.pk).update(status=Delegation.Status.REVOKED)
    with pytest.raises(ValidationError):
        services.run_start(partner=company_b, started_by=partner_staff, choice=choice())


def test_only_the_runs_people_and_the_owners_admins_may_stop_it(
    company_b, partner_staff, auditor, foreign_owner_admin, consent, choice, published
):
    run = services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    for outsider in (auditor, foreign_owner_admin):
        with pytest.raises(PermissionDenied):
            services.run_cancel(run=run, cancelled_by=outsider)
    run.refresh_from_db()
    assert run.status == S.QUEUED


def test_a_fleet_grant_contributes_its_delegation_with_the_fleets_regions_only(
    company_b, partner_staff, consent, choice, grant, published
):
    fleet_of(grant, regions=["cn-shanghai"], requested_by=partner_staff)
    with pytest.raises(ValidationError) as raised:
        services.run_start(partner=company_b, started_by=partner_staff, choice=choice())
    assert "cn-beijing" in str(raised.value.error_dict["targets"])
    grant.refresh_from_db()
    run = services.run_start(
        partner=company_b,
        started_by=partner_staff,
        choice=choice(targets=[(grant, "cn-shanghai")]),
    )
    assert [t.region_id for t in run.targets.all()] == ["cn-shanghai"]


def test_a_run_by_instance_ids_records_in_each_account_and_region_the_ids_running_there(
    company_c, two_owner_run
):
    assert two_owner_run.instance_ids == [C_INSTANCE, A_INSTANCE]  # the partner's whole choice
    assert {(t.account_uid, t.region_id): t.instance_ids for t in two_owner_run.targets.all()} == {
        ("11223344", "cn-shanghai"): [A_INSTANCE],
        ("11223344", "cn-beijing"): [],
        (company_c.account_uid, "cn-shanghai"): [C_INSTANCE],
    }


def test_runs_started_before_take_each_accounts_ids_from_what_oos_reported_there(
    company_c, two_owner_run
):
    backfill = importlib.import_module("runbooks.migrations.0002_target_instance_ids")
    RunbookTarget.objects.filter(run=two_owner_run).update(instance_ids=[])
    for target in RunbookTarget.objects.filter(run=two_owner_run, region_id="cn-shanghai"):
        instance_id = A_INSTANCE if target.account_uid == "11223344" else C_INSTANCE
        RunbookInstanceResult.objects.create(
            run=two_owner_run, target=target, instance_id=instance_id, status="Success"
        )
    backfill.instance_ids_from_results(django_apps, None)
    assert {(t.account_uid, t.region_id): t.instance_ids for t in two_owner_run.targets.all()} == {
        ("11223344", "cn-shanghai"): [A_INSTANCE],
        ("11223344", "cn-beijing"): [],
        (company_c.account_uid, "cn-shanghai"): [C_INSTANCE],
    }
