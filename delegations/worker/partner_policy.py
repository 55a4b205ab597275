"""The partner-side worker: one RAM user's `portal-assume-<user>` policy in the partner's account.

`partner_user_policy_reconcile(policy_id=...)` makes the cloud match
`partner_user_desired_role_arns` (the ledger): a custom policy whose document is exactly
`assume_role_policy_for(<those role ARNs>)`, attached to the user; or, when no role is wanted,
no policy at all: detached from the user, its non-default versions deleted (RAM refuses to
delete a policy that still has them), then deleted. Never AliyunSTSAssumeRoleAccess.

It is the second subject of the reconcile engine (`delegations.worker.engine`): the same lease
(on the `PartnerUserPolicy` row), the same outbox (`reconcile_partner_user` messages, marked
done once the version the run started from is the one it converged to), the same `CloudCall`
rows with an intent committed before each mutating call and its audit events, the same
in-place retry of transient errors with backoff and `TransientCloudFailure` for the task to
retry later. Reads are verified after writes, since RAM reads may lag.

"Already exists" / "does not exist" answers are read as DONE (a lost response) or as "read
and plan again"; a same-named policy without the portal's marker is never touched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from cloud import policies
from cloud.client import CloudClient
from cloud.errors import CloudError
from core.i18n import stored_message, stored_text
from delegations.connection.services import cloud_account_client
from delegations.models import OutboxMessage, PartnerUserPolicy
from delegations.partner_access import partner_user_desired_role_arns
from delegations.worker.engine import (
    DONE,
    REPLAN,
    CloudOp,
    FailureInfo,
    PermanentFailure,
    Plan,
    Reconciler,
    Report,
    Subject,
    converge,
    reconcile_under_lease,
)
from delegations.worker.lease import Lease
from delegations.worker.recorder import Recorder

logger = logging.getLogger(__name__)

KIND = OutboxMessage.Kind.RECONCILE_PARTNER_USER
# Why the portal will not write a partner user's policy: stored, read in the reader's language.
POLICY_NOT_OURS_TEXT = stored_message(
    gettext_noop(
        "A custom policy called %(name)s already exists in the account and was not created by "
        "the portal; rename or delete it, then retry."
    )
)
RAM_USER_GONE_TEXT = stored_message(
    gettext_noop(
        "The RAM user %(user)s no longer exists in the account; link the staff member to an "
        "existing RAM user."
    )
)
POLICY_DESCRIPTION = "sts:AssumeRole on the roles this RAM user may use"


@dataclass(kw_only=True)
class PartnerReconcileReport(Report):
    policy_id: str
    role_arns: list[str] = field(default_factory=list)


class PartnerUserPolicyLease(Lease):
    """The engine's lease on a `PartnerUserPolicy` row."""

    model = PartnerUserPolicy


def policy_recorder(policy: PartnerUserPolicy, *, lease: Lease) -> Recorder:
    """The engine's recorder for calls about `policy`, audited to the partner organisation."""
    return Recorder(
        lease=lease,
        organisation=policy.cloud_account.organisation,
        subject={"partner_user_policy": policy},
        audit_subject={
            "partner_user_policy": str(policy.pk),
            "ram_user_name": policy.ram_user_name,
        },
    )


@dataclass(frozen=True)
class _Actual:
    """What the partner's account has for this user."""

    policy_exists: bool
    policy_is_ours: bool
    role_arns: frozenset[str] | None  # None: the document is not a plain AssumeRole grant
    attached: bool
    user_exists: bool
    # Read only when nothing is wanted: RAM deletes a policy only once it has no other
    # versions, so these are deleted first.
    old_versions: tuple[str, ...] = ()


def role_arns_in(document: str | None) -> frozenset[str] | None:
    """The role ARNs of a document the portal wrote (`assume_role_policy_for`), or None when
    the document says anything else."""
    if not document:
        return None
    try:
        canonical = policies.canonical_policy(document, trust=False)
    except policies.PolicyError:
        return None
    arns: set[str] = set()
    for statement in canonical.get("Statement", []):
        if statement.get("Effect") != "Allow" or statement.get("Action") not in (
            "sts:AssumeRole",
            ["sts:AssumeRole"],
        ):
            return None
        if set(statement) - {"Effect", "Action", "Resource"}:
            return None
        resource = statement.get("Resource")
        for arn in [resource] if isinstance(resource, str) else list(resource or []):
            arns.add(arn)
    return frozenset(arns)


def _read(
    client: CloudClient,
    recorder: Recorder,
    policy: PartnerUserPolicy,
    *,
    versions: bool = False,
) -> _Actual:
    name = policy.policy_name
    found = recorder.read(
        client,
        "GetPolicy",
        f"policy/Custom/{name}",
        lambda: client.get_policy(policy_type="Custom", policy_name=name),
    )
    user_exists = True
    try:
        attached_list = recorder.read(
            client,
            "ListPoliciesForUser",
            f"user/{policy.ram_user_name}",
            lambda: client.list_policies_for_user(policy.ram_user_name),
        )
    except CloudError as error:
        if error.code != "EntityNotExist.User":
            raise
        attached_list = []
        user_exists = False
    attached = any(p.policy_type == "Custom" and p.policy_name == name for p in attached_list)
    if found is None:
        return _Actual(False, False, frozenset(), attached, user_exists)
    old_versions: tuple[str, ...] = ()
    ours = policies.has_marker(found.description)
    if versions and ours:
        listed = recorder.read(
            client,
            "ListPolicyVersions",
            f"policy/Custom/{name}",
            lambda: client.list_policy_versions(policy_type="Custom", policy_name=name),
        )
        old_versions = tuple(v.version_id for v in listed if not v.is_default)
    return _Actual(
        policy_exists=True,
        policy_is_ours=ours,
        role_arns=role_arns_in(found.document),
        attached=attached,
        user_exists=user_exists,
        old_versions=old_versions,
    )


def _op(
    action: str,
    target: str,
    summary: dict[str, Any],
    send: Callable[[CloudClient], Any],
    answers: dict[str, str],
) -> CloudOp:
    """`answers`: cloud error code → DONE (the effect is there) or REPLAN (read again)."""
    return CloudOp(
        action=action,
        target=target,
        summary=summary,
        send=send,
        answer=lambda error: answers.get(error.code or ""),
    )


def _delete_policy_version(name: str, version_id: str) -> Callable[[CloudClient], Any]:
    """The call deleting one old version (bound here, not in the loop that plans them)."""
    return lambda c: c.delete_policy_version(policy_name=name, version_id=version_id)


def _plan(policy: PartnerUserPolicy, actual: _Actual, desired: frozenset[str]) -> list[CloudOp]:
    name, user = policy.policy_name, policy.ram_user_name
    policy_target = f"policy/Custom/{name}"
    attach_target = f"user/{user} policy/Custom/{name}"
    ops: list[CloudOp] = []
    if actual.policy_exists and not actual.policy_is_ours:
        raise PermanentFailure(
            FailureInfo(
                code="PolicyNotManagedByPortal",
                message=stored_text(POLICY_NOT_OURS_TEXT, name=name),
            )
        )
    if desired:
        if not actual.user_exists:
            raise PermanentFailure(
                FailureInfo(
                    code="EntityNotExist.User",
                    message=stored_text(RAM_USER_GONE_TEXT, user=user),
                )
            )
        document = policies.assume_role_policy_for(desired)
        summary = {"policy_name": name, "ram_user_name": user, "role_arns": sorted(desired)}
        if not actual.policy_exists:
            ops.append(
                _op(
                    "CreatePolicy",
                    policy_target,
                    summary,
                    lambda c: c.create_policy(
                        policy_name=name,
                        document=document,
                        description=policies.description_with_marker(POLICY_DESCRIPTION),
                    ),
                    {"EntityAlreadyExists.Policy": REPLAN},
                )
            )
        elif actual.role_arns != desired:
            ops.append(
                _op(
                    "CreatePolicyVersion",
                    policy_target,
                    summary,
                    lambda c: c.create_policy_version(
                        policy_name=name, document=document, set_as_default=True, rotate=True
                    ),
                    {"EntityNotExist.Policy": REPLAN},
                )
            )
        if not actual.attached:
            ops.append(
                _op(
                    "AttachPolicyToUser",
                    attach_target,
                    {"policy_name": name, "ram_user_name": user},
                    lambda c: c.attach_policy_to_user(
                        user_name=user, policy_type="Custom", policy_name=name
                    ),
                    {"EntityAlreadyExists.User.Policy": DONE, "EntityNotExist.Policy": REPLAN},
                )
            )
        return ops
    if actual.attached:
        ops.append(
            _op(
                "DetachPolicyFromUser",
                attach_target,
                {"policy_name": name, "ram_user_name": user},
                lambda c: c.detach_policy_from_user(
                    user_name=user, policy_type="Custom", policy_name=name
                ),
                {
                    "EntityNotExist.User.Policy": DONE,
                    "EntityNotExist.User": DONE,
                    "EntityNotExist.Policy": DONE,
                },
            )
        )
    if actual.policy_exists:
        # RAM refuses DeletePolicy while non-default versions remain (DeleteConflict.Policy.
        # Version), so they go first; one already gone (a lost answer) is done.
        for version_id in actual.old_versions:
            ops.append(
                _op(
                    "DeletePolicyVersion",
                    f"{policy_target} version/{version_id}",
                    {"policy_name": name, "version_id": version_id},
                    _delete_policy_version(name, version_id),
                    {
                        "EntityNotExist.Policy.Version": DONE,
                        "EntityNotExist.Policy": REPLAN,
                        # It became the default meanwhile: someone else changed the policy.
                        "DeleteConflict.Policy.Version.Default": REPLAN,
                    },
                )
            )
        ops.append(
            _op(
                "DeletePolicy",
                policy_target,
                {"policy_name": name},
                lambda c: c.delete_policy(name),
                {
                    "EntityNotExist.Policy": DONE,
                    "DeleteConflict.Policy.User": REPLAN,
                    "DeleteConflict.Policy.Version": REPLAN,
                },
            )
        )
    return ops


def _matches(actual: _Actual, desired: frozenset[str]) -> bool:
    if desired:
        return (
            actual.policy_exists
            and actual.policy_is_ours
            and actual.role_arns == desired
            and actual.attached
        )
    return not actual.attached and not actual.policy_exists


@dataclass(kw_only=True, eq=False)
class PolicySubject(Subject):
    """The engine's subject for one round on a RAM user's policy: the desired role ARNs."""

    policy: PartnerUserPolicy
    desired: frozenset[str]
    client: CloudClient

    def read(self, *, expected: Any) -> _Actual:
        # A permanent error on a read fails the policy visibly: its staff page shows it.
        try:
            return _read(self.client, self.recorder, self.policy, versions=not self.desired)
        except CloudError as error:
            if error.permanent:
                raise PermanentFailure(FailureInfo.from_error(error)) from None
            raise

    def plan(self, actual: _Actual) -> Plan:
        return Plan(ops=_plan(self.policy, actual, self.desired), expected=self.desired)

    def matches(self, current: Any, expected: Any) -> bool:
        return _matches(current, expected)

    def describe(self) -> str:
        return f"The policy {self.policy.policy_name}"


class _PolicyReconciler(Reconciler):
    kind = KIND

    def __init__(self, policy_id: Any, *, lease: Lease) -> None:
        super().__init__(
            policy_id, lease=lease, report=PartnerReconcileReport(policy_id=str(policy_id))
        )
        self.report: PartnerReconcileReport
        self.policy: PartnerUserPolicy | None = None
        self._client: CloudClient | None = None

    def load(self) -> int:
        self.policy = _load(self.object_id)
        return self.policy.desired_version

    def _client_for(self, policy: PartnerUserPolicy) -> CloudClient:
        if self._client is None:
            try:
                self._client = make_partner_client(policy)
            except Exception as error:  # a disconnected account: nothing can be done
                raise PermanentFailure(
                    FailureInfo(code="PartnerAccountNotConnected", message=str(error))
                ) from None
        return self._client

    def round(self) -> None:
        policy = self.policy
        assert policy is not None
        policy_recorder(policy, lease=self.lease).close_dangling_intents()
        desired = frozenset(
            partner_user_desired_role_arns(
                cloud_account=policy.cloud_account, ram_user_name=policy.ram_user_name
            )
        )
        self.report.role_arns = sorted(desired)
        client = self._client_for(policy)
        self.recorder = recorder = policy_recorder(policy, lease=self.lease)
        subject = PolicySubject(
            policy=policy, desired=desired, lease=self.lease, recorder=recorder, client=client
        )
        try:
            actual = converge(subject, client=client)
        finally:
            self.report.mutating_calls += recorder.mutations_sent
            # Answers the recorder still holds (reads, results) are written now.
            recorder.flush()
        self.seen.update(
            applied_role_arns=sorted(actual.role_arns or []) if actual.attached else [],
            policy_attached=actual.attached,
            last_error_code="",
            last_error_message="",
            last_error_request_id="",
            last_error_at=None,
        )

    def fail(self, info: FailureInfo) -> bool:
        assert self.policy is not None
        _record_failure(self.policy, info)
        return False

    def failure_note(self, info: FailureInfo) -> str:
        return f"failed: {info.code}"


def _load(policy_id: Any) -> PartnerUserPolicy:
    return PartnerUserPolicy.objects.select_related(
        "cloud_account", "cloud_account__organisation"
    ).get(pk=policy_id)


def _record_failure(policy: PartnerUserPolicy, info: FailureInfo) -> None:
    with transaction.atomic():
        PartnerUserPolicy.objects.filter(pk=policy.pk).update(
            last_error_code=info.code[:128],
            last_error_message=info.message[:2000],
            last_error_request_id=(info.request_id or "")[:64],
            last_error_at=timezone.now(),
        )
        audit_record(
            action=AuditAction.PARTNER_POLICY_FAILED,
            organisation=policy.cloud_account.organisation,
            target=policy,
            metadata={
                "ram_user_name": policy.ram_user_name,
                "policy_name": policy.policy_name,
                "error_code": info.code,
                "error_message": info.message,
                "cloud_request_id": info.request_id,
            },
            outcome=AuditEvent.Outcome.FAILURE,
        )
    logger.warning(
        "Partner policy %s for %s failed: %s (request id %s)",
        policy.policy_name,
        policy.ram_user_name,
        info.code,
        info.request_id,
    )


def make_partner_client(policy: PartnerUserPolicy) -> CloudClient:
    """The SDK client for the partner's account, its key decrypted here, inside the worker.
    Tests may replace it to inject faults."""
    return cloud_account_client(cloud_account=policy.cloud_account)


def partner_user_policy_reconcile(
    *, policy_id: Any, last_try: bool = False
) -> PartnerReconcileReport:
    """Bring one RAM user's AssumeRole policy in line with the ledger. Raises
    `TransientCloudFailure` when the cloud keeps failing transiently (the lease is freed).
    On the task's `last_try` it gives up instead: the last error shows on the partner's staff
    page. The policy stays pending (`Reconciler.give_up`): the periodic sync asks for it again,
    so a grant written before the cloud failed, and no longer wanted, is taken away once the
    cloud answers. A policy whose lease is held is left to its holder ("busy"), which settles
    it."""
    reconciler = _PolicyReconciler(policy_id, lease=PartnerUserPolicyLease(policy_id))
    reconcile_under_lease(reconciler, last_try=last_try)
    return reconciler.report
