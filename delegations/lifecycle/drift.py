"""Drift: differences between a role in the cloud and what the portal wants.

The worker reports them (`drift_record`) and clears them when they disappear
(`drift_clear`); the owner decides (`drift_resolve`): *repair* puts the portal's state back,
*accept* makes the portal adopt the cloud's state.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext

from accounts.models import User
from accounts.permissions import require_admin_member
from audit.actions import AuditAction
from audit.services import audit_chain_lock, audit_record
from cloud import policies
from delegations import role_plan as planner
from delegations.lifecycle.services import delegation_revoke
from delegations.lifecycle.transitions import DelegationConflict
from delegations.models import (
    DESIRED_PRESENT_STATUSES,
    Delegation,
    DriftFinding,
    ManagedRole,
)
from delegations.outbox import outbox_enqueue_reconcile
from delegations.role_state import catalog_roles_of

Kind = DriftFinding.Kind
Resolution = DriftFinding.Resolution


def _audit_finding(
    *, finding: DriftFinding, action: AuditAction, actor: User | None, metadata: dict[str, Any]
) -> None:
    role = finding.managed_role
    audit_record(
        action=action,
        actor=actor,
        organisation=role.cloud_account.organisation,
        target=finding,
        target_label=f"{finding.get_kind_display()} on {role.role_name}",
        after={"resolution": finding.resolution, "resolved": finding.resolved_at is not None},
        metadata={
            "role_name": role.role_name,
            # A fleet's role has one name in each of the owner's accounts.
            "account_uid": role.cloud_account.account_uid,
            "kind": finding.kind,
            "subject": finding.subject,
            **metadata,
        },
    )


@transaction.atomic
def drift_record(
    *,
    managed_role: ManagedRole,
    kind: str,
    subject: str = "",
    details: dict[str, Any] | None = None,
) -> DriftFinding:
    """Report a difference. Reporting the same open difference again changes nothing."""
    if kind not in Kind.values:
        raise ValueError(f"Unknown drift kind {kind!r}.")
    subject = (subject or "")[:255]
    existing = DriftFinding.objects.filter(
        managed_role=managed_role, kind=kind, subject=subject, resolved_at__isnull=True
    ).first()
    if existing is not None:
        return existing
    try:
        with transaction.atomic():
            finding = DriftFinding.objects.create(
                managed_role=managed_role, kind=kind, subject=subject, details=details or {}
            )
    except IntegrityError:
        # A concurrent reconcile reported it first.
        return DriftFinding.objects.get(
            managed_role=managed_role, kind=kind, subject=subject, resolved_at__isnull=True
        )
    finding = DriftFinding.objects.select_related("managed_role__cloud_account__organisation").get(
        pk=finding.pk
    )
    _audit_finding(
        finding=finding, action=AuditAction.DRIFT_DETECTED, actor=None, metadata=details or {}
    )
    return finding


@transaction.atomic
def drift_clear(*, finding: DriftFinding) -> DriftFinding:
    """The worker no longer sees the difference (fixed by hand, or by a repair)."""
    locked = (
        DriftFinding.objects.select_for_update(of=("self",))
        .select_related("managed_role__cloud_account__organisation")
        .get(pk=finding.pk)
    )
    if locked.resolved_at is not None:
        return locked
    locked.resolved_at = timezone.now()
    locked.resolution = Resolution.GONE
    locked.save(update_fields=["resolved_at", "resolution"])
    _audit_finding(finding=locked, action=AuditAction.DRIFT_CLEARED, actor=None, metadata={})
    return locked


@transaction.atomic
def drift_resolve(*, finding: DriftFinding, resolved_by: User, resolution: str) -> DriftFinding:
    """The owner's choice for one open finding.

    repair: the worker reconciles the role back to the portal's desired state; an unmanaged
      principal the owner wants gone becomes managed so the worker removes it.
    accept: the portal adopts the cloud's state: a revoked partner that is back becomes "not
      managed here"; a missing principal or deleted role revokes the delegations that needed
      it; a detached policy leaves the catalogue role.
    """
    locked = (
        DriftFinding.objects.select_for_update(of=("self",))
        .select_related("managed_role__cloud_account__organisation")
        .get(pk=finding.pk)
    )
    role = locked.managed_role
    owner = role.cloud_account.organisation
    require_admin_member(
        resolved_by,
        owner,
        refusal=gettext("Only an admin of %(owner)s can resolve drift.") % {"owner": owner},
    )
    if resolution not in (Resolution.REPAIR, Resolution.ACCEPT):
        raise ValidationError({"resolution": gettext("Choose repair or accept.")})
    if locked.resolved_at is not None:
        if locked.resolution == resolution and locked.resolved_by_id == resolved_by.pk:
            return locked
        raise DelegationConflict(
            gettext("This difference was already resolved (%(resolution)s).")
            % {"resolution": locked.get_resolution_display().lower()}
        )

    effects: dict[str, Any] = {}
    # The project's lock order (delegation rows, audit chain head, role row), as approve and
    # revoke take it; locking the role first here could deadlock with them on PostgreSQL.
    list(Delegation.objects.select_for_update().filter(managed_role=role).order_by("pk"))
    audit_chain_lock()
    role = ManagedRole.objects.select_for_update().get(pk=role.pk)
    if resolution == Resolution.REPAIR:
        if locked.kind == Kind.UNMANAGED_PRINCIPAL_ADDED and locked.subject:
            if locked.subject not in role.known_principals:
                role.known_principals = [*role.known_principals, locked.subject]
                role.save(update_fields=["known_principals"])
            effects["principal_to_remove"] = locked.subject
        outbox_enqueue_reconcile(managed_role=role)
    else:
        effects = _accept(finding=locked, role=role, resolved_by=resolved_by)

    locked.resolution = resolution
    locked.resolved_at = timezone.now()
    locked.resolved_by = resolved_by
    locked.save(update_fields=["resolution", "resolved_at", "resolved_by"])
    _audit_finding(
        finding=locked,
        action=AuditAction.DRIFT_REPAIRED
        if resolution == Resolution.REPAIR
        else AuditAction.DRIFT_ACCEPTED,
        actor=resolved_by,
        metadata=effects,
    )
    return locked


def _accept(*, finding: DriftFinding, role: ManagedRole, resolved_by: User) -> dict[str, Any]:
    if finding.kind == Kind.UNMANAGED_PRINCIPAL_ADDED:
        return {"kept_unmanaged": finding.subject}
    if finding.kind == Kind.REVOKED_PRINCIPAL_BACK:
        role.known_principals = [p for p in role.known_principals if p != finding.subject]
        role.save(update_fields=["known_principals"])
        return {"no_longer_managed": finding.subject}
    if finding.kind in (Kind.MANAGED_PRINCIPAL_MISSING, Kind.ROLE_DELETED):
        affected = [
            delegation
            for delegation in Delegation.objects.filter(
                managed_role=role, status__in=DESIRED_PRESENT_STATUSES
            )
            if finding.kind == Kind.ROLE_DELETED or delegation.principal_arn == finding.subject
        ]
        reason = (
            "The owner accepted that the role was deleted outside the portal."
            if finding.kind == Kind.ROLE_DELETED
            else "The owner accepted that this partner was removed outside the portal."
        )
        for delegation in affected:
            delegation_revoke(delegation=delegation, revoked_by=resolved_by, reason=reason)
        return {"revoked_delegations": [str(d.pk) for d in affected]}
    if finding.kind == Kind.POLICY_DETACHED:
        policy_type, _, policy_name = finding.subject.partition(":")
        changed = []
        for catalog_role in catalog_roles_of(role).select_for_update():
            kept = [
                p
                for p in catalog_role.policies
                if not (p.get("type") == policy_type and p.get("name") == policy_name)
            ]
            if kept != catalog_role.policies:
                catalog_role.policies = kept
                catalog_role.save(update_fields=["policies", "updated_at"])
                changed.append(str(catalog_role.pk))
        outbox_enqueue_reconcile(managed_role=role)
        return {"policy_removed_from_catalogue": finding.subject, "catalog_roles": changed}
    raise ValidationError(gettext("This kind of difference cannot be accepted."))


# --- principals added outside the portal --------------------------------------------------


def accepted_as_unmanaged(managed_role: ManagedRole) -> set[str]:
    """Principals the owner accepted as someone else's: never reported again."""
    return set(
        DriftFinding.objects.filter(
            managed_role=managed_role,
            resolution=DriftFinding.Resolution.ACCEPT,
            kind__in=(Kind.UNMANAGED_PRINCIPAL_ADDED, Kind.REVOKED_PRINCIPAL_BACK),
        ).values_list("subject", flat=True)
    )


def unmanaged_principals(
    managed_role: ManagedRole, actual: planner.ActualRole | None
) -> frozenset[str]:
    """RAM principals in the trust policy the portal does not manage ("not managed here")."""
    if actual is None:
        return frozenset()
    principals = policies.trust_policy_principals(actual.trust_document)
    parking = policies.account_root_arn(managed_role.cloud_account.account_uid)
    known = set(managed_role.known_principals or ()) | {parking}
    return frozenset(principals.ram - known)


def record_unmanaged_principals(
    managed_role: ManagedRole, actual: planner.ActualRole | None
) -> int:
    """Called by the reconciler with what it verified: principals someone added outside the
    portal are kept, and reported once so the owner knows."""
    reported = sorted(
        unmanaged_principals(managed_role, actual) - accepted_as_unmanaged(managed_role)
    )
    for principal in reported:
        drift_record(
            managed_role=managed_role,
            kind=Kind.UNMANAGED_PRINCIPAL_ADDED,
            subject=principal,
            details={"seen_by": "reconcile"},
        )
    return len(reported)


# Marks a finding about a principal the portal saw and its write did not keep: the cloud no
# longer shows it, so the drift check must not clear it as "gone"; the owner decides.
NOT_KEPT_BY_WRITE = "not_kept_by_write"


def record_principals_not_kept(managed_role: ManagedRole, principals: list[str]) -> int:
    """Principals not managed here that a read before the worker's write showed and the write
    did not keep: either removed outside the portal meanwhile, or dropped because a read
    lagged. The worker cannot tell which, so the owner hears of each once."""
    accepted = accepted_as_unmanaged(managed_role)
    reported = [p for p in principals if p not in accepted]
    details = {
        "seen_by": "reconcile",
        NOT_KEPT_BY_WRITE: True,
        "note": (
            "Seen in the trust policy just before the portal wrote it, and not in what it "
            "wrote: removed outside the portal meanwhile, or dropped because the cloud answered "
            "with an old document. Add it back in RAM if it should stay."
        ),
    }
    for principal in reported:
        finding = drift_record(
            managed_role=managed_role,
            kind=Kind.UNMANAGED_PRINCIPAL_ADDED,
            subject=principal,
            details=details,
        )
        if not (finding.details or {}).get(NOT_KEPT_BY_WRITE):
            # Reported earlier while it was there; what happened since is news to the owner.
            _finding_not_kept(finding=finding, details=details)
    return len(reported)


@transaction.atomic
def _finding_not_kept(*, finding: DriftFinding, details: dict[str, Any]) -> None:
    locked = (
        DriftFinding.objects.select_for_update(of=("self",))
        .select_related("managed_role__cloud_account__organisation")
        .get(pk=finding.pk)
    )
    if locked.resolved_at is not None or (locked.details or {}).get(NOT_KEPT_BY_WRITE):
        return
    locked.details = {**(locked.details or {}), **details}
    locked.save(update_fields=["details"])
    _audit_finding(finding=locked, action=AuditAction.DRIFT_DETECTED, actor=None, metadata=details)
