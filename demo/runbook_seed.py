"""The demo's runbooks, ready as soon as `make run` has started: company-b's admin
allows runbooks through the consent page's service, and OOSServiceRole is set up in company-b's
cloudsim account at once (the worker's own function, with company-b's connected key); the demo
fleet grant is applied now by the worker's own task, run here, and Alice is assigned to each of
its accounts (her RAM user and the portal's broker get AssumeRole the same way). A newcomer
signs in as Alice and runs `echo hello` across the fleet from Runbooks → New run.
Idempotent: a second run finds everything done and says so."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Organisation, User
from cloud.client import CloudClient
from cloud.errors import CloudError
from delegations.connection.services import cloud_account_credentials
from delegations.models import (
    FINAL_STATUSES,
    CloudAccount,
    Delegation,
    FleetGrant,
    OutboxMessage,
    StaffAssignment,
)
from delegations.partner.services import staff_assign
from delegations.worker.tasks import run_outbox_message
from runbooks.models import OosConsent
from runbooks.oos_template import OOS_SERVICE_ROLE
from runbooks.services import oos_consent_give
from runbooks.worker import oos_service_role_ensure

# The rounds of worker tasks run here at most: an account applied, the fleet's next accounts
# started, the people's AssumeRole granted. Far more than the demo's two accounts need.
_ROUNDS = 20
Kind = OutboxMessage.Kind
# The partner staff person the demo makes ready to run runbooks over the demo fleet.
DEMO_RUNBOOK_STAFF = "alice@company-b.example"


def _work_now(kinds: tuple[str, ...], object_ids: set[str]) -> None:
    """Run the worker's task for each undone outbox message of `kinds` about `object_ids`
    here and now (Celery's `apply`: in this process, its retries too), until none is left."""
    for _round in range(_ROUNDS):
        pending = list(
            OutboxMessage.objects.filter(
                done_at__isnull=True, kind__in=kinds, object_id__in=object_ids
            ).values_list("pk", flat=True)
        )
        if not pending:
            return
        for message_id in pending:
            run_outbox_message.apply(args=[message_id])
        # A message the task left undone (its failure is recorded) waits for the worker.
        still = OutboxMessage.objects.filter(pk__in=pending, done_at__isnull=True).count()
        if still == len(pending):
            return


def _fleet_members(fleet: FleetGrant) -> list[Delegation]:
    return list(
        Delegation.objects.filter(fleet=fleet)
        .select_related("managed_role__cloud_account")
        .order_by("created_at", "pk")
    )


def _apply_fleet(fleet: FleetGrant) -> list[Delegation]:
    members = _fleet_members(fleet)
    ids = {str(fleet.pk)} | {str(m.managed_role_id) for m in members}
    _work_now((Kind.RECONCILE_ROLE, Kind.ADVANCE_FLEET), ids)
    return _fleet_members(fleet)


def _assign(
    members: list[Delegation], staff: User, partner_admin: User, partner: Organisation
) -> list[str]:
    assigned = []
    for member in members:
        if member.status != Delegation.Status.ACTIVE:
            continue
        staff_assign(delegation=member, user=staff, assigned_by=partner_admin)
        assigned.append(member.managed_role.cloud_account.account_uid)
    policies = {
        str(pk)
        for pk in OutboxMessage.objects.filter(
            kind=Kind.RECONCILE_PARTNER_USER, done_at__isnull=True
        ).values_list("object_id", flat=True)
    }
    _work_now((Kind.RECONCILE_PARTNER_USER,), policies)
    return assigned


def _consent(partner: Organisation, partner_admin: User, account: CloudAccount) -> str:
    consent = oos_consent_give(partner=partner, given_by=partner_admin)
    if consent.status == OosConsent.Status.READY:
        return f"Runbooks already allowed for {partner.name} ({OOS_SERVICE_ROLE} ready)."
    client = CloudClient(cloud_account_credentials(cloud_account=account), region_id=account.region)
    try:
        ensured = oos_service_role_ensure(consent_id=consent.pk, client=client)
    except CloudError as error:  # transient: the worker retries the consent it was handed
        return f"Note: {OOS_SERVICE_ROLE} not set up yet ({error.code}); the worker retries."
    if ensured is None or ensured.status != OosConsent.Status.READY:
        code = ensured.last_error_code if ensured is not None else "gone"
        return f"Note: {OOS_SERVICE_ROLE} could not be set up ({code}); see Runbooks."
    return (
        f"Runbooks allowed by {partner_admin.email}: {OOS_SERVICE_ROLE} created in "
        f"{account.account_uid}, trusted by oos.aliyuncs.com, with AliyunSTSAssumeRoleAccess."
    )


def demo_runbook_seed(*, partner: Organisation, partner_admin: User, fleet_role: str) -> list[str]:
    """Lines to print; never raises for what the demo cannot do (it says so instead)."""
    staff = User.objects.filter(email=DEMO_RUNBOOK_STAFF).first()
    account = CloudAccount.objects.filter(organisation=partner, is_active=True).first()
    fleet = (
        FleetGrant.objects.filter(partner=partner, catalog_role__role_name=fleet_role)
        .exclude(delegations__status__in=list(FINAL_STATUSES))
        .order_by("-created_at")
        .first()
    )
    if account is None or fleet is None or staff is None:
        return ["Note: no connected company-b account or demo fleet; runbooks were skipped."]
    try:
        lines = [_consent(partner, partner_admin, account)]
        members = _apply_fleet(fleet)
        states = sorted({str(m.status) for m in members})
        already = StaffAssignment.objects.filter(
            delegation__in=members, user=staff, ended_at__isnull=True
        ).count()
        assigned = _assign(members, staff, partner_admin, partner)
    except (ValidationError, PermissionDenied) as error:
        why = " ".join(getattr(error, "messages", [str(error)]))
        return [f"Note: the runbook demo was skipped: {why}"]
    if len(assigned) != len(members):
        lines.append(
            f"Note: the demo fleet is {', '.join(states)} (not every account active yet); the "
            "worker finishes it, then assign staff on each account's page."
        )
    if assigned:
        verb = "is" if already == len(assigned) else "now"
        lines.append(
            f"{staff.email} {verb} assigned to {fleet_role} in {', '.join(assigned)}: sign in "
            "as her, Runbooks → New run, and run `echo hello` across the demo fleet."
        )
    return lines
