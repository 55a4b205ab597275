"""The partner-side worker: one RAM user's `portal-assume-<user>` policy in the partner's account.

`partner_user_policy_reconcile(policy_id=...)` makes the cloud match
`partner_user_desired_role_arns` (the ledger): a custom policy whose document is exactly
`assume_role_policy_for(<those role ARNs>)`, attached to the user; or, when no role is wanted,
no policy at all: detached from the user, its non-default versions deleted (RAM refuses to
delete a policy that still has them), then deleted. Never AliyunSTSAssumeRoleAccess.

It is the owner side's mechanism with another subject: the same lease (`RoleLease` on the
`PartnerUserPolicy` row), the same outbox (`reconcile_partner_user` messages, marked done once
the version the run started from is the one it converged to), the same `CloudCall` rows with
an intent committed before each mutating call and its audit events (`_Recorder`), the same
in-place retry of transient errors with backoff and `TransientCloudFailure` for the task to
retry later. Reads are verified after writes, since RAM reads may lag.

"Already exists" / "does not exist" answers are read as "done" (a lost response) or as "read
and plan again"; a same-named policy without the portal's marker is never touched.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from audit.models import AuditEvent
from audit.services import audit_record
from cloud import policies
from cloud.client import CloudClient
from cloud.errors import CloudError
from delegations.connection.services import cloud_account_client
from delegations.models import CloudCall, OutboxMessage, PartnerUserPolicy
from delegations.partner.services import partner_user_desired_role_arns
from delegations.worker.owner_role import (
    FailureInfo,
    LeaseLost,
    RoleLease,
    TransientCloudFailure,
    _ask,
    _PermanentFailure,
    _Recorder,
    _Replan,
    backoff_seconds,
)

logger = logging.getLogger(__name__)

KIND = OutboxMessage.Kind.RECONCILE_PARTNER_USER
POLICY_DESCRIPTION = "sts:AssumeRole on the roles this RAM user may use"


def _setting(name: str, default: float) -> float:
    from django.conf import settings

    return getattr(settings, name, default)


class PartnerReconcileOutcome(StrEnum):
    CONVERGED = "converged"
    BUSY = "busy"
    FAILED = "failed"
    LEASE_LOST = "lease_lost"


@dataclass
class PartnerReconcileReport:
    policy_id: str
    outcome: PartnerReconcileOutcome
    rounds: int = 0
    mutating_calls: int = 0
    role_arns: list[str] = field(default_factory=list)
    error_code: str = ""


class PartnerUserPolicyLease(RoleLease):
    """The owner side's lease, on the `PartnerUserPolicy` row."""

    model = PartnerUserPolicy


class _PartnerRecorder(_Recorder):
    """The owner side's CloudCall recorder, with the partner's policy as subject and the
    partner organisation as the audit scope."""

    def __init__(self, *, policy: PartnerUserPolicy, lease: RoleLease) -> None:
        self.policy = policy
        self.role = None  # type: ignore[assignment]
        self.lease = lease
        self.owner = policy.cloud_account.organisation
        self.delegation_ids = []
        self.role_changes = {}
        self.mutations_sent = 0
        self.mutations_succeeded = 0
        self._unwritten = []

    def _subject(self) -> dict[str, Any]:
        return {"partner_user_policy": self.policy}

    def _audit_subject(self) -> dict[str, str]:
        return {
            "partner_user_policy": str(self.policy.pk),
            "ram_user_name": self.policy.ram_user_name,
        }


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


def _recorded_read(
    recorder: _PartnerRecorder,
    client: CloudClient,
    action: str,
    target: str,
    call: Callable[[], Any],
) -> Any:
    """One read through the owner side's recorder: a CloudCall row once it answered."""
    answer = _ask(client, call)
    recorder.record_read(action, target, answer)
    if answer.error is not None:
        raise answer.error
    return answer.value


def _read(
    client: CloudClient,
    recorder: _PartnerRecorder,
    policy: PartnerUserPolicy,
    *,
    versions: bool = False,
) -> _Actual:
    name = policy.policy_name
    found = _recorded_read(
        recorder,
        client,
        "GetPolicy",
        f"policy/Custom/{name}",
        lambda: client.get_policy(policy_type="Custom", policy_name=name),
    )
    user_exists = True
    try:
        attached_list = _recorded_read(
            recorder,
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
        listed = _recorded_read(
            recorder,
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


@dataclass(frozen=True)
class _Op:
    action: str
    target: str
    summary: dict[str, Any]
    send: Callable[[CloudClient], Any]
    # cloud error code → "done" (the effect is there) or "replan" (read again)
    answers: dict[str, str]


def _delete_policy_version(name: str, version_id: str) -> Callable[[CloudClient], Any]:
    """The call deleting one old version (bound here, not in the loop that plans them)."""
    return lambda c: c.delete_policy_version(policy_name=name, version_id=version_id)


def _plan(policy: PartnerUserPolicy, actual: _Actual, desired: frozenset[str]) -> list[_Op]:
    name, user = policy.policy_name, policy.ram_user_name
    policy_target = f"policy/Custom/{name}"
    attach_target = f"user/{user} policy/Custom/{name}"
    ops: list[_Op] = []
    if actual.policy_exists and not actual.policy_is_ours:
        raise _PermanentFailure(
            FailureInfo(
                code="PolicyNotManagedByPortal",
                message=f"A custom policy called {name} already exists in the account and was "
                "not created by the portal; rename or delete it, then retry.",
            )
        )
    if desired:
        if not actual.user_exists:
            raise _PermanentFailure(
                FailureInfo(
                    code="EntityNotExist.User",
                    message=f"The RAM user {user} no longer exists in the account; link the "
                    "staff member to an existing RAM user.",
                )
            )
        document = policies.assume_role_policy_for(desired)
        summary = {"policy_name": name, "ram_user_name": user, "role_arns": sorted(desired)}
        if not actual.policy_exists:
            ops.append(
                _Op(
                    "CreatePolicy",
                    policy_target,
                    summary,
                    lambda c: c.create_policy(
                        policy_name=name,
                        document=document,
                        description=policies.description_with_marker(POLICY_DESCRIPTION),
                    ),
                    {"EntityAlreadyExists.Policy": "replan"},
                )
            )
        elif actual.role_arns != desired:
            ops.append(
                _Op(
                    "CreatePolicyVersion",
                    policy_target,
                    summary,
                    lambda c: c.create_policy_version(
                        policy_name=name, document=document, set_as_default=True, rotate=True
                    ),
                    {"EntityNotExist.Policy": "replan"},
                )
            )
        if not actual.attached:
            ops.append(
                _Op(
                    "AttachPolicyToUser",
                    attach_target,
                    {"policy_name": name, "ram_user_name": user},
                    lambda c: c.attach_policy_to_user(
                        user_name=user, policy_type="Custom", policy_name=name
                    ),
                    {"EntityAlreadyExists.User.Policy": "done", "EntityNotExist.Policy": "replan"},
                )
            )
        return ops
    if actual.attached:
        ops.append(
            _Op(
                "DetachPolicyFromUser",
                attach_target,
                {"policy_name": name, "ram_user_name": user},
                lambda c: c.detach_policy_from_user(
                    user_name=user, policy_type="Custom", policy_name=name
                ),
                {
                    "EntityNotExist.User.Policy": "done",
                    "EntityNotExist.User": "done",
                    "EntityNotExist.Policy": "done",
                },
            )
        )
    if actual.policy_exists:
        # RAM refuses DeletePolicy while non-default versions remain (DeleteConflict.Policy.
        # Version), so they go first; one already gone (a lost answer) is done.
        for version_id in actual.old_versions:
            ops.append(
                _Op(
                    "DeletePolicyVersion",
                    f"{policy_target} version/{version_id}",
                    {"policy_name": name, "version_id": version_id},
                    _delete_policy_version(name, version_id),
                    {
                        "EntityNotExist.Policy.Version": "done",
                        "EntityNotExist.Policy": "replan",
                        # It became the default meanwhile: someone else changed the policy.
                        "DeleteConflict.Policy.Version.Default": "replan",
                    },
                )
            )
        ops.append(
            _Op(
                "DeletePolicy",
                policy_target,
                {"policy_name": name},
                lambda c: c.delete_policy(name),
                {
                    "EntityNotExist.Policy": "done",
                    "DeleteConflict.Policy.User": "replan",
                    "DeleteConflict.Policy.Version": "replan",
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


class _PartnerReconciler:
    def __init__(self, policy_id: Any, *, lease: RoleLease) -> None:
        self.policy_id = policy_id
        self.lease = lease
        self.report = PartnerReconcileReport(
            policy_id=str(policy_id), outcome=PartnerReconcileOutcome.CONVERGED
        )
        self._client: CloudClient | None = None

    def _load(self) -> PartnerUserPolicy:
        return PartnerUserPolicy.objects.select_related(
            "cloud_account", "cloud_account__organisation"
        ).get(pk=self.policy_id)

    def _watermark(self) -> int:
        return (
            OutboxMessage.objects.filter(kind=KIND, object_id=str(self.policy_id)).aggregate(
                top=Max("id")
            )["top"]
            or 0
        )

    def _mark_outbox_done(self, watermark: int, note: str = "") -> None:
        if watermark:
            OutboxMessage.objects.filter(
                kind=KIND, object_id=str(self.policy_id), id__lte=watermark, done_at__isnull=True
            ).update(done_at=timezone.now(), last_error=note[:255])

    def _close_dangling_intents(self, policy: PartnerUserPolicy) -> None:
        """Intents of a worker that died before recording the answer: we hold the lease, so
        nobody still waits for them; the read that follows tells what they did."""
        dangling = CloudCall.objects.filter(
            partner_user_policy=policy, outcome=CloudCall.Outcome.PENDING
        ).exclude(worker=self.lease.token)
        for call in list(dangling.order_by("id")):
            with transaction.atomic():
                if not CloudCall.objects.filter(
                    pk=call.pk, outcome=CloudCall.Outcome.PENDING
                ).update(
                    outcome=CloudCall.Outcome.UNKNOWN,
                    finished_at=timezone.now(),
                    note="resolved by reconcile",
                ):
                    continue
                call.refresh_from_db()
                _PartnerRecorder(policy=policy, lease=self.lease)._audit(
                    call, action="cloud.call_result", outcome=AuditEvent.Outcome.FAILURE
                )

    def run(self) -> PartnerReconcileReport:
        max_rounds = int(_setting("PORTAL_RECONCILE_MAX_ROUNDS", 20))
        for _ in range(max_rounds):
            policy = self._load()
            self._close_dangling_intents(policy)
            version = policy.desired_version
            watermark = self._watermark()
            desired = frozenset(
                partner_user_desired_role_arns(
                    cloud_account=policy.cloud_account, ram_user_name=policy.ram_user_name
                )
            )
            self.report.rounds += 1
            self.report.role_arns = sorted(desired)
            try:
                actual = self._converge(policy, desired)
            except _PermanentFailure as failure:
                self._record_failure(policy, failure.info)
                self.report.outcome = PartnerReconcileOutcome.FAILED
                self.report.error_code = failure.info.code
                self._mark_outbox_done(watermark, f"failed: {failure.info.code}")
                self.lease.release(applied_version=version)
                return self.report
            PartnerUserPolicy.objects.filter(pk=policy.pk).update(
                applied_role_arns=sorted(actual.role_arns or []) if actual.attached else [],
                policy_attached=actual.attached,
                last_error_code="",
                last_error_message="",
                last_error_request_id="",
                last_error_at=None,
            )
            if self.lease.release_if_converged(version=version):
                self._mark_outbox_done(watermark)
                return self.report
        self.lease.release()
        return self.report

    def _client_for(self, policy: PartnerUserPolicy) -> CloudClient:
        if self._client is None:
            try:
                self._client = make_partner_client(policy)
            except Exception as error:  # a disconnected account: nothing can be done
                raise _PermanentFailure(
                    FailureInfo(code="PartnerAccountNotConnected", message=str(error))
                ) from None
        return self._client

    def _converge(self, policy: PartnerUserPolicy, desired: frozenset[str]) -> _Actual:
        client = self._client_for(policy)
        recorder = _PartnerRecorder(policy=policy, lease=self.lease)
        versions = not desired

        def read() -> _Actual:
            return self._with_retries(lambda: _read(client, recorder, policy, versions=versions))

        try:
            actual = read()
            for _ in range(int(_setting("PORTAL_RECONCILE_MAX_REPLANS", 4))):
                ops = _plan(policy, actual, desired)
                if not ops:
                    return actual
                try:
                    for op in ops:
                        self._mutate(client, recorder, op)
                except _Replan:
                    actual = read()
                    continue
                verified = self._verify(read, desired)
                if verified is not None:
                    return verified
                actual = read()
        finally:
            self.report.mutating_calls += recorder.mutations_sent
            # Answers the recorder still holds (reads, results) are written now.
            recorder.flush()
        raise TransientCloudFailure(
            CloudError(
                code="ReconcileDidNotSettle",
                message=f"The policy {policy.policy_name} kept changing; the portal will try "
                "again.",
                action="Reconcile",
                category=None,
                transport=True,
            )
        )

    def _with_retries(self, call: Callable[[], Any]) -> Any:
        attempts = int(_setting("PORTAL_RECONCILE_INLINE_ATTEMPTS", 4))
        max_wait = _setting("PORTAL_RECONCILE_INLINE_MAX_WAIT_SECONDS", 3.0)
        for attempt in range(attempts):
            try:
                return call()
            except CloudError as error:
                if error.permanent:
                    raise _PermanentFailure(FailureInfo.from_error(error)) from None
                wait = backoff_seconds(attempt, retry_after_ms=error.retry_after_ms)
                if attempt + 1 >= attempts or wait > max_wait:
                    raise TransientCloudFailure(error) from None
                time.sleep(wait)
                self.lease.renew()
        raise AssertionError("unreachable")  # pragma: no cover

    def _mutate(self, client: CloudClient, recorder: _PartnerRecorder, op: _Op) -> None:
        def attempt() -> None:
            call = recorder.intent(op.action, op.target, op.summary)
            try:
                op.send(client)
            except CloudError as error:
                answer = op.answers.get(error.code or "") if error.permanent else None
                recorder.finish(
                    call,
                    error=error,
                    note=f"already {'done' if answer == 'done' else 'changed'}" if answer else "",
                )
                if answer == "done":
                    return
                if answer == "replan":
                    raise _Replan() from None
                raise
            recorder.finish(call, request_id=client.last_request_id or "")

        self._with_retries(attempt)

    def _verify(self, read: Callable[[], _Actual], desired: frozenset[str]) -> _Actual | None:
        """Re-read until the cloud shows what was written, within a bounded time (RAM reads
        may lag a write). None when it never did."""
        deadline = time.monotonic() + _setting("PORTAL_RECONCILE_VERIFY_TIMEOUT_SECONDS", 20.0)
        delay = _setting("PORTAL_RECONCILE_VERIFY_FIRST_DELAY_SECONDS", 0.05)
        while True:
            current = read()
            if _matches(current, desired):
                return current
            if time.monotonic() + delay > deadline:
                return None
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
            self.lease.renew()

    def _record_failure(self, policy: PartnerUserPolicy, info: FailureInfo) -> None:
        with transaction.atomic():
            PartnerUserPolicy.objects.filter(pk=policy.pk).update(
                last_error_code=info.code[:128],
                last_error_message=info.message[:2000],
                last_error_request_id=(info.request_id or "")[:64],
                last_error_at=timezone.now(),
            )
            audit_record(
                action="partner_policy.failed",
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


def partner_user_policy_reconcile(*, policy_id: Any) -> PartnerReconcileReport:
    """Bring one RAM user's AssumeRole policy in line with the ledger. Raises
    `TransientCloudFailure` when the cloud keeps failing transiently (the lease is freed)."""
    lease = PartnerUserPolicyLease(policy_id)
    if not lease.claim():
        return PartnerReconcileReport(
            policy_id=str(policy_id), outcome=PartnerReconcileOutcome.BUSY
        )
    reconciler = _PartnerReconciler(policy_id, lease=lease)
    try:
        return reconciler.run()
    except LeaseLost:
        reconciler.report.outcome = PartnerReconcileOutcome.LEASE_LOST
        return reconciler.report
    except BaseException:
        lease.release()
        raise


def partner_user_policy_record_failure(*, policy_id: Any, error: CloudError) -> None:
    """The task's retries are exhausted: show the last error on the partner's staff page."""
    policy = PartnerUserPolicy.objects.select_related("cloud_account__organisation").get(
        pk=policy_id
    )
    info = FailureInfo.from_error(error)
    _PartnerReconciler(policy_id, lease=PartnerUserPolicyLease(policy_id))._record_failure(
        policy,
        FailureInfo(
            code=info.code,
            message=f"{info.message} (gave up after repeated retries)",
            request_id=info.request_id,
        ),
    )
    version = policy.desired_version
    PartnerUserPolicy.objects.filter(pk=policy.pk, desired_version=version, locked_by="").update(
        applied_version=version
    )
    OutboxMessage.objects.filter(kind=KIND, object_id=str(policy.pk), done_at__isnull=True).update(
        done_at=timezone.now(), last_error=f"gave up: {info.code}"[:255]
    )
