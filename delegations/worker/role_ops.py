"""One planner operation of an owner's role (`delegations.role_plan`) as the reconcile engine
sends it (`delegations.worker.engine.CloudOp`): the SDK call, what its record and audit event
say, how a definite "exists / does not exist" answer is read, and how a refusal the owner can
act on is told. Used by the owner-role reconcile (`delegations.worker.owner_role`)."""

from __future__ import annotations

from typing import Any

from django.utils.translation import gettext_noop

from cloud import policies
from cloud.client import CloudClient
from cloud.errors import CloudError
from core.i18n import stored_message, stored_text
from delegations import role_plan as planner
from delegations.models import CloudAccount
from delegations.worker.engine import DONE, REPLAN, CloudOp, FailureInfo
from delegations.worker.trust_writes import trusted_principals

# A delegation's last error when its Custom policy is missing in the account: stored in
# English, read in the reader's language (the grant-time refusal says the same).
CUSTOM_POLICY_MISSING_TEXT = stored_message(
    gettext_noop(
        "Custom policy %(policy)s does not exist in the account %(account)s; create it there "
        "first, then retry."
    )
)


def _summary(op: planner.Operation, before: planner.ActualRole | None) -> dict[str, Any]:
    summary: dict[str, Any] = {"role_name": op.role_name}
    if isinstance(op, planner.AttachPolicy | planner.DetachPolicy):
        summary.update(policy_type=op.policy_type, policy_name=op.policy_name)
    document = getattr(op, "trust_document", None)
    if document is not None:
        after = policies.trust_policy_principals(document).ram
        previous = trusted_principals(before)
        summary.update(
            principals_added=sorted(after - previous),
            principals_removed=sorted(previous - after),
            # The whole set the write leaves, so a later run can tell whether a read shows it
            # (`last_trust_write`); with the two lists above it also gives the set before.
            trust_principals=sorted(after),
        )
    session = getattr(op, "max_session_duration", None)
    if session is not None:
        summary["max_session_duration"] = session
    return summary


def _target(op: planner.Operation) -> str:
    if isinstance(op, planner.AttachPolicy | planner.DetachPolicy):
        return f"role/{op.role_name} policy/{op.policy_type}/{op.policy_name}"
    return f"role/{op.role_name}"


def _send(client: CloudClient, op: planner.Operation) -> None:
    if isinstance(op, planner.CreateRole):
        client.create_role(
            op.role_name,
            trust_document=op.trust_document,
            description=op.description,
            max_session_duration=op.max_session_duration,
        )
    elif isinstance(op, planner.UpdateRole):
        client.update_role(
            op.role_name,
            trust_document=op.trust_document,
            description=op.description,
            max_session_duration=op.max_session_duration,
        )
    elif isinstance(op, planner.AttachPolicy):
        client.attach_policy_to_role(
            role_name=op.role_name, policy_type=op.policy_type, policy_name=op.policy_name
        )
    elif isinstance(op, planner.DetachPolicy):
        client.detach_policy_from_role(
            role_name=op.role_name, policy_type=op.policy_type, policy_name=op.policy_name
        )
    elif isinstance(op, planner.DeleteRole):
        client.delete_role(op.role_name)
    else:  # pragma: no cover - the planner has no other operations
        raise TypeError(f"Unknown operation {op!r}")


def _answer(op: planner.Operation, error: CloudError) -> str | None:
    """How to read a definite "exists / does not exist" answer (the role carries the portal's
    marker: the planner refuses any other). "done": the effect is already there (our earlier
    request succeeded but its response was lost); "replan": the role changed under us."""
    code = error.code or ""
    if isinstance(op, planner.AttachPolicy):
        if code == "EntityAlreadyExists.Role.Policy":
            return DONE
        if code == "EntityNotExist.Role":
            return REPLAN
        return None
    if isinstance(op, planner.DetachPolicy):
        if code == "EntityNotExist.Role.Policy":
            return DONE
        if code == "EntityNotExist.Role":
            return REPLAN
        return None
    if isinstance(op, planner.DeleteRole):
        if code == "EntityNotExist.Role":
            return DONE
        if error.is_delete_conflict:
            return REPLAN  # a policy was attached meanwhile: detach it first
        return None
    if isinstance(op, planner.CreateRole) and error.is_already_exists:
        # Ours (lost response) or someone else's: the next read and the planner tell which.
        return REPLAN
    if isinstance(op, planner.UpdateRole) and code == "EntityNotExist.Role":
        return REPLAN
    return None


def _explain(
    op: planner.Operation, error: CloudError, *, account: CloudAccount
) -> FailureInfo | None:
    """The portal's own words for a refusal the owner can act on. A Custom policy is one
    account's own: attaching one the account has none of (never made there, or deleted since
    the grant was decided) is refused with EntityNotExist.Policy, whose message need not say
    which policy, nor which of the owner's accounts."""
    if isinstance(op, planner.AttachPolicy) and error.code == "EntityNotExist.Policy":
        info = FailureInfo.from_error(error)
        return FailureInfo(
            code=info.code,
            request_id=info.request_id,
            message=stored_text(
                CUSTOM_POLICY_MISSING_TEXT, policy=op.policy_name, account=account.label
            ),
        )
    return None


def role_op(
    op: planner.Operation, *, before: planner.ActualRole | None, account: CloudAccount
) -> CloudOp:
    """One planner operation as the engine sends it, in the owner's `account`."""
    return CloudOp(
        action=op.action,
        target=_target(op),
        summary=_summary(op, before),
        send=lambda client: _send(client, op),
        answer=lambda error: _answer(op, error),
        explain=lambda error: _explain(op, error, account=account),
    )
