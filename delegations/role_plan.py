"""The reconciliation planner for one RAM role: a pure function from (actual, desired) to calls.

`plan_role_reconciliation` reads nothing and calls nothing. The delegation service reads the
role (`CloudClient.get_role` + `list_policies_for_role` → `ActualRole.from_cloud`), builds the
`DesiredRole` from *all* the portal's delegations on that role, plans, runs the operations in
order through `CloudClient`, then reads back and re-plans: an empty plan is the verification.

Rules the plan follows:

* A role that exists without the portal's marker in its Description is never touched: the
  answer is a `Refusal` (a same-named role the portal did not create is not adopted silently).
* The trust policy is merged, never rebuilt: principals, statements and conditions the portal
  does not manage are kept exactly (`cloud.policies.merge_trust_policy`).
* When no managed principal is wanted any more, a portal-created role is deleted (policies
  detached first, DeleteRole last) if `delete_when_empty` and nobody else is trusted; a role
  that still trusts an unmanaged principal is kept, since deleting it would cut them off.
  When the role is kept with no principal at all, its trust policy is *parked* on the owner's
  own account root (`acs:ram::<owner>:root`) because a trust policy must name someone, with
  the portal's Deny on that same root (`cloud.policies.parking_lock_statement`) so that nobody
  can assume it: not the owner's users, not a partner's session chained from another of the
  owner's roles. On roles carrying the marker, the parking principal and its lock are
  therefore managed by the portal: both go again as soon as a partner is wanted.
* Only the needed calls: one UpdateRole carries every changed field; attached policies the
  portal never managed are left alone (except before DeleteRole, which needs them all gone).
* A trust policy has a size limit (`DesiredRole.max_trust_chars`, measured on
  `policies.policy_to_text`, the text that is sent). When every wanted principal does not fit,
  the plan *packs*: wanted principals already in the policy stay first, then the others in
  `principals_in_order` (approval order) while they fit; the rest are left out of the write
  and named in `Plan.waiting`, so one overflow never fails the write for the ones that fit.
  They get in on a later plan, once a removal frees room.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from django.utils.translation import gettext_noop

from cloud import policies
from core.i18n import stored_message, stored_text

__all__ = [
    "ActualRole",
    "AttachPolicy",
    "CreateRole",
    "DeleteRole",
    "DesiredRole",
    "DetachPolicy",
    "Operation",
    "Plan",
    "Refusal",
    "UpdateRole",
    "expected_state_after",
    "pack_principals",
    "plan_role_reconciliation",
    "trust_policy_chars",
]

PolicyKey = tuple[str, str]  # (policy_type, policy_name), e.g. ("System", "AliyunECSFullAccess")


def _policy_keys(values: Iterable[PolicyKey]) -> frozenset[PolicyKey]:
    keys = set()
    for policy_type, policy_name in values:
        keys.add(
            (policies.validate_policy_type(policy_type), policies.validate_policy_name(policy_name))
        )
    return frozenset(keys)


class _CloudRoleLike(Protocol):
    description: str | None
    trust_document: str
    max_session_duration: int


class _AttachedLike(Protocol):
    policy_type: str
    policy_name: str


@dataclass(frozen=True)
class ActualRole:
    """The role as the cloud has it now. A role that does not exist is `None`, not an ActualRole."""

    description: str | None
    trust_document: str | Mapping[str, Any]
    attached_policies: frozenset[PolicyKey] = frozenset()
    max_session_duration: int = 3600

    def __post_init__(self) -> None:
        object.__setattr__(self, "attached_policies", frozenset(self.attached_policies))

    @classmethod
    def from_cloud(cls, role: _CloudRoleLike, attached: Iterable[_AttachedLike]) -> ActualRole:
        """From `CloudClient.get_role(...)` and `CloudClient.list_policies_for_role(...)`."""
        return cls(
            description=role.description,
            trust_document=role.trust_document,
            attached_policies=frozenset((p.policy_type, p.policy_name) for p in attached),
            max_session_duration=role.max_session_duration,
        )

    @property
    def created_by_portal(self) -> bool:
        return policies.has_marker(self.description)


@dataclass(frozen=True)
class DesiredRole:
    """What the portal wants for one role, over all of its delegations on that role.

    `managed_principals_known` is every principal the portal has ever managed on this role
    (active, revoked, expired...): those not wanted are removed. `managed_policies_known` is
    every policy the portal has ever attached to it: those not wanted are detached. Anything
    outside these sets is someone else's and stays.
    """

    role_name: str
    owner_account_uid: str
    managed_principals_wanted: frozenset[str]
    managed_principals_known: frozenset[str] = frozenset()
    policies_wanted: frozenset[PolicyKey] = frozenset()
    managed_policies_known: frozenset[PolicyKey] = frozenset()
    max_session_duration: int = 3600
    description: str = ""
    delete_when_empty: bool = True
    # The order waiting principals get in when not all fit (approval order); wanted principals
    # missing from it go last, sorted. None: no size limit is applied by the planner.
    principals_in_order: tuple[str, ...] = ()
    max_trust_chars: int | None = None
    # A wanted principal → the Condition it must be trusted under (a delegation's ExternalId,
    # `policies.external_id_condition`); the others are trusted unconditionally.
    principal_conditions: Mapping[str, Mapping[str, Any]] = field(default_factory=dict, hash=False)
    # Fail-safe end times: (principal, `policies.trust_end_time`) for principals
    # whose every grant is time-bound; the trust policy admits them only until then.
    principal_end_times: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        policies.validate_role_name(self.role_name)
        policies.validate_account_uid(self.owner_account_uid)
        for name in ("managed_principals_wanted", "managed_principals_known"):
            values = frozenset(getattr(self, name))
            for arn in values:
                if policies.parse_principal(arn).kind == "service":
                    raise policies.PolicyError(f"The portal manages RAM principals, not {arn!r}.")
            object.__setattr__(self, name, values)
        object.__setattr__(self, "policies_wanted", _policy_keys(self.policies_wanted))
        object.__setattr__(
            self, "managed_policies_known", _policy_keys(self.managed_policies_known)
        )
        if not 3600 <= self.max_session_duration <= 43200:
            raise policies.PolicyError("A role's maximum session is 3600 to 43200 seconds.")
        object.__setattr__(self, "principals_in_order", tuple(self.principals_in_order))
        if self.max_trust_chars is not None and self.max_trust_chars < 1:
            raise policies.PolicyError("A trust policy size limit is a positive number.")

    @property
    def parking_principal(self) -> str:
        return policies.account_root_arn(self.owner_account_uid)

    @property
    def marked_description(self) -> str:
        return policies.description_with_marker(self.description)


# --- operations -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateRole:
    role_name: str
    trust_document: str
    description: str
    max_session_duration: int
    action = "CreateRole"


@dataclass(frozen=True)
class UpdateRole:
    """One UpdateRole call; a field left None is not changed."""

    role_name: str
    trust_document: str | None = None
    description: str | None = None
    max_session_duration: int | None = None
    action = "UpdateRole"


@dataclass(frozen=True)
class AttachPolicy:
    role_name: str
    policy_type: str
    policy_name: str
    action = "AttachPolicyToRole"


@dataclass(frozen=True)
class DetachPolicy:
    role_name: str
    policy_type: str
    policy_name: str
    action = "DetachPolicyFromRole"


@dataclass(frozen=True)
class DeleteRole:
    role_name: str
    action = "DeleteRole"


Operation = CreateRole | UpdateRole | AttachPolicy | DetachPolicy | DeleteRole


@dataclass(frozen=True)
class Plan:
    """Operations to run in order. `trust_document` is the canonical trust policy the role has
    once they ran (None when the role will not exist); show it as "what the portal wants"."""

    role_name: str
    operations: tuple[Operation, ...] = ()
    trust_document: str | None = None
    # Wanted principals left out because the trust policy has no room for them (in the order
    # they get in once room frees up).
    waiting: tuple[str, ...] = ()

    @property
    def is_empty(self) -> bool:
        return not self.operations

    @property
    def deletes_role(self) -> bool:
        return any(isinstance(op, DeleteRole) for op in self.operations)


@dataclass(frozen=True)
class Refusal:
    """The portal will not touch this role; `reason` is for the owner, `code` for programs."""

    role_name: str
    code: str
    reason: str
    details: Mapping[str, Any] = field(default_factory=dict)


REFUSAL_NOT_CREATED_BY_PORTAL = "role_not_created_by_portal"
REFUSAL_UNREADABLE_TRUST_POLICY = "unreadable_trust_policy"
# Refusals become the delegation's last error: stored in English, read in the reader's language.
NOT_CREATED_BY_PORTAL_TEXT = stored_message(
    gettext_noop(
        "A role named %(role)s already exists in the account and was not created by the portal "
        "(its description has no portal marker). The portal will not take it over: rename the "
        "catalogue role or remove the existing one."
    )
)
UNREADABLE_TRUST_POLICY_TEXT = stored_message(
    gettext_noop("The role's trust policy cannot be read safely: %(error)s")
)


# --- planning -------------------------------------------------------------------------------------
def _grants_anyone(document: Mapping[str, Any]) -> bool:
    return any(statement["Effect"] == "Allow" for statement in document["Statement"])


def trust_policy_chars(document: str | Mapping[str, Any] | None) -> int:
    """The size of a trust policy as the portal sends it (what the limit is measured on)."""
    if document is None:
        return 0
    return len(policies.policy_to_text(policies.canonical_policy(document, trust=True)))


def _trust(
    current: Mapping[str, Any] | None,
    desired: DesiredRole,
    *,
    wanted: Iterable[str],
    managed: frozenset[str],
    parking: str | None,
) -> dict[str, Any]:
    """`policies.merge_trust_policy` with `desired`'s Conditions, then its fail-safe end times."""
    merged = policies.merge_trust_policy(
        current,
        managed_wanted=wanted,
        managed_all_known=managed,
        parking=parking,
        conditions=desired.principal_conditions,
    )
    # A principal trusted under a Condition (its ExternalId) keeps its own statement: a second,
    # end-time statement would admit it without that Condition.
    end_times = {
        principal: end
        for principal, end in desired.principal_end_times
        if principal not in desired.principal_conditions
    }
    return policies.apply_trust_end_times(merged, end_times=end_times, managed=managed)


def pack_principals(
    current: Mapping[str, Any] | None,
    desired: DesiredRole,
    *,
    managed: frozenset[str],
    parking: str | None,
) -> tuple[frozenset[str], tuple[str, ...]]:
    """(the wanted principals that fit, the ones left waiting in order).

    Wanted principals already trusted by `current` always stay (a full policy never removes
    someone who is in); the others get in in `principals_in_order` order, as many as fit
    within `max_trust_chars`: the longest such prefix (a later one never overtakes an earlier
    one that does not fit)."""
    wanted = desired.managed_principals_wanted
    limit = desired.max_trust_chars
    if limit is None or not wanted:
        return wanted, ()
    present = policies.trust_policy_principals(current).ram if current is not None else set()
    base = frozenset(wanted & present)
    ordered = [p for p in dict.fromkeys(desired.principals_in_order) if p in wanted]
    queue = [p for p in ordered if p not in base]
    queue += sorted(wanted - base - set(queue))

    def size(count: int) -> int:
        merged = _trust(
            current, desired, wanted=base | set(queue[:count]), managed=managed, parking=parking
        )
        return len(policies.policy_to_text(merged))

    if size(len(queue)) <= limit:
        return wanted, ()
    # Sizes grow with every principal added: the longest fitting prefix, by bisection.
    low, high = 0, len(queue)  # size(low) fits or low == 0; size(high) does not fit
    while high - low > 1:
        middle = (low + high) // 2
        if size(middle) <= limit:
            low = middle
        else:
            high = middle
    return base | frozenset(queue[:low]), tuple(queue[low:])


def _create_plan(desired: DesiredRole, managed: frozenset[str]) -> Plan:
    fit, waiting = pack_principals(None, desired, managed=managed, parking=None)
    if not fit:
        return Plan(role_name=desired.role_name, waiting=waiting)
    trust = policies.policy_to_text(
        _trust(None, desired, wanted=fit, managed=managed, parking=None)
    )
    operations: list[Operation] = [
        CreateRole(
            role_name=desired.role_name,
            trust_document=trust,
            description=desired.marked_description,
            max_session_duration=desired.max_session_duration,
        )
    ]
    operations += [
        AttachPolicy(desired.role_name, policy_type, policy_name)
        for policy_type, policy_name in sorted(desired.policies_wanted)
    ]
    return Plan(
        role_name=desired.role_name,
        operations=tuple(operations),
        trust_document=trust,
        waiting=waiting,
    )


def plan_role_reconciliation(*, actual: ActualRole | None, desired: DesiredRole) -> Plan | Refusal:
    """The calls that bring the role from `actual` to `desired`, or why the portal will not."""
    parking = desired.parking_principal
    managed = desired.managed_principals_known | desired.managed_principals_wanted | {parking}
    if actual is None:
        return _create_plan(desired, managed)

    if not actual.created_by_portal:
        return Refusal(
            role_name=desired.role_name,
            code=REFUSAL_NOT_CREATED_BY_PORTAL,
            reason=stored_text(NOT_CREATED_BY_PORTAL_TEXT, role=repr(desired.role_name)),
            details={"description": actual.description or ""},
        )

    try:
        current = policies.canonical_policy(actual.trust_document, trust=True)
        wanted, waiting = pack_principals(current, desired, managed=managed, parking=parking)
        merged = _trust(current, desired, wanted=wanted, managed=managed, parking=parking)
    except policies.PolicyError as error:
        return Refusal(
            role_name=desired.role_name,
            code=REFUSAL_UNREADABLE_TRUST_POLICY,
            reason=stored_text(UNREADABLE_TRUST_POLICY_TEXT, error=error),
        )

    if not wanted and not _grants_anyone(merged):
        # Nobody wanted (or nobody who fits yet: then the role is kept, parked, for them).
        if desired.delete_when_empty and not desired.managed_principals_wanted:
            detaches: list[Operation] = [
                DetachPolicy(desired.role_name, policy_type, policy_name)
                for policy_type, policy_name in sorted(actual.attached_policies)
            ]
            return Plan(
                role_name=desired.role_name,
                operations=(*detaches, DeleteRole(desired.role_name)),
                trust_document=None,
            )
        merged = policies.merge_trust_policy(
            current, managed_wanted={parking}, managed_all_known=managed, parking=parking
        )

    merged_text = policies.policy_to_text(merged)
    changes: dict[str, Any] = {}
    if merged_text != policies.policy_to_text(current):
        changes["trust_document"] = merged_text
    if actual.description != desired.marked_description:
        changes["description"] = desired.marked_description
    if actual.max_session_duration != desired.max_session_duration:
        changes["max_session_duration"] = desired.max_session_duration

    operations: list[Operation] = []
    if changes:
        operations.append(UpdateRole(role_name=desired.role_name, **changes))
    operations += [
        AttachPolicy(desired.role_name, policy_type, policy_name)
        for policy_type, policy_name in sorted(desired.policies_wanted - actual.attached_policies)
    ]
    extra = (actual.attached_policies & desired.managed_policies_known) - desired.policies_wanted
    operations += [
        DetachPolicy(desired.role_name, policy_type, policy_name)
        for policy_type, policy_name in sorted(extra)
    ]
    return Plan(
        role_name=desired.role_name,
        operations=tuple(operations),
        trust_document=merged_text,
        waiting=waiting,
    )


def expected_state_after(actual: ActualRole | None, plan: Plan) -> ActualRole | None:
    """The role as it will be once `plan` ran, computed the way RAM applies each call.

    Raises ValueError for a sequence RAM would refuse (CreateRole on an existing role,
    DeleteRole with policies attached, any call on a missing role).
    """
    state = actual
    for operation in plan.operations:
        if isinstance(operation, CreateRole):
            if state is not None:
                raise ValueError("EntityAlreadyExists.Role")
            state = ActualRole(
                description=operation.description,
                trust_document=operation.trust_document,
                attached_policies=frozenset(),
                max_session_duration=operation.max_session_duration,
            )
            continue
        if state is None:
            raise ValueError("EntityNotExist.Role")
        if isinstance(operation, UpdateRole):
            changed: dict[str, Any] = {}
            if operation.trust_document is not None:
                changed["trust_document"] = operation.trust_document
            if operation.description is not None:
                changed["description"] = operation.description
            if operation.max_session_duration is not None:
                changed["max_session_duration"] = operation.max_session_duration
            state = replace(state, **changed)
        elif isinstance(operation, AttachPolicy):
            key = (operation.policy_type, operation.policy_name)
            state = replace(state, attached_policies=state.attached_policies | {key})
        elif isinstance(operation, DetachPolicy):
            key = (operation.policy_type, operation.policy_name)
            if key not in state.attached_policies:
                raise ValueError("EntityNotExist.Role.Policy")
            state = replace(state, attached_policies=state.attached_policies - {key})
        elif isinstance(operation, DeleteRole):
            if state.attached_policies:
                raise ValueError("DeleteConflict.Role.Policy")
            state = None
    return state
