"""The delegation lifecycle: one function per transition, one audit event per transition.

Every function locks the delegation row, returns it unchanged when the change has already
happened (a double click), refuses moves outside `ALLOWED_TRANSITIONS`, writes its audit
event in the same transaction and, when the cloud must change, bumps the managed role's
desired version and enqueues a reconcile through the outbox. None of them changes the cloud;
the grants (approve, offer, retry towards applying) may read it first, before any lock, to
check the high-privilege opt-in against the role's Custom policies as they are now.

People's actions: `delegation_request`, `delegation_withdraw`, `delegation_offer`,
`delegation_approve`, `delegation_approval_withdraw` (an approver takes back their own
approval; no transition), `delegation_reject`, `delegation_revoke`, `delegation_retry`.
The worker's: `delegation_mark_applying`, `delegation_mark_active`, `delegation_mark_failed`,
`delegation_mark_revoked`. The scheduler's: `delegation_expire`, `delegations_expire_due`,
`delegation_start`, `delegations_start_due` (scheduled access).
"""

import copy
import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NotRequired, TypedDict, Unpack

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import F, Q, prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from accounts import selectors as accounts_selectors
from accounts.actors import ServiceActor, actor_user, require_service_actor_of, service_label
from accounts.models import Organisation, User
from accounts.permissions import is_admin_member, is_member, require_mfa
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record, audit_record_many
from cloud.errors import CloudError
from core.db import conflict_as_validation_error
from delegations.approvals.rules import auto_approves
from delegations.approvals.selectors import approver_ids, rules_in_force
from delegations.approvals.services import (
    approval_record,
    approval_refusal,
    approval_summary,
    approval_withdraw,
    approved_end,
    approved_trust_scope,
)
from delegations.catalog.partner_links import partner_link_use
from delegations.catalog.selectors import catalog_role_accounts
from delegations.catalog.services import catalog_role_high_privilege_now, catalog_role_lock
from delegations.delegation_audit import delegation_label
from delegations.models import (
    ALLOWED_TRANSITIONS,
    DESIRED_PRESENT_STATUSES,
    EXPIRABLE_STATUSES,
    FINAL_STATUSES,
    CatalogRole,
    CloudAccount,
    Delegation,
    FleetGrant,
    ManagedRole,
    OutboxMessage,
    PartnerAllowance,
    PartnerLink,
    TrustScope,
)
from delegations.notices import (
    PreparedNotices,
    delegation_announce,
    delegations_announce_many,
    delegations_announce_prepare,
    fleet_digest,
    fleet_expired_announce,
)
from delegations.outbox import outbox_enqueue, outbox_enqueue_reconcile
from delegations.partner_access import (
    partner_access_delegation_changed,
    partner_access_delegations_changed,
)
from delegations.role_state import partner_alias, partner_role_name
from delegations.versioned import version_bump

Status = Delegation.Status

REASON_MAX_LENGTH = 2000
# How far ahead an end date may lie; beyond that an open-ended delegation says it honestly.
MAX_DURATION = dt.timedelta(days=5 * 366)
# An end date must leave the worker time to apply the access before it ends.
MIN_DURATION = dt.timedelta(minutes=5)
# Scheduled access: a start may lie at most this far ahead, and the scheduler
# applies it this long before its start so that it works at the minute.
MAX_START_AHEAD = dt.timedelta(days=90)
START_LEAD = dt.timedelta(minutes=5)


class DelegationConflict(Exception):
    """The delegation is no longer in the state the caller acted on (another admin decided,
    the worker moved it on, or the page was stale). The message says what happened."""


class IllegalTransition(DelegationConflict):
    """The lifecycle does not allow this move from the current status."""


# --- helpers ---------------------------------------------------------------------------------


def _require_admin(*, user: User | ServiceActor, organisation: Organisation, doing: str) -> None:
    """An admin of `organisation`, or (for the few actions open to automation) one of its own
    service accounts; the API has already checked the service account's token scope."""
    if isinstance(user, ServiceActor):
        require_service_actor_of(actor=user, organisation=organisation)
        return
    if not is_admin_member(user, organisation):
        raise PermissionDenied(
            gettext("Only an admin of %(organisation)s can %(doing)s.")
            % {"organisation": organisation, "doing": doing}
        )


def _clean_reason(reason: str, *, field: str, required: bool = True) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise ValidationError({field: gettext("Please give a reason.")})
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationError(
            {field: gettext("Keep it under %(limit)s characters.") % {"limit": REASON_MAX_LENGTH}}
        )
    return text


def _validate_ends_at(ends_at: dt.datetime | None, *, now: dt.datetime) -> None:
    if ends_at is None:
        return
    if timezone.is_naive(ends_at):
        raise ValidationError({"ends_at": gettext("The end date needs a time zone.")})
    if ends_at <= now:
        raise ValidationError({"ends_at": gettext("The end date is in the past.")})
    if ends_at < now + MIN_DURATION:
        raise ValidationError(
            {"ends_at": gettext("The end date must be at least 5 minutes from now.")}
        )
    if ends_at > now + MAX_DURATION:
        raise ValidationError(
            {
                "ends_at": gettext(
                    "The end date is more than 5 years away; choose open-ended instead."
                )
            }
        )


def _validated_start(
    starts_at: dt.datetime | None, *, ends_at: dt.datetime | None, now: dt.datetime
) -> dt.datetime:
    """When access should start: now (None), or a time up to 90 days ahead that leaves the
    end date at least `MIN_DURATION` after it."""
    if starts_at is None or starts_at <= now + START_LEAD:
        if starts_at is not None and starts_at < now - START_LEAD:
            raise ValidationError({"starts_at": gettext("The start is in the past.")})
        return now
    if timezone.is_naive(starts_at):
        raise ValidationError({"starts_at": gettext("The start needs a time zone.")})
    if starts_at > now + MAX_START_AHEAD:
        raise ValidationError({"starts_at": gettext("The start is more than 90 days away.")})
    if ends_at is not None:
        _validate_end_after_start(ends_at, starts_at=starts_at)
    return starts_at


def _validate_end_after_start(ends_at: dt.datetime, *, starts_at: dt.datetime) -> None:
    """The worker needs a few minutes of access to apply it before it ends."""
    if ends_at < starts_at + MIN_DURATION:
        raise ValidationError(
            {"ends_at": gettext("The end must be at least 5 minutes after the start.")}
        )


def _validate_grantable(
    *,
    owner: Organisation,
    partner: Organisation,
    catalog_role: CatalogRole,
    cloud_account: CloudAccount | None = None,
) -> None:
    """The rules every new or approved delegation must meet, whoever starts it.
    `cloud_account`: the owner account the access is in (default: the role's home)."""
    if not owner.is_owner:
        raise ValidationError(gettext("%(owner)s is not a resource owner.") % {"owner": owner})
    if not partner.is_partner:
        raise ValidationError(
            {
                "partner": gettext("%(partner)s is not a partner organisation.")
                % {"partner": partner}
            }
        )
    if catalog_role.organisation_id != owner.pk or not catalog_role.is_active:
        raise ValidationError(
            {"catalog_role": gettext("This role is not in the owner's catalogue.")}
        )
    if cloud_account is None or cloud_account.pk == catalog_role.cloud_account_id:
        cloud_account = catalog_role.cloud_account
    elif cloud_account.pk not in {a.pk for a in catalog_role_accounts(catalog_role=catalog_role)}:
        raise ValidationError(
            {
                "cloud_account": gettext("%(role)s is not offered in the account %(account_uid)s.")
                % {"role": catalog_role.role_name, "account_uid": cloud_account.account_uid}
            }
        )
    if not cloud_account.is_active or cloud_account.organisation_id != owner.pk:
        raise ValidationError(
            {"catalog_role": gettext("This role's cloud account is no longer connected.")}
        )
    if partner.account_uid in (owner.account_uid, cloud_account.account_uid):
        raise ValidationError(
            {"partner": gettext("A partner account cannot be the owner's own account.")}
        )
    if not PartnerAllowance.objects.filter(
        organisation=owner, partner_account_uid=partner.account_uid
    ).exists():
        raise ValidationError(
            {
                "partner": gettext(
                    "The partner account %(account_uid)s is not on %(owner)s's allow-list of "
                    "partner accounts."
                )
                % {"account_uid": partner.account_uid, "owner": owner}
            }
        )


def _validate_no_open_duplicate(
    *, partner: Organisation, catalog_role: CatalogRole, cloud_account: CloudAccount | None = None
) -> None:
    """One open delegation per partner, catalogue role and owner account."""
    account = cloud_account or catalog_role.cloud_account
    open_one = (
        Delegation.objects.filter(
            partner=partner, catalog_role=catalog_role, managed_role__cloud_account=account
        )
        .exclude(status__in=FINAL_STATUSES)
        .first()
    )
    if open_one is not None:
        names = {
            "partner": partner,
            "status": open_one.get_status_display().lower(),
            "role": catalog_role.role_name,
            "account_uid": account.account_uid,
        }
        raise ValidationError(
            {
                "catalog_role": (
                    gettext(
                        "%(partner)s already has a %(status)s delegation of %(role)s in the "
                        "account %(account_uid)s."
                    )
                    if account.pk != catalog_role.cloud_account_id
                    else gettext("%(partner)s already has a %(status)s delegation of %(role)s.")
                )
                % names
            }
        )


def unconfirmed_partner_problem(*, partner: Organisation) -> str | None:
    """Why an owner may not name `partner` yet: nobody there has confirmed their sign-up. It
    may be a typo or someone squatting the account, and lapses if nobody confirms it
    (`accounts.services.organisation_signups_expire`); nothing of the owner's may hang off it."""
    if accounts_selectors.organisation_is_confirmed(organisation=partner):
        return None
    return gettext(
        "%(partner)s's sign-up is not confirmed yet: nobody there has confirmed their email "
        "address. Access can be offered once someone has."
    ) % {"partner": partner}


def _privilege_problem(*, catalog_role: CatalogRole) -> str | None:
    """Why granting `catalog_role` now is refused: it holds policies granting RAM
    administration or full access (judged now, see `catalog_role_high_privilege_now`) and the
    owner has not opted in to that for this role. The cloud is read here, so callers run
    this before they take any row lock."""
    try:
        flagged = catalog_role_high_privilege_now(catalog_role=catalog_role)
    except CloudError as error:
        raise ValidationError(
            gettext(
                "Alibaba Cloud could not be asked whether %(role)s's policies grant RAM "
                "administration (%(message)s). Nothing was granted; try again in a "
                "moment."
            )
            % {"role": catalog_role.role_name, "message": error.message}
        ) from None
    if not flagged or catalog_role.allows_high_privilege:
        return None
    return ngettext(
        "%(role)s now includes %(policies)s, which grants RAM administration or full access "
        "to the account, and this role has no opt-in for high privilege. Nothing was granted. "
        "Edit the role in the catalogue (confirm high privilege, or remove those policies), "
        "then decide again.",
        "%(role)s now includes %(policies)s, which grant RAM administration or full access "
        "to the account, and this role has no opt-in for high privilege. Nothing was granted. "
        "Edit the role in the catalogue (confirm high privilege, or remove those policies), "
        "then decide again.",
        len(flagged),
    ) % {"role": catalog_role.role_name, "policies": ", ".join(flagged)}


def _privilege_snapshot(catalog_role: CatalogRole) -> tuple[Any, bool]:
    return (catalog_role.policies, catalog_role.allows_high_privilege)


def _check_privilege_unchanged(catalog_role: CatalogRole, checked: tuple[Any, bool]) -> None:
    """Under the lock: the role's policies and opt-in are still those judged before it."""
    if _privilege_snapshot(catalog_role) != checked:
        raise DelegationConflict(
            gettext(
                "The catalogue role %(role)s was edited while you were deciding. Reload "
                "the page and decide again."
            )
            % {"role": catalog_role.role_name}
        )


def grant_precheck(
    *, delegation: Delegation, audit_refusal: Callable[[str], None]
) -> tuple[Any, bool]:
    """The checks a decision that grants or prolongs `delegation`'s access makes before any
    lock: the partner is on the allow-list, the catalogue role is active in a connected
    account, and the role's high-privilege opt-in covers its policies as they are now (a
    Custom policy may have gained RAM rights since the role was created; this reads the
    cloud). `audit_refusal` records a privilege refusal before it is raised; pass the result
    to `grant_recheck` under the delegation's row lock."""
    _validate_grantable(
        owner=delegation.owner,
        partner=delegation.partner,
        catalog_role=delegation.catalog_role,
        cloud_account=delegation.managed_role.cloud_account,
    )
    problem = _privilege_problem(catalog_role=delegation.catalog_role)
    if problem is not None:
        audit_refusal(problem)
        raise ValidationError(problem)
    return _privilege_snapshot(delegation.catalog_role)


def grant_recheck(*, locked: Delegation, checked: tuple[Any, bool]) -> None:
    """Under `locked`'s row lock: lock its catalogue role, whose policies and opt-in must be
    those `grant_precheck` judged, and check the grant rules again on the fresh rows."""
    _check_privilege_unchanged(_lock_catalog_role(locked), checked)
    _validate_grantable(
        owner=locked.owner,
        partner=locked.partner,
        catalog_role=locked.catalog_role,
        cloud_account=locked.managed_role.cloud_account,
    )


def managed_role_for_catalog_role(
    *,
    catalog_role: CatalogRole,
    partner: Organisation | None = None,
    cloud_account: CloudAccount | None = None,
) -> ManagedRole:
    """The lock/state row of the cloud role a catalogue entry names in `cloud_account` (default:
    the role's home account), created on first use; for a catalogue role marked one role per
    partner, `partner`'s own role there."""
    account = cloud_account or catalog_role.cloud_account
    if catalog_role.one_role_per_partner:
        if partner is None:
            raise ValueError(
                f"{catalog_role.role_name} has one role per partner: name the partner."
            )
        return _partner_managed_role(catalog_role=catalog_role, partner=partner, account=account)
    # get_or_create inserts in a savepoint and reads again when another request inserted the
    # row between its read and its insert; the name matches without regard to case, as RAM does.
    managed_role, _created = ManagedRole.objects.get_or_create(
        cloud_account=account,
        role_name__iexact=catalog_role.role_name,
        defaults={"role_name": catalog_role.role_name},
    )
    return managed_role


def _partner_managed_role(
    *, catalog_role: CatalogRole, partner: Organisation, account: CloudAccount
) -> ManagedRole:
    """`partner`'s own role for `catalog_role`, named `<role>-<partner alias>` when it is made.

    Found by (catalogue role, partner), never by name, so a later change of the partner's
    alias does not move it. When that name is already another role's in the account (a
    catalogue role or another managed role), the partner's account UID stands in for the
    alias; when that is taken too, the grant is refused with the reason."""
    found = ManagedRole.objects.filter(
        catalog_role=catalog_role, partner=partner, cloud_account=account
    ).first()
    if found is not None:
        return found
    for alias in dict.fromkeys([partner_alias(partner), partner.account_uid]):
        name = partner_role_name(catalog_role.role_name, alias)
        taken = (
            ManagedRole.objects.filter(cloud_account=account, role_name__iexact=name).exists()
            or CatalogRole.objects.filter(cloud_account=account, role_name__iexact=name).exists()
        )
        if not taken:
            break
    else:
        raise ValidationError(
            {
                "catalog_role": gettext(
                    "%(role)s gives each partner its own role, and the names for "
                    "%(partner)s's (%(name)s) are taken by other roles in the account. "
                    "Rename or retire those roles first."
                )
                % {"role": catalog_role.role_name, "partner": partner, "name": name}
            }
        )
    # Another partner's grant taking the same name at the same moment: try again.
    busy = {
        "catalog_role": gettext("%(name)s was just taken by another grant; please try again.")
        % {"name": name}
    }
    with conflict_as_validation_error(busy):
        managed_role, _created = ManagedRole.objects.get_or_create(
            catalog_role=catalog_role,
            partner=partner,
            cloud_account=account,
            defaults={"role_name": name},
        )
    return managed_role


def _lock(delegation: Delegation) -> Delegation:
    return (
        Delegation.objects.select_for_update(of=("self",))
        .select_related("owner", "partner", "catalog_role", "managed_role__cloud_account")
        .get(pk=delegation.pk)
    )


def _lock_unless(delegation: Delegation, *, already_locked: bool) -> Delegation:
    """The delegation's row locked: `delegation` itself when the caller already locked and
    loaded it in this transaction (`delegations_lock_for_worker`), else locked now."""
    return delegation if already_locked else _lock(delegation)


def delegations_lock_for_worker(*, delegation_ids: Iterable[Any]) -> dict[Any, Delegation]:
    """Lock many delegation rows in one statement (in primary-key order, as every writer
    does) and load them as the worker's transitions read them; pass each to a `mark`
    service with `already_locked=True` inside the same transaction.

    The owner, catalogue role and managed role are one row each for a whole role's partners:
    they are read once and shared by the rows (`prefetch_related_objects`), not joined into
    every row and built again for each (a role's hundred partners, twice per round)."""
    rows = list(
        Delegation.objects.select_for_update(of=("self",))
        .select_related("partner")
        .filter(pk__in=list(delegation_ids))
        .order_by("pk")
    )
    prefetch_related_objects(rows, "owner", "catalog_role", "managed_role")
    return {row.pk: row for row in rows}


def _lock_catalog_role(locked: Delegation) -> CatalogRole:
    """Lock the delegation's catalogue role row (after the delegation's, always in this
    order) so an edit of the role cannot commit between a privilege check and the grant."""
    role = catalog_role_lock(catalog_role_id=locked.catalog_role_id)
    locked.catalog_role = role
    return role


def _unchanged(locked: Delegation) -> Delegation:
    locked.changed = False
    return locked


def _check_version(locked: Delegation, expected_version: int | None) -> None:
    if expected_version is not None and locked.version != expected_version:
        raise DelegationConflict(
            gettext(
                "This delegation changed while you were looking at it: it is now "
                "%(status)s. Reload the page and decide again."
            )
            % {"status": locked.get_status_display().lower()}
        )


def _snapshot(delegation: Delegation) -> dict[str, Any]:
    return {
        "status": delegation.status,
        "failed_phase": delegation.failed_phase,
        "end_cause": delegation.end_cause,
        "version": delegation.version,
    }


def _trust_scope_fields(trust_scope: str | None) -> dict[str, str]:
    """`{"trust_scope": …}` when the owner chose one at approve or offer time, else nothing."""
    if not trust_scope:
        return {}
    if trust_scope not in TrustScope.values:
        raise ValidationError({"trust_scope": gettext("Choose one of the trust scopes.")})
    return {"trust_scope": trust_scope}


class _DelegationEvent(TypedDict):
    """One transition's event, as `_audit` and `_audit_arguments` take it."""

    delegation: Delegation
    action: AuditAction
    actor: User | ServiceActor | None
    actor_organisation: Organisation | None
    before: dict[str, Any] | None
    metadata: NotRequired[dict[str, Any] | None]
    outcome: NotRequired[str]


def _audit(**event: Unpack[_DelegationEvent]) -> None:
    audit_record(**_audit_arguments(**event))
    if event.get("outcome", AuditEvent.Outcome.SUCCESS) == AuditEvent.Outcome.SUCCESS:
        delegation_announce(
            delegation=event["delegation"], action=event["action"], actor=actor_user(event["actor"])
        )


def _audit_arguments(
    *,
    delegation: Delegation,
    action: AuditAction,
    actor: User | ServiceActor | None,
    actor_organisation: Organisation | None,
    before: dict[str, Any] | None,
    metadata: dict[str, Any] | None = None,
    outcome: str = AuditEvent.Outcome.SUCCESS,
) -> dict[str, Any]:
    """A delegation's event as `audit_record` takes it: one shape for every transition. A
    service account has no person row: the event names it by label and keeps its id."""
    service = actor if isinstance(actor, ServiceActor) else None
    if service is not None:
        metadata = {**(metadata or {}), "service_account": str(service.account_id)}
    return {
        "action": action,
        "actor": actor_user(actor),
        **({"actor_label": service.label} if service is not None else {}),
        "organisation": delegation.owner,
        "related_organisations": [delegation.partner],
        "actor_organisation": actor_organisation if actor is not None else None,
        "target": delegation,
        "target_label": delegation_label(delegation),
        "before": before,
        "after": _snapshot(delegation),
        "metadata": {
            "role_name": delegation.catalog_role.role_name,
            "partner_account_uid": delegation.partner_account_uid,
            # Which owner account, when it is not the role's home (a fleet grant's accounts).
            **_account_metadata(delegation),
            **(metadata or {}),
        },
        "outcome": outcome,
    }


def _account_metadata(delegation: Delegation) -> dict[str, Any]:
    if delegation.fleet_id is None and (
        delegation.managed_role_id is None
        or delegation.catalog_role.cloud_account_id == delegation.managed_role.cloud_account_id
    ):
        return {}
    extra: dict[str, Any] = {"account_uid": delegation.managed_role.cloud_account.account_uid}
    if delegation.fleet_id is not None:
        extra["fleet"] = str(delegation.fleet_id)
    return extra


_APPLYING_NOW = (Status.APPROVED, Status.APPLYING)


def _fleet_follow_up(delegation: Delegation, *, before: str, to: str) -> None:
    """A fleet's account stopped being applied (active, failed, or revoked on the way): its
    slot in the fleet's rate control is free; or it ended while waiting for its turn (expired,
    revoked): the fleet's run may have nothing left to start. Either way let the fleet advance
    (`delegations.fleet`: its next accounts, or the end of its run), through the outbox, in
    this transaction."""
    if delegation.fleet_id is None:
        return
    left_the_worker = before in _APPLYING_NOW and to not in _APPLYING_NOW
    ended_waiting = before == Status.SCHEDULED and to in FINAL_STATUSES
    if left_the_worker or ended_waiting:
        outbox_enqueue(kind=OutboxMessage.Kind.ADVANCE_FLEET, object_id=delegation.fleet_id)


def _check_allowed(delegation: Delegation, *, to: str) -> None:
    if to not in ALLOWED_TRANSITIONS[delegation.status]:
        raise IllegalTransition(
            f"A {delegation.get_status_display().lower()} delegation cannot become "
            f"{Status(to).label.lower()}."
        )


def _transition(
    delegation: Delegation,
    *,
    to: str,
    action: AuditAction,
    actor: User | ServiceActor | None,
    actor_organisation: Organisation | None,
    changes: dict[str, Any] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Delegation:
    """Move a locked delegation to `to`, save exactly what changed and audit it."""
    _check_allowed(delegation, to=to)
    before = _snapshot(delegation)
    changes = dict(changes or {})
    changes["status"] = to
    if to != Status.FAILED:
        changes.setdefault("failed_phase", Delegation.Phase.NONE)
    version_bump(delegation, changes)
    delegation.changed = True
    _audit(
        delegation=delegation,
        action=action,
        actor=actor,
        actor_organisation=actor_organisation,
        before=before,
        metadata=metadata,
    )
    if Status.ACTIVE in (before["status"], to):
        # Becoming active grants the partner's people `sts:AssumeRole` on the role in the
        # partner's account; leaving active (revoke, expiry) takes it away. Through the outbox,
        # in this transaction.
        partner_access_delegation_changed(delegation=delegation)
    _fleet_follow_up(delegation, before=before["status"], to=to)
    return delegation


def _audit_denied(*, delegation: Delegation, action: AuditAction, actor: User, reason: str) -> None:
    """Record a refused attempt in its own transaction, so it survives the refusal."""
    with transaction.atomic():
        _audit(
            delegation=delegation,
            action=action,
            actor=actor,
            actor_organisation=delegation.owner,
            before=None,
            metadata={"denied_because": reason},
            outcome=AuditEvent.Outcome.DENIED,
        )


# For the lifecycle's other modules (extensions, break-glass): the same row lock, reason
# rules, grant checks and creation.
lock_delegation = _lock
clean_reason = _clean_reason
validate_grantable = _validate_grantable
privilege_problem = _privilege_problem
transition = _transition
audit_delegation = _audit
validate_ends_at = _validate_ends_at
# For the fleet grants (`delegations.fleet`), which decide through these services.
require_admin = _require_admin


# --- people's actions ------------------------------------------------------------------------


@transaction.atomic
def delegation_request(
    *,
    partner: Organisation,
    requested_by: User | ServiceActor,
    partner_link: PartnerLink,
    catalog_role: CatalogRole,
    reason: str,
    ends_at: dt.datetime | None,
    starts_at: dt.datetime | None = None,
    cloud_account: CloudAccount | None = None,
    fleet: FleetGrant | None = None,
) -> Delegation:
    """A partner admin, or one of the partner's service accounts, asks an owner (found through
    `partner_link`) for a catalogue role, from now or from `starts_at` (scheduled access), in
    one of the owner's accounts (`cloud_account`, default the role's home account).

    `fleet`: the fleet grant this request is one account of; the fleet's request used the
    partner link once for all its accounts, so it is not used again here."""
    _require_admin(user=requested_by, organisation=partner, doing="request access")
    if fleet is None:
        link = partner_link_use(link=partner_link, partner=partner, used_by=requested_by)
    elif fleet.partner_link_id != partner_link.pk or fleet.partner_id != partner.pk:
        raise ValueError("A fleet's account is requested through the fleet's own partner link.")
    else:
        link = partner_link
    owner = link.organisation
    if catalog_role.organisation_id != owner.pk:
        raise ValidationError(
            {"catalog_role": gettext("This role is not in the owner's catalogue.")}
        )
    now = timezone.now()
    reason = _clean_reason(reason, field="reason")
    _validate_ends_at(ends_at, now=now)
    starts_at = _validated_start(starts_at, ends_at=ends_at, now=now)
    _validate_grantable(
        owner=owner, partner=partner, catalog_role=catalog_role, cloud_account=cloud_account
    )
    _validate_no_open_duplicate(
        partner=partner, catalog_role=catalog_role, cloud_account=cloud_account
    )
    return _create(
        owner=owner,
        partner=partner,
        catalog_role=catalog_role,
        cloud_account=cloud_account,
        fleet=fleet,
        created_by=requested_by,
        actor_organisation=partner,
        action=AuditAction.DELEGATION_REQUESTED,
        reason=reason,
        ends_at=ends_at,
        fields={
            "status": Status.REQUESTED,
            "origin": Delegation.Origin.REQUEST,
            "partner_link": link,
            "starts_at": starts_at,
        },
        metadata={"partner_link": str(link.pk), "starts_at": starts_at},
    )


def _create(
    *,
    owner: Organisation,
    partner: Organisation,
    catalog_role: CatalogRole,
    cloud_account: CloudAccount | None,
    fleet: FleetGrant | None,
    created_by: User | ServiceActor,
    actor_organisation: Organisation,
    action: AuditAction,
    reason: str,
    ends_at: dt.datetime | None,
    fields: dict[str, Any],
    metadata: dict[str, Any],
) -> Delegation:
    """Create a delegation and audit it; `fields` are what its origin sets beyond the rest."""
    delegation = Delegation.objects.create(
        owner=owner,
        partner=partner,
        catalog_role=catalog_role,
        managed_role=managed_role_for_catalog_role(
            catalog_role=catalog_role, partner=partner, cloud_account=cloud_account
        ),
        fleet=fleet,
        partner_account_uid=partner.account_uid,
        requested_by=actor_user(created_by),
        requested_by_label=service_label(created_by) or "",
        reason=reason,
        ends_at=ends_at,
        **{"trust_scope": catalog_role.default_trust_scope, **fields},
    )
    _audit(
        delegation=delegation,
        action=action,
        actor=created_by,
        actor_organisation=actor_organisation,
        before=None,
        metadata={"ends_at": ends_at, "reason": reason, **metadata},
    )
    return delegation


# For break-glass grants (`lifecycle.oversight`): the one way a delegation is created.
create_delegation = _create


@transaction.atomic
def delegation_withdraw(
    *,
    delegation: Delegation,
    withdrawn_by: User | ServiceActor,
    expected_version: int | None = None,
) -> Delegation:
    """A partner admin (or a service account of the partner) takes back their organisation's
    request before the owner decides it.

    Under the row lock, so a withdrawal racing an approval or a rejection ends with exactly
    one of them: whoever locks second finds the request no longer pending and is told."""
    locked = _lock(delegation)
    _require_admin(
        user=withdrawn_by, organisation=locked.partner, doing=gettext("withdraw this request")
    )
    if locked.status == Status.WITHDRAWN:
        return _unchanged(locked)  # a double click, or another admin of the partner was first
    if locked.status != Status.REQUESTED:
        raise IllegalTransition(
            gettext(
                "Only a request still waiting for the owner's decision can be withdrawn; "
                "this one is %(status)s."
            )
            % {"status": locked.get_status_display().lower()}
        )
    _check_version(locked, expected_version)
    return _transition(
        locked,
        to=Status.WITHDRAWN,
        action=AuditAction.DELEGATION_WITHDRAWN,
        actor=withdrawn_by,
        actor_organisation=locked.partner,
        changes={
            "withdrawn_by": actor_user(withdrawn_by),
            "withdrawn_by_label": service_label(withdrawn_by) or "",
            "ended_at": timezone.now(),
        },
    )


def delegation_offer(
    *,
    owner: Organisation,
    offered_by: User,
    partner: Organisation,
    catalog_role: CatalogRole,
    reason: str,
    ends_at: dt.datetime | None,
    with_mfa: bool,
    trust_scope: str | None = None,
    cloud_account: CloudAccount | None = None,
    fleet: FleetGrant | None = None,
) -> Delegation:
    """An owner admin grants a catalogue role to a partner directly: the offer is the owner's
    decision, so it starts approved and the worker applies it. `trust_scope` overrides the
    role's default (whom the trust policy names); `cloud_account` is the owner account
    (default: the role's home).

    `fleet`: the fleet grant this offer is one account of. Such an account starts scheduled
    (approved, nothing in the cloud yet) and the fleet starts it in its turn."""
    trust_fields = _trust_scope_fields(trust_scope)
    _require_admin(user=offered_by, organisation=owner, doing="offer access")
    require_mfa(with_mfa=with_mfa)
    role = CatalogRole.objects.select_related("cloud_account").get(pk=catalog_role.pk)
    # Tenancy and catalogue rules first: the cloud read below uses the role's own account.
    _validate_grantable(
        owner=owner, partner=partner, catalog_role=role, cloud_account=cloud_account
    )
    _check_offer_rules(owner=owner, partner=partner, catalog_role=role, offered_by=offered_by)
    unconfirmed = unconfirmed_partner_problem(partner=partner)
    if unconfirmed is not None:
        raise ValidationError({"partner": unconfirmed})
    problem = _privilege_problem(catalog_role=role)
    if problem is not None:
        raise ValidationError({"catalog_role": problem})
    with transaction.atomic():
        # The role row is locked so that an edit cannot slip in between the check above
        # and the offer.
        locked_role = catalog_role_lock(catalog_role_id=catalog_role.pk)
        _check_privilege_unchanged(locked_role, _privilege_snapshot(role))
        now = timezone.now()
        reason = _clean_reason(reason, field="reason")
        _validate_ends_at(ends_at, now=now)
        _validate_grantable(
            owner=owner, partner=partner, catalog_role=locked_role, cloud_account=cloud_account
        )
        if is_member(offered_by, partner):
            raise PermissionDenied(
                gettext("You are also a member of this partner; another owner admin must offer it.")
            )
        _validate_no_open_duplicate(
            partner=partner, catalog_role=locked_role, cloud_account=cloud_account
        )
        delegation = _create(
            owner=owner,
            partner=partner,
            catalog_role=locked_role,
            cloud_account=cloud_account,
            fleet=fleet,
            created_by=offered_by,
            actor_organisation=owner,
            action=AuditAction.DELEGATION_OFFERED,
            reason=reason,
            ends_at=ends_at,
            fields={
                "status": Status.APPROVED if fleet is None else Status.SCHEDULED,
                "origin": Delegation.Origin.OFFER,
                "starts_at": now,
                "decided_by": offered_by,
                "decided_at": now,
                "approved_with_mfa": with_mfa,
                **trust_fields,
            },
            metadata={"with_mfa": with_mfa, **trust_fields},
        )
        if fleet is None:
            outbox_enqueue_reconcile(managed_role=delegation.managed_role)
        return delegation


def _validate_shorter_end(
    locked: Delegation, ends_at: dt.datetime | None, *, now: dt.datetime
) -> None:
    """An approver may end the access earlier than asked (or give an open-ended request an
    end), never later, and never before its start."""
    if ends_at is None:
        return
    _validate_ends_at(ends_at, now=now)
    _validate_end_after_start(ends_at, starts_at=locked.starts_at)
    if locked.ends_at is not None and ends_at > locked.ends_at:
        raise ValidationError(
            {
                "ends_at": gettext(
                    "An approver may shorten the access, not lengthen it; leave it empty."
                )
            }
        )


def _check_offer_rules(
    *, owner: Organisation, partner: Organisation, catalog_role: CatalogRole, offered_by: User
) -> None:
    """An offer is one admin's decision: the approval rules must allow that (a member of the
    groups attached to the role or partner, and a role that needs one approval only)."""
    rules = rules_in_force(
        delegation=Delegation(
            owner=owner, catalog_role=catalog_role, partner_account_uid=partner.account_uid
        )
    )
    if rules.approver_ids is not None and offered_by.pk not in rules.approver_ids:
        raise PermissionDenied(
            gettext("Only members of %(group_names)s may grant %(role)s.")
            % {"group_names": ", ".join(rules.group_names), "role": catalog_role.role_name}
        )
    if rules.approvals_required > 1:
        raise ValidationError(
            {
                "catalog_role": gettext(
                    "%(role)s needs %(approvals_required)s approvals, so one admin cannot "
                    "offer it; ask the partner to request it."
                )
                % {"role": catalog_role.role_name, "approvals_required": rules.approvals_required}
            }
        )


def delegation_approve(
    *,
    delegation: Delegation,
    approved_by: User,
    with_mfa: bool,
    note: str = "",
    expected_version: int | None = None,
    trust_scope: str | None = None,
    ends_at: dt.datetime | None = None,
    as_fleet_account: bool = False,
) -> Delegation:
    """An owner admin approves a request. The worker applies it after the commit.
    `trust_scope` overrides the role's default (whom the trust policy names). A fleet's
    account (`Delegation.fleet`) becomes scheduled instead: the fleet starts it in its turn.

    A second click by the same admin changes nothing; any other admin who decides after the
    first decision gets a DelegationConflict naming it. Nobody approves their own request,
    nor a request of an organisation they belong to; such attempts are refused and audited."""
    current = Delegation.objects.select_related(
        "owner", "partner", "catalog_role", "managed_role__cloud_account"
    ).get(pk=delegation.pk)
    _require_admin(user=approved_by, organisation=current.owner, doing="approve access")
    _refuse_fleet_account_alone(current, as_fleet_account=as_fleet_account)
    # The requester and memberships do not change with the status, so this check needs no
    # lock; the refusal is recorded in its own transaction so that it survives.
    denial = _segregation_problem(delegation=current, user=approved_by)
    if denial is None and current.status == Status.REQUESTED:
        # Approver groups and "nobody twice" (delegations.approvals); checked again under
        # the lock when the approval is recorded.
        denial = approval_refusal(delegation=current, user=approved_by, approving=True)
        if (
            denial is not None
            and not Delegation.objects.filter(pk=current.pk, status=Status.REQUESTED).exists()
        ):
            # Decided since it was read (maybe by this person's own first click, whose
            # approval was just seen): the locked path below says what happened.
            denial = None
    if denial is not None:
        _audit_denied(
            delegation=current,
            action=AuditAction.DELEGATION_APPROVE_DENIED,
            actor=approved_by,
            reason=denial,
        )
        raise PermissionDenied(denial)
    # Only a pending request needs the grant checks (a double click or a late second admin
    # is answered below without granting anything).
    checked = None
    if current.status == Status.REQUESTED:
        checked = grant_precheck(
            delegation=current,
            audit_refusal=lambda problem: _audit_denied(
                delegation=current,
                action=AuditAction.DELEGATION_APPROVE_DENIED,
                actor=approved_by,
                reason=problem,
            ),
        )

    with transaction.atomic():
        locked = _lock(delegation)
        if locked.status != Status.REQUESTED:
            if locked.status in DESIRED_PRESENT_STATUSES | {Status.SCHEDULED} and (
                locked.decided_by_id == approved_by.pk
                or approved_by.pk in approver_ids(delegation=locked)
            ):
                return _unchanged(locked)  # a double click: the first one already approved it
            raise _decided_conflict(locked)
        _check_version(locked, expected_version)
        if checked is None:
            raise DelegationConflict(
                gettext("This request changed; reload the page and decide again.")
            )
        grant_recheck(locked=locked, checked=checked)
        require_mfa(with_mfa=with_mfa)
        now = timezone.now()
        if locked.ends_at is not None and locked.ends_at <= now + MIN_DURATION:
            raise ValidationError(
                gettext(
                    "This request's end date has passed (or is minutes away); reject it and "
                    "ask the partner for new dates."
                )
            )
        note = _clean_reason(note, field="note", required=False)
        _validate_shorter_end(locked, ends_at, now=now)
        # The earliest end an approver set applies, so once an earlier approver's end is
        # (nearly) past, no further approval can grant anything but access already over.
        earlier_end = approved_end(delegation=locked)
        if earlier_end is not None and earlier_end <= now + MIN_DURATION:
            raise ValidationError(
                gettext(
                    "The end an earlier approver set has passed (or is minutes away), so access "
                    "approved now would already be over. That approver can withdraw their "
                    "approval so the request is approved afresh; or reject it, and the partner "
                    "can ask again."
                )
            )
        # A quorum rule may need more approvers: this one is recorded, and the request
        # waits (still requested, same version) for the next. Each approver agrees to a trust
        # scope (the one they chose, else the one requested); the narrowest of them applies.
        if not approval_record(
            delegation=locked,
            approver=approved_by,
            with_mfa=with_mfa,
            note=note,
            trust_scope=_trust_scope_fields(trust_scope).get("trust_scope", locked.trust_scope),
            ends_at=ends_at,
        ).reached:
            locked.changed = True
            return locked
        shortened = approved_end(delegation=locked)
        scope = approved_trust_scope(delegation=locked) or locked.trust_scope
        # A start that lies ahead makes it scheduled: nothing reaches the cloud before it. A
        # fleet's account waits the same way for its turn in the fleet's rate control.
        scheduled = locked.starts_at > now + START_LEAD or locked.fleet_id is not None
        _transition(
            locked,
            to=Status.SCHEDULED if scheduled else Status.APPROVED,
            action=AuditAction.DELEGATION_APPROVED,
            actor=approved_by,
            actor_organisation=locked.owner,
            changes={
                "decided_by": approved_by,
                "decided_at": now,
                "decision_reason": note,
                "approved_with_mfa": with_mfa,
                **({"ends_at": shortened} if shortened is not None else {}),
                "trust_scope": scope,
            },
            metadata={
                **({"ends_at_set_by_approvers": shortened} if shortened is not None else {}),
                "with_mfa": with_mfa,
                "note": note,
                **approval_summary(delegation=locked),
                **(
                    {"scheduled_start": locked.starts_at}
                    if scheduled and locked.fleet_id is None
                    else {}
                ),
                "trust_scope": scope,
            },
        )
        if not scheduled:
            outbox_enqueue_reconcile(managed_role=locked.managed_role)
        return locked


@transaction.atomic
def delegation_approval_withdraw(*, delegation: Delegation, withdrawn_by: User) -> Delegation:
    """An approver takes back their own approval of a request still waiting for its quorum:
    it needs one more approval again, and an end or trust scope they set no longer applies
    (the way out when that end has passed, instead of rejecting the request). Never someone
    else's approval, nor one that completed the quorum (the request is decided then); a fleet's
    account is decided with its fleet. `changed` is False when this person has no approval on
    it (a double click).

    Under the row lock, like the approvals themselves, so a withdrawal racing the approval that
    would complete the quorum ends one way: counted without it, or decided before it."""
    locked = _lock(delegation)
    _require_admin(
        user=withdrawn_by, organisation=locked.owner, doing=gettext("withdraw an approval")
    )
    _refuse_fleet_account_alone(locked, as_fleet_account=False)
    if locked.status != Status.REQUESTED:
        raise _decided_conflict(locked)
    if not approval_withdraw(delegation=locked, approver=withdrawn_by):
        return _unchanged(locked)
    locked.changed = True
    return locked


class AccessRequest(TypedDict):
    """A partner's request as the web page and the API file it (see `delegation_request`)."""

    partner: Organisation
    requested_by: User | ServiceActor
    partner_link: PartnerLink
    catalog_role: CatalogRole
    reason: str
    ends_at: dt.datetime | None
    starts_at: NotRequired[dt.datetime | None]
    cloud_account: NotRequired[CloudAccount | None]


def delegation_request_submit(**request: Unpack[AccessRequest]) -> Delegation:
    """File a partner's request and let the role's auto-approval rule decide it at once where
    it covers it: whichever door the request comes through, the owner's rule applies the
    same. `changed` on the result says whether the rule approved it."""
    return delegation_auto_approve(delegation=delegation_request(**request))


def delegation_auto_approve(*, delegation: Delegation) -> Delegation:
    """Approve a fresh request by the catalogue role's auto-approval rule when it qualifies
    (time-bound, within the rule's hours, allow-listed, no high privilege judged now);
    otherwise leave it for the approvers. The decision is recorded as the rule's, with its
    version. Run right after `delegation_request`, outside its transaction (it may read the
    cloud for the high-privilege check)."""
    current = Delegation.objects.select_related(
        "owner", "partner", "catalog_role__cloud_account"
    ).get(pk=delegation.pk)
    if current.status != Status.REQUESTED:
        return _unchanged(current)
    rules = rules_in_force(delegation=current)
    role = current.catalog_role
    if role.allows_high_privilege or not auto_approves(
        rules, starts_at=current.starts_at, ends_at=current.ends_at
    ):
        return _unchanged(current)
    try:
        _validate_grantable(owner=current.owner, partner=current.partner, catalog_role=role)
        if _privilege_problem(catalog_role=role) is not None:
            return _unchanged(current)
    except ValidationError:
        return _unchanged(current)  # the approvers see it, and the reason, when they decide
    checked = _privilege_snapshot(role)
    with transaction.atomic():
        locked = _lock(delegation)
        if locked.status != Status.REQUESTED:
            return _unchanged(locked)
        _check_privilege_unchanged(_lock_catalog_role(locked), checked)
        now = timezone.now()
        scheduled = locked.starts_at > now + START_LEAD
        _transition(
            locked,
            to=Status.SCHEDULED if scheduled else Status.APPROVED,
            action=AuditAction.DELEGATION_AUTO_APPROVED,
            actor=None,
            actor_organisation=None,
            changes={
                "decided_at": now,
                "decision_reason": f"Approved automatically: {role.role_name} approves "
                f"requests of up to {rules.auto_approve_max_hours} h by itself "
                f"(rule version {rules.rule_version}).",
            },
            metadata={
                "rule": "auto_approve",
                "rule_version": rules.rule_version,
                "auto_approve_max_hours": rules.auto_approve_max_hours,
            },
        )
        if not scheduled:
            outbox_enqueue_reconcile(managed_role=locked.managed_role)
        return locked


def _refuse_fleet_account_alone(delegation: Delegation, *, as_fleet_account: bool) -> None:
    """A fleet grant's account is decided with the fleet (`delegations.fleet`), never alone:
    one account approved by itself would wait for a fleet nobody approved."""
    if delegation.fleet_id is not None and not as_fleet_account:
        raise DelegationConflict(
            gettext("This access is one account of a fleet grant: decide it on the fleet's page.")
        )


def _segregation_problem(*, delegation: Delegation, user: User) -> str | None:
    if delegation.requested_by_id == user.pk:
        return gettext("You cannot approve a request you made yourself.")
    if is_member(user, delegation.partner):
        return gettext(
            "You are a member of the requesting partner; another owner admin must approve."
        )
    return None


def _decided_conflict(locked: Delegation) -> DelegationConflict:
    if locked.status == Status.WITHDRAWN:
        by = f" ({locked.withdrawer})" if locked.withdrawer else ""
        return DelegationConflict(
            gettext("The partner%(by)s withdrew this request; there is nothing left to decide.")
            % {"by": by}
        )
    who = locked.decided_by or locked.revoked_by
    status = locked.get_status_display().lower()
    if who:
        return DelegationConflict(
            gettext("This request was already decided by %(who)s: it is %(status)s.")
            % {"who": who, "status": status}
        )
    return DelegationConflict(
        gettext("This request was already decided: it is %(status)s.") % {"status": status}
    )


def delegation_reject(
    *,
    delegation: Delegation,
    rejected_by: User,
    reason: str,
    expected_version: int | None = None,
    as_fleet_account: bool = False,
) -> Delegation:
    """An owner admin turns a request down, saying why. One rejection by anyone who may
    decide it (its approver groups) ends it, whatever approvals it already has."""
    current = Delegation.objects.select_related("owner", "partner", "catalog_role").get(
        pk=delegation.pk
    )
    _require_admin(user=rejected_by, organisation=current.owner, doing=gettext("reject a request"))
    _refuse_fleet_account_alone(current, as_fleet_account=as_fleet_account)
    if current.status == Status.REQUESTED:
        denial = approval_refusal(delegation=current, user=rejected_by, approving=False)
        if denial is not None:
            _audit_denied(
                delegation=current,
                action=AuditAction.DELEGATION_REJECT_DENIED,
                actor=rejected_by,
                reason=denial,
            )
            raise PermissionDenied(denial)
    with transaction.atomic():
        return _reject(
            delegation=delegation,
            rejected_by=rejected_by,
            reason=reason,
            expected_version=expected_version,
        )


def _reject(
    *,
    delegation: Delegation,
    rejected_by: User,
    reason: str,
    expected_version: int | None,
) -> Delegation:
    locked = _lock(delegation)
    _require_admin(user=rejected_by, organisation=locked.owner, doing=gettext("reject a request"))
    if locked.status != Status.REQUESTED:
        if locked.status == Status.REJECTED and locked.decided_by_id == rejected_by.pk:
            return _unchanged(locked)
        raise _decided_conflict(locked)
    _check_version(locked, expected_version)
    return _owner_ends(locked, _REJECT, by=rejected_by, reason=reason)


@transaction.atomic
def delegation_revoke(
    *,
    delegation: Delegation,
    revoked_by: User,
    reason: str,
    expected_version: int | None = None,
) -> Delegation:
    """An owner admin ends access. The worker removes the partner from the trust policy."""
    locked = _lock(delegation)
    _require_admin(user=revoked_by, organisation=locked.owner, doing="revoke access")
    if locked.end_cause == Delegation.EndCause.REVOKED and locked.status in (
        Status.REVOKING,
        Status.REVOKED,
    ):
        return _unchanged(locked)
    if locked.status == Status.SCHEDULED:
        _check_version(locked, expected_version)
        return _owner_ends(locked, _REVOKE_SCHEDULED, by=revoked_by, reason=reason)
    if Status.REVOKING not in ALLOWED_TRANSITIONS[locked.status]:
        raise IllegalTransition(
            gettext("This delegation is %(status)s; there is nothing to revoke.")
            % {"status": locked.get_status_display().lower()}
        )
    if locked.status == Status.FAILED and locked.failed_phase == Delegation.Phase.REVOKING:
        raise IllegalTransition(
            gettext("Removing this access already failed once; use Retry to try again.")
        )
    _check_version(locked, expected_version)
    _owner_ends(locked, _REVOKE, by=revoked_by, reason=reason)
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


@dataclasses.dataclass(frozen=True)
class _OwnerEnding:
    """An owner admin ending a delegation with a reason (reject, revoke): the status it goes
    to, the event, and the columns it sets from (who, the cleaned reason, now)."""

    to: str
    action: AuditAction
    changes: Callable[[User, str, dt.datetime], dict[str, Any]]
    metadata: Mapping[str, Any] = dataclasses.field(default_factory=dict)


def _revoke_changes(by: User, reason: str, now: dt.datetime) -> dict[str, Any]:
    return {
        "end_cause": Delegation.EndCause.REVOKED,
        "revoked_by": by,
        "revoke_requested_at": now,
        "revoke_reason": reason,
    }


_REJECT = _OwnerEnding(
    to=Status.REJECTED,
    action=AuditAction.DELEGATION_REJECTED,
    changes=lambda by, reason, now: {
        "decided_by": by,
        "decided_at": now,
        "decision_reason": reason,
        "ended_at": now,
    },
)
# A granted (or applying) delegation: the worker removes the partner, then it is revoked.
_REVOKE = _OwnerEnding(
    to=Status.REVOKING, action=AuditAction.DELEGATION_REVOKE_REQUESTED, changes=_revoke_changes
)
# A scheduled grant never reached the cloud: revoking it ends it at once.
_REVOKE_SCHEDULED = _OwnerEnding(
    to=Status.REVOKED,
    action=AuditAction.DELEGATION_REVOKED,
    changes=lambda by, reason, now: {**_revoke_changes(by, reason, now), "ended_at": now},
    metadata={"before_its_start": True},
)


def _owner_ends(locked: Delegation, ending: _OwnerEnding, *, by: User, reason: str) -> Delegation:
    """Move a locked delegation the way `ending` says, recording the owner admin's reason."""
    reason = _clean_reason(reason, field="reason")
    return _transition(
        locked,
        to=ending.to,
        action=ending.action,
        actor=by,
        actor_organisation=locked.owner,
        changes=ending.changes(by, reason, timezone.now()),
        metadata={"reason": reason, **ending.metadata},
    )


def _retry_goes_back_to_approved(delegation: Delegation) -> bool:
    return not (delegation.failed_phase == Delegation.Phase.REVOKING or delegation.end_cause)


def delegation_retry(
    *, delegation: Delegation, retried_by: User, expected_version: int | None = None
) -> Delegation:
    """An owner admin asks the worker to try a failed delegation again, in the direction it
    was going (applying or revoking). Applying again grants the role, so it makes the checks
    a fresh approval makes first (`grant_precheck`: the allow-list, the role still offered in
    a connected account, the high-privilege opt-in judged now; outside the lock, it may read
    the cloud), and again under the lock (`grant_recheck`)."""
    current = Delegation.objects.select_related(
        "owner", "partner", "catalog_role__cloud_account", "managed_role__cloud_account"
    ).get(pk=delegation.pk)
    _require_admin(user=retried_by, organisation=current.owner, doing="retry")
    checked = None
    if current.status == Status.FAILED and _retry_goes_back_to_approved(current):
        checked = grant_precheck(
            delegation=current,
            audit_refusal=lambda problem: _audit_denied(
                delegation=current,
                action=AuditAction.DELEGATION_RETRY_DENIED,
                actor=retried_by,
                reason=problem,
            ),
        )
    with transaction.atomic():
        return _retry(
            delegation=delegation,
            retried_by=retried_by,
            expected_version=expected_version,
            checked=checked,
        )


def _retry(
    *,
    delegation: Delegation,
    retried_by: User,
    expected_version: int | None,
    checked: tuple[Any, bool] | None,
) -> Delegation:
    locked = _lock(delegation)
    _require_admin(user=retried_by, organisation=locked.owner, doing="retry")
    if locked.status != Status.FAILED:
        raise IllegalTransition(
            gettext("Only a failed delegation can be retried; this one is %(status)s.")
            % {"status": locked.get_status_display().lower()}
        )
    _check_version(locked, expected_version)
    if not _retry_goes_back_to_approved(locked):
        to = Status.REVOKING
    else:
        to = Status.APPROVED
        if locked.ends_at is not None and locked.ends_at <= timezone.now():
            raise ValidationError(
                gettext("This delegation's end date has passed; it cannot be retried.")
            )
        if checked is None:
            raise DelegationConflict(
                gettext("This delegation changed; reload the page and try again.")
            )
        grant_recheck(locked=locked, checked=checked)
    _transition(
        locked,
        to=to,
        action=AuditAction.DELEGATION_RETRIED,
        actor=retried_by,
        actor_organisation=locked.owner,
        metadata={
            "failed_phase": locked.failed_phase,
            "previous_error_code": locked.last_error_code,
            "previous_request_id": locked.last_error_request_id,
        },
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


# --- the worker's transitions ----------------------------------------------------------------

# A delegation that reaches where it was going forgets the error of an earlier failed try.
_NO_ERROR = {
    "last_error_code": "",
    "last_error_message": "",
    "last_error_request_id": "",
    "last_error_at": None,
}


def _bulk_move(to: str) -> tuple[AuditAction, dict[str, Any]]:
    """The audit action of a bulk move to `to` and the columns it sets on every row (each row
    also counts one more version: `_move_row`)."""
    now = timezone.now()
    if to == Status.APPLYING:
        action, extra = AuditAction.DELEGATION_APPLYING, {}
    elif to == Status.ACTIVE:
        action, extra = AuditAction.DELEGATION_ACTIVATED, {"activated_at": now, **_NO_ERROR}
    else:
        raise ValueError(f"Only moves to applying or active go in bulk, not {to!r}.")
    return action, {**extra, "status": to, "failed_phase": Delegation.Phase.NONE, "updated_at": now}


def _move_row(row: Delegation, changes: Mapping[str, Any]) -> None:
    """`row` as a bulk move with `changes` (`_bulk_move`) leaves it."""
    for name, value in changes.items():
        setattr(row, name, value)
    row.version += 1


def delegations_mark_many_prepare(*, delegations: list[Delegation], to: str) -> PreparedNotices:
    """What `delegations_mark_many(..., to=to)` can do before its transaction: render the
    notices of the rows that would move, as the move would leave them (reads only; the
    worker does this while its verifying reads are out). Pass the result as `prepared`; a row
    that changed meanwhile gets its notice rendered again there."""
    action, changes = _bulk_move(to)
    after = []
    for row in delegations:
        if row.status == to or to not in ALLOWED_TRANSITIONS.get(row.status, ()):
            continue
        moved = copy.copy(row)
        _move_row(moved, changes)
        after.append(moved)
    prefetch_related_objects(after, "owner", "catalog_role", "partner")
    return delegations_announce_prepare(delegations=after, action=action)


def delegations_mark_many(
    *,
    delegations: list[Delegation],
    to: str,
    before_audit: Callable[[], None] | None = None,
    prepared: PreparedNotices | None = None,
) -> list[Delegation]:
    """The worker's `delegation_mark_applying` / `delegation_mark_active` for many rows at once,
    with the same outcome row by row: rows already there are left (`changed` False), every
    other row moves with one audit event each and, into active, its partner's follow-up work.

    The rows are the caller's, locked and loaded in this transaction
    (`delegations_lock_for_worker`); they are written with one UPDATE and no savepoint per
    row. A row the lifecycle does not let move to `to` raises IllegalTransition before
    anything is written. `before_audit` runs just before the audit events are written (the
    worker's own events for the round go there, after the notices and before the chain lock).
    `prepared` (`delegations_mark_many_prepare`) holds notices already rendered.
    """
    action, changes = _bulk_move(to)
    moving: list[tuple[Delegation, dict[str, Any]]] = []
    for row in delegations:
        row.changed = False
        if row.status == to:
            continue
        _check_allowed(row, to=to)
        moving.append((row, _snapshot(row)))
    if not moving:
        return []
    for row, _before in moving:
        _move_row(row, changes)
        row.changed = True
    # Every row gets the same values and its own version + 1 (the rows are locked and loaded
    # in this transaction, so the database's version is the one just incremented here): one
    # plain UPDATE, not bulk_update's CASE per row and field, which cost seconds of CPU for a
    # role's hundred partners.
    Delegation.objects.filter(pk__in=[row.pk for row, _ in moving]).update(
        **changes, version=F("version") + 1
    )
    # The notices first: they only read and insert deliveries (no lock in the project's lock
    # order), and written after the audit events they would hold the one audit-chain lock,
    # serialising every other worker's audit behind a bulk move. All of them at once: the
    # statements do not grow with the rows.
    delegations_announce_many(
        delegations=[row for row, _ in moving], action=action, prepared=prepared
    )
    if before_audit is not None:
        before_audit()
    # One event per row as `_transition` writes it, all written with one lock of the chain.
    audit_record_many(
        [
            _audit_arguments(
                delegation=row, action=action, actor=None, actor_organisation=None, before=before
            )
            for row, before in moving
        ]
    )
    partner_access_delegations_changed(
        delegations=[row for row, before in moving if Status.ACTIVE in (before["status"], to)]
    )
    fleets = set()
    for row, before in moving:
        if row.fleet_id is not None and row.fleet_id not in fleets:
            fleets.add(row.fleet_id)
            _fleet_follow_up(row, before=before["status"], to=to)
    return [row for row, _ in moving]


@transaction.atomic
def delegation_mark_applying(*, delegation: Delegation, already_locked: bool = False) -> Delegation:
    """The worker has started putting this delegation into the cloud."""
    locked = _lock_unless(delegation, already_locked=already_locked)
    if locked.status == Status.APPLYING:
        return _unchanged(locked)
    return _transition(
        locked,
        to=Status.APPLYING,
        action=AuditAction.DELEGATION_APPLYING,
        actor=None,
        actor_organisation=None,
    )


@transaction.atomic
def delegation_mark_active(
    *, delegation: Delegation, request_id: str = "", already_locked: bool = False
) -> Delegation:
    """The worker verified the partner's principal and the role's policies in the cloud."""
    locked = _lock_unless(delegation, already_locked=already_locked)
    if locked.status == Status.ACTIVE:
        return _unchanged(locked)
    return _transition(
        locked,
        to=Status.ACTIVE,
        action=AuditAction.DELEGATION_ACTIVATED,
        actor=None,
        actor_organisation=None,
        changes={
            "activated_at": timezone.now(),
            **_NO_ERROR,
        },
        metadata={"request_id": request_id} if request_id else None,
    )


@transaction.atomic
def delegation_mark_failed(
    *,
    delegation: Delegation,
    error_code: str,
    error_message: str,
    request_id: str = "",
    already_locked: bool = False,
) -> Delegation:
    """The worker gave up: a permanent cloud error, or retries exhausted. The owner sees the
    cloud's code, message and request id, and can retry."""
    locked = _lock_unless(delegation, already_locked=already_locked)
    if locked.status == Status.FAILED:
        return _unchanged(locked)
    phase = (
        Delegation.Phase.REVOKING if locked.status == Status.REVOKING else Delegation.Phase.APPLYING
    )
    error_code = (error_code or "")[:128]
    error_message = (error_message or "")[:2000]
    request_id = (request_id or "")[:64]
    return _transition(
        locked,
        to=Status.FAILED,
        action=AuditAction.DELEGATION_FAILED,
        actor=None,
        actor_organisation=None,
        changes={
            "failed_phase": phase,
            "last_error_code": error_code,
            "last_error_message": error_message,
            "last_error_request_id": request_id,
            "last_error_at": timezone.now(),
        },
        metadata={
            "failed_phase": phase,
            "error_code": error_code,
            "error_message": error_message,
            "request_id": request_id,
        },
    )


@transaction.atomic
def delegation_mark_revoked(*, delegation: Delegation, already_locked: bool = False) -> Delegation:
    """The worker verified the partner's principal is gone: the delegation ends as revoked,
    or as expired when the scheduler ended it."""
    locked = _lock_unless(delegation, already_locked=already_locked)
    if locked.status in (Status.REVOKED, Status.EXPIRED):
        return _unchanged(locked)
    if locked.status == Status.FAILED and locked.failed_phase != Delegation.Phase.REVOKING:
        raise IllegalTransition(
            gettext("A delegation that failed while applying was never revoked.")
        )
    expired = locked.end_cause == Delegation.EndCause.EXPIRED
    return _transition(
        locked,
        to=Status.EXPIRED if expired else Status.REVOKED,
        action=AuditAction.DELEGATION_EXPIRED if expired else AuditAction.DELEGATION_REVOKED,
        actor=None,
        actor_organisation=None,
        changes={
            "ended_at": timezone.now(),
            **_NO_ERROR,
        },
    )


# --- the scheduler's -------------------------------------------------------------------------


def _expiry_due(*, now: dt.datetime) -> Q:
    """The delegations the scheduler ends at `now`: past their end date and still expirable.
    A revoke that failed is already ending and waits for an owner's Retry, so it is not due:
    the expiry pass must not give it a place, or enough of them would hold up every later
    delegation. `delegation_expire` asks this same condition of its locked row."""
    return Q(status__in=EXPIRABLE_STATUSES, ends_at__lte=now) & ~Q(
        status=Status.FAILED, failed_phase=Delegation.Phase.REVOKING
    )


@transaction.atomic
def delegation_expire(*, delegation: Delegation, now: dt.datetime | None = None) -> Delegation:
    """End a delegation whose end date has passed. A request nobody decided simply expires;
    access that may be in the cloud goes through revoking first."""
    now = now or timezone.now()
    locked = _lock(delegation)
    if not Delegation.objects.filter(_expiry_due(now=now), pk=locked.pk).exists():
        return _unchanged(locked)
    if locked.status in (Status.REQUESTED, Status.SCHEDULED):
        return _transition(
            locked,
            to=Status.EXPIRED,
            action=AuditAction.DELEGATION_EXPIRED,
            actor=None,
            actor_organisation=None,
            changes={"end_cause": Delegation.EndCause.EXPIRED, "ended_at": now},
        )
    _transition(
        locked,
        to=Status.REVOKING,
        action=AuditAction.DELEGATION_EXPIRING,
        actor=None,
        actor_organisation=None,
        changes={"end_cause": Delegation.EndCause.EXPIRED, "revoke_requested_at": now},
        metadata={"ends_at": locked.ends_at},
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


def delegations_expire_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Expire every delegation whose end date has passed (run by the scheduler). Returns how
    many changed."""
    now = now or timezone.now()
    due = list(
        Delegation.objects.filter(_expiry_due(now=now))
        .order_by("ends_at")
        .values_list("pk", "fleet_id")[:limit]
    )
    changed = 0
    fleets: dict[Any, list[Any]] = {}
    for delegation_id, fleet_id in due:
        if fleet_id is not None:
            fleets.setdefault(fleet_id, []).append(delegation_id)
            continue
        before = Delegation.objects.only("version").get(pk=delegation_id).version
        after = delegation_expire(delegation=Delegation(pk=delegation_id), now=now)
        changed += int(after.version != before)
    for fleet_id, member_ids in fleets.items():
        changed += _fleet_members_expire(fleet_id=fleet_id, member_ids=member_ids, now=now)
    return changed


@transaction.atomic
def _fleet_members_expire(*, fleet_id: Any, member_ids: list[Any], now: dt.datetime) -> int:
    """Expire a fleet's due accounts together, told as one notice for the fleet rather than one
    per account. The fleet's row is locked first and its accounts in the fleet's own order,
    as a fleet revoke does, so the two never wait on each other crosswise."""
    fleet = (
        FleetGrant.objects.select_for_update(of=("self",))
        .select_related("owner", "partner", "catalog_role")
        .get(pk=fleet_id)
    )
    before = dict(
        Delegation.objects.filter(pk__in=member_ids)
        .order_by("created_at", "pk")
        .values_list("pk", "version")
    )
    ended: list[Delegation] = []
    with fleet_digest():
        for delegation_id, version in before.items():
            after = delegation_expire(delegation=Delegation(pk=delegation_id), now=now)
            if after.version != version:
                ended.append(after)
    fleet_expired_announce(fleet=fleet, members=ended)
    return len(ended)


@transaction.atomic
def delegation_start(*, delegation: Delegation, now: dt.datetime | None = None) -> Delegation:
    """A scheduled grant's start is near (within `START_LEAD`): it becomes approved and the
    worker applies it, so the access works at the minute it starts."""
    now = now or timezone.now()
    locked = _lock(delegation)
    if locked.status != Status.SCHEDULED or locked.starts_at > now + START_LEAD:
        return _unchanged(locked)
    if locked.ends_at is not None and locked.ends_at <= now:
        return _unchanged(locked)  # the expiry pass ends it instead
    _transition(
        locked,
        to=Status.APPROVED,
        action=AuditAction.DELEGATION_SCHEDULED_START,
        actor=None,
        actor_organisation=None,
        metadata={"starts_at": locked.starts_at},
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


@transaction.atomic
def delegation_start_fleet_turn(
    *, delegation: Delegation, started_by: User | None = None
) -> Delegation:
    """A fleet's account gets its turn in the fleet's rate control: scheduled becomes approved
    and the worker applies it (`delegations.fleet` decides whose turn it is; `started_by`: an
    owner admin who started an account the fleet did not attempt)."""
    locked = _lock(delegation)
    if locked.fleet_id is None or locked.status != Status.SCHEDULED:
        return _unchanged(locked)
    if locked.ends_at is not None and locked.ends_at <= timezone.now():
        return _unchanged(locked)  # the expiry pass ends it instead
    _transition(
        locked,
        to=Status.APPROVED,
        action=AuditAction.DELEGATION_FLEET_TURN,
        actor=started_by,
        actor_organisation=locked.owner if started_by is not None else None,
    )
    outbox_enqueue_reconcile(managed_role=locked.managed_role)
    return locked


def delegations_start_due(*, now: dt.datetime | None = None, limit: int = 500) -> int:
    """Start every scheduled grant whose start is within `START_LEAD` (run by the
    scheduler). Returns how many changed."""
    now = now or timezone.now()
    due_ids = list(
        # A fleet's accounts wait as scheduled for their turn; the fleet starts them.
        Delegation.objects.filter(
            status=Status.SCHEDULED, starts_at__lte=now + START_LEAD, fleet__isnull=True
        )
        .order_by("starts_at")
        .values_list("pk", flat=True)[:limit]
    )
    return sum(
        int(delegation_start(delegation=Delegation(pk=delegation_id), now=now).changed)
        for delegation_id in due_ids
    )


def delegations_desired_on_role(*, managed_role: ManagedRole) -> list[Delegation]:
    """The delegations whose partner principal should be in `managed_role`'s trust policy."""
    return list(
        Delegation.objects.filter(managed_role=managed_role, status__in=DESIRED_PRESENT_STATUSES)
    )
