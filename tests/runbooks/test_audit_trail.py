"""The auditor's view of a run: the exact events each step writes, on both sides, with the OOS
execution id and the owner accounts touched, and never the command's content."""

from __future__ import annotations

import json

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from audit.selectors import audit_events_visible_to
from auditor.presentation import describe_event
from delegations.models import StaffAssignment
from runbooks import services, worker
from tests.runbooks.conftest import A_INSTANCE, C_INSTANCE, active_grant, owner_account_of

pytestmark = pytest.mark.django_db


def test_a_runs_events_name_its_execution_and_accounts_and_the_auditor_reads_them(
    company_b, partner_staff, owner_admin, auditor, consent, choice, grant, published, oos, login
):
    services.run_approval_requirement_set(delegation=grant, required=True, set_by=owner_admin)
    run = services.run_start(
        partner=company_b,
        started_by=partner_staff,
        choice=choice(command_content="echo top-secret-value"),
    )
    services.run_decide(
        run=run, owner=grant.owner, decided_by=owner_admin, approve=True, with_mfa=True
    )
    worker.run_submit(run_id=run.pk, client=oos)
    oos.finish("exec-0001")
    worker.run_follow(run_id=run.pk, client=oos)

    events = list(AuditEvent.objects.order_by("sequence"))
    # Run-level events once for the partner and once for each owner touched.
    assert [(e.action, e.organisation_id) for e in events] == [
        ("runbook.approval_rule_set", grant.owner_id),
        ("runbook.run_started", company_b.pk),
        ("runbook.run_started", grant.owner_id),
        ("runbook.run_approved", grant.owner_id),
        ("runbook.run_submitted", company_b.pk),
        ("runbook.run_submitted", grant.owner_id),
        ("runbook.target_finished", grant.owner_id),
        ("runbook.target_finished", grant.owner_id),
        ("runbook.run_finished", company_b.pk),
        ("runbook.run_finished", grant.owner_id),
    ]
    everything = json.dumps([[e.metadata, e.before, e.after] for e in events])
    assert "top-secret-value" not in everything
    finished = events[-1]
    facts = {fact.label: fact.value for fact in describe_event(finished).facts}
    assert facts["OOS execution"] == "exec-0001"
    assert "11223344" in facts["Owner accounts"]
    target = describe_event(events[6])
    assert {fact.label for fact in target.facts} >= {"OOS execution", "Account", "Region"}

    # The owner's auditor sees the run's events in the history, the execution id included.
    page = login(auditor).get(reverse("audit:events")).content.decode()
    assert "exec-0001" in page and "runbook.run_finished" not in page.split("<title>")[0]


def test_an_owner_never_learns_of_another_owners_accounts_in_the_same_run(
    company_b, company_c, partner_staff, owner_admin, consent, choice, grant, published, oos, login
):
    other = active_grant(owner_account_of(company_c), company_b)
    StaffAssignment.objects.create(
        delegation=other, partner=company_b, user=partner_staff, assigned_by=partner_staff
    )
    run = services.run_start(
        partner=company_b,
        started_by=partner_staff,
        choice=choice(targets=[(grant, "cn-shanghai"), (other, "cn-shanghai")]),
    )
    for event in AuditEvent.objects.filter(organisation=grant.owner):
        assert company_c.account_uid not in json.dumps(event.metadata), event.action
    partner_event = AuditEvent.objects.get(organisation=company_b)
    assert partner_event.metadata["owner_accounts"] == sorted(["11223344", company_c.account_uid])
    page = login(owner_admin).get(reverse("runbooks:detail", args=[run.pk])).content.decode()
    assert company_c.account_uid not in page and "11223344" in page


def test_an_owners_events_name_only_the_instance_ids_in_its_own_accounts(
    company_a, company_b, company_c, two_owner_run
):
    for owner, own, other in (
        (company_a, A_INSTANCE, C_INSTANCE),
        (company_c, C_INSTANCE, A_INSTANCE),
    ):
        events = list(audit_events_visible_to(organisation=owner))
        assert events
        for event in events:
            assert other not in json.dumps([event.metadata, event.before, event.after])
        started = next(e for e in events if e.action == "runbook.run_started")
        assert started.metadata["instance_ids"] == [own]
    partner_event = AuditEvent.objects.get(organisation=company_b, action="runbook.run_started")
    assert partner_event.metadata["instance_ids"] == [C_INSTANCE, A_INSTANCE]
