"""Reading runs. Tenancy: a run belongs to its partner and is visible to the owners whose
accounts it touches; anything else is a 404, exactly like a missing id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils.translation import gettext as _

from accounts.models import Membership, Organisation, User
from core.web import get_or_404, parse_uuid
from delegations.models import CloudAccount, Delegation, StaffAssignment
from runbooks.models import (
    OosConsent,
    RunApproval,
    RunApprovalRequirement,
    RunbookInstanceResult,
    RunbookRun,
    RunbookTarget,
)


def runbook_regions() -> tuple[str, ...]:
    """The regions a grant covers until fleets name their own (`PORTAL_RUNBOOK_REGIONS`)."""
    return tuple(settings.PORTAL_RUNBOOK_REGIONS)


def delegation_regions(delegation: Delegation) -> frozenset[str]:
    """The regions runs under this grant may touch: a fleet grant's own (`FleetGrant.regions`,
    the fleet contributes one delegation per account); a single grant covers the portal's
    runbook regions."""
    fleet = delegation.fleet
    if fleet is not None and fleet.regions:
        return frozenset(str(region) for region in fleet.regions)
    return frozenset(runbook_regions())


def _active_grants(partner: Organisation) -> QuerySet[Delegation]:
    return (
        Delegation.objects.filter(partner=partner, status=Delegation.Status.ACTIVE)
        .select_related("owner", "managed_role__cloud_account", "catalog_role", "fleet")
        .order_by("owner__name", "managed_role__cloud_account__account_uid", "created_at")
    )


def runnable_grants(*, user: User, partner: Organisation) -> dict[Delegation, frozenset[str]]:
    """The active grants a partner person may run under, each with its regions: a partner
    admin runs under all of the partner's; staff under those they are assigned to."""
    membership = Membership.objects.filter(user=user, organisation=partner).first()
    if membership is None or not partner.is_partner:
        return {}
    grants = _active_grants(partner)
    if membership.role != Membership.Role.ADMIN:
        assigned = StaffAssignment.objects.filter(
            user=user, partner=partner, ended_at__isnull=True
        ).values("delegation_id")
        grants = grants.filter(pk__in=assigned)
    return {grant: delegation_regions(grant) for grant in grants}


def oos_consent_of(*, partner: Organisation) -> OosConsent | None:
    return OosConsent.objects.filter(partner=partner).first()


def partner_cloud_account(*, partner: Organisation) -> CloudAccount | None:
    return CloudAccount.objects.filter(organisation=partner, is_active=True).first()


def runs_visible_to(*, organisation: Organisation) -> QuerySet[RunbookRun]:
    """The partner's own runs, or the runs over an owner's accounts."""
    if organisation.is_partner:
        runs = RunbookRun.objects.filter(partner=organisation)
    else:
        runs = RunbookRun.objects.filter(
            pk__in=RunbookTarget.objects.filter(owner=organisation).values("run_id")
        )
    return runs.select_related("partner", "started_by")


def run_get_for_organisation(*, organisation: Organisation, run_id: object) -> RunbookRun:
    """A run the organisation started or whose targets include its accounts; 404 otherwise."""
    return get_or_404(runs_visible_to(organisation=organisation), pk=parse_uuid(run_id))


def run_owners(run: RunbookRun) -> list[Organisation]:
    return list(
        Organisation.objects.filter(
            pk__in=RunbookTarget.objects.filter(run=run).values("owner_id")
        ).order_by("name")
    )


def run_owner_accounts(run: RunbookRun, *, owner: Organisation | None = None) -> list[str]:
    """The owner accounts a run touches (one owner's only, when given)."""
    targets = RunbookTarget.objects.filter(run=run)
    if owner is not None:
        targets = targets.filter(owner=owner)
    return sorted(set(targets.values_list("account_uid", flat=True)))


def acting_organisation(*, run: RunbookRun, user: User) -> Organisation | None:
    """For whom `user` acts on `run`: its partner, else an owner it touches."""
    organisations = Organisation.objects.filter(memberships__user=user).filter(
        Q(pk=run.partner_id) | Q(pk__in=RunbookTarget.objects.filter(run=run).values("owner_id"))
    )
    return organisations.order_by("kind").last()  # "partner" sorts after "owner"


def may_cancel(*, run: RunbookRun, user: User, organisation: Organisation) -> bool:
    """The person who started it, a partner admin, or an admin of an owner it touches."""
    if not run.can_cancel:
        return False
    membership = Membership.objects.filter(user=user, organisation=organisation).first()
    if membership is None:
        return False
    if organisation.pk == run.partner_id:
        return run.started_by_id == user.pk or membership.role == Membership.Role.ADMIN
    touches = RunbookTarget.objects.filter(run=run, owner=organisation).exists()
    return touches and membership.role == Membership.Role.ADMIN


def instance_ids_in(run: RunbookRun, targets: Iterable[RunbookTarget]) -> list[str]:
    """The run's instance ids found running in these targets, in the partner's order."""
    here = {instance_id for target in targets for instance_id in target.instance_ids}
    return [instance_id for instance_id in run.instance_ids if instance_id in here]


def run_instance_ids(run: RunbookRun, *, owner: Organisation | None = None) -> list[str]:
    """The instance ids a run names: the partner's whole choice; to an owner, only those
    running in its own accounts (the others are other owners' instances)."""
    if owner is None:
        return list(run.instance_ids)
    return instance_ids_in(run, RunbookTarget.objects.filter(run=run, owner=owner))


def run_status_message(run: RunbookRun, *, owner: Organisation | None = None) -> str:
    """The OOS execution's message for the partner. An owner gets a neutral line instead: the
    execution speaks of its whole loop, and a failed one quotes its first failed item, which
    may be another owner's account or instance; the owner's own outcomes are per target."""
    if owner is None or not run.status_message:
        return run.status_message
    if not run.execution_id:
        return _("OOS did not start the run.")
    return _("The outcome in each of your accounts and regions is below.")


@dataclass(frozen=True)
class TargetView:
    target: RunbookTarget
    results: list[RunbookInstanceResult]


def run_targets(run: RunbookRun, *, owner: Organisation | None = None) -> list[TargetView]:
    """Per account and region, the instances and their outcomes (an owner sees its own accounts)."""
    targets = RunbookTarget.objects.filter(run=run).select_related("owner")
    if owner is not None:
        targets = targets.filter(owner=owner)
    results: dict[object, list[RunbookInstanceResult]] = {}
    for result in RunbookInstanceResult.objects.filter(target__in=targets).order_by("instance_id"):
        results.setdefault(result.target_id, []).append(result)
    return [TargetView(target, results.get(target.pk, [])) for target in targets]


def run_approvals(run: RunbookRun) -> list[RunApproval]:
    return list(RunApproval.objects.filter(run=run).select_related("owner", "decided_by"))


def pending_approval_for(*, run: RunbookRun, owner: Organisation) -> RunApproval | None:
    return RunApproval.objects.filter(
        run=run, owner=owner, status=RunApproval.Status.PENDING
    ).first()


def owner_grants_with_rule(*, owner: Organisation) -> list[tuple[Delegation, bool]]:
    """The owner's active grants and whether runs under each need approval."""
    grants = (
        Delegation.objects.filter(owner=owner, status=Delegation.Status.ACTIVE)
        .select_related("partner", "managed_role__cloud_account", "catalog_role")
        .order_by("partner__name", "created_at")
    )
    required = set(
        RunApprovalRequirement.objects.filter(delegation__owner=owner).values_list(
            "delegation_id", flat=True
        )
    )
    return [(grant, grant.pk in required) for grant in grants]


def owner_grant_get(*, owner: Organisation, delegation_id: object) -> Delegation:
    return get_or_404(
        Delegation.objects.filter(owner=owner).select_related("owner", "partner"),
        pk=parse_uuid(delegation_id),
    )


def runs_waiting_for(*, owner: Organisation) -> QuerySet[RunbookRun]:
    return RunbookRun.objects.filter(
        status=RunbookRun.Status.AWAITING_APPROVAL,
        approvals__owner=owner,
        approvals__status=RunApproval.Status.PENDING,
    ).select_related("partner", "started_by")


def target_labels(targets: Iterable[RunbookTarget]) -> list[str]:
    return [f"{t.account_uid}/{t.region_id}" for t in targets]
