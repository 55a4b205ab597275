"""How a delegation moves, for every module of the lifecycle: the row lock, the checks a grant
makes (who may, what may be granted, for how long, the high-privilege opt-in), the transition
that refuses moves outside `ALLOWED_TRANSITIONS`, saves exactly what changed and audits it in
the same transaction, and the refusal audited in a transaction of its own.

The transitions themselves: people's in `services`, the worker's and the scheduler's in
`automatic`; extensions, oversight and named people build on the same pieces."""

import datetime as dt
from collections.abc import Callable, Iterable
from typing import Any, NotRequired, TypedDict, Unpack

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import prefetch_related_objects
from django.utils import timezone
from django.utils.translation import gettext, ngettext

from accounts import selectors as accounts_selectors
from accounts.actors import ServiceActor, actor_user, require_service_actor_of
from accounts.models import Organisation, User
from accounts.permissions import is_admin_member
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from cloud.errors import CloudError
from core.db import conflict_as_validation_error
from delegations.catalog.account_policies import (
    catalog_role_policies_now,
    custom_policies_missing_message,
)
from delegations.catalog.selectors import catalog_role_accounts
from delegations.catalog.services import catalog_role_lock
from delegations.connection.selectors import organisation_own_account_uids
from delegations.delegation_audit import delegation_label
from delegations.models import (
    ALLOWED_TRANSITIONS,
    FINAL_STATUSES,
    CatalogRole,
    CloudAccount,
    Delegation,
    ManagedRole,
    OutboxMessage,
    PartnerAllowance,
    TrustScope,
)
from delegations.notices import (
    delegation_announce,
)
from delegations.outbox import outbox_enqueue
from delegations.partner_access import (
    partner_access_delegation_changed,
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


def require_admin(*, user: User | ServiceActor, organisation: Organisation, doing: str) -> None:
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


def clean_reason(reason: str, *, field: str, required: bool = True) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise ValidationError({field: gettext("Please give a reason.")})
    if len(text) > REASON_MAX_LENGTH:
        raise ValidationError(
            {field: gettext("Keep it under %(limit)s characters.") % {"limit": REASON_MAX_LENGTH}}
        )
    return text


def validate_ends_at(ends_at: dt.datetime | None, *, now: dt.datetime) -> None:
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


def validated_start(
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
        validate_end_after_start(ends_at, starts_at=starts_at)
    return starts_at


def validate_end_after_start(ends_at: dt.datetime, *, starts_at: dt.datetime) -> None:
    """The worker needs a few minutes of access to apply it before it ends."""
    if ends_at < starts_at + MIN_DURATION:
        raise ValidationError(
            {"ends_at": gettext("The end must be at least 5 minutes after the start.")}
        )


def validate_grantable(
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
    # Any of the owner's accounts, not only the one granted in: a partner under another of
    # them would be the owner trusting itself.
    if partner.account_uid in organisation_own_account_uids(organisation=owner):
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


def validate_no_open_duplicate(
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


def policies_problem(
    *, catalog_role: CatalogRole, cloud_account: CloudAccount | None = None
) -> str | None:
    """Why granting `catalog_role` now in `cloud_account` (default: its home) is refused by
    its policies as the account has them (judged now, see `catalog_role_policies_now`): one
    of its Custom policies does not exist there (a Custom policy is one account's own, and
    the worker's AttachPolicyToRole would fail), or it holds policies granting RAM
    administration or full access there and the owner has not opted in to that for this
    role. The cloud is read here, so callers run this before they take any row lock."""
    account = cloud_account or catalog_role.cloud_account
    try:
        found = catalog_role_policies_now(catalog_role=catalog_role, cloud_account=account)
    except CloudError as error:
        raise ValidationError(
            gettext(
                "Alibaba Cloud could not be asked whether %(role)s's policies grant RAM "
                "administration (%(message)s). Nothing was granted; try again in a "
                "moment."
            )
            % {"role": catalog_role.role_name, "message": error.message}
        ) from None
    if found.missing:
        return custom_policies_missing_message(found.missing, account=account)
    flagged = found.high_privilege
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


def privilege_snapshot(catalog_role: CatalogRole) -> tuple[Any, bool]:
    return (catalog_role.policies, catalog_role.allows_high_privilege)


def check_privilege_unchanged(catalog_role: CatalogRole, checked: tuple[Any, bool]) -> None:
    """Under the lock: the role's policies and opt-in are still those judged before it."""
    if privilege_snapshot(catalog_role) != checked:
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
    account, its Custom policies exist in that account, and the role's high-privilege opt-in
    covers its policies as they are now (a Custom policy may have gained RAM rights, or been
    deleted, since the role was created; this reads the cloud). `audit_refusal` records a
    refusal by the policies before it is raised; pass the result to `grant_recheck` under the
    delegation's row lock."""
    validate_grantable(
        owner=delegation.owner,
        partner=delegation.partner,
        catalog_role=delegation.catalog_role,
        cloud_account=delegation.managed_role.cloud_account,
    )
    problem = policies_problem(
        catalog_role=delegation.catalog_role, cloud_account=delegation.managed_role.cloud_account
    )
    if problem is not None:
        audit_refusal(problem)
        raise ValidationError(problem)
    return privilege_snapshot(delegation.catalog_role)


def grant_recheck(*, locked: Delegation, checked: tuple[Any, bool]) -> None:
    """Under `locked`'s row lock: lock its catalogue role, whose policies and opt-in must be
    those `grant_precheck` judged, and check the grant rules again on the fresh rows."""
    check_privilege_unchanged(lock_catalog_role(locked), checked)
    validate_grantable(
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


def lock_delegation(delegation: Delegation) -> Delegation:
    return Delegation.objects.locked_for_change().get(pk=delegation.pk)


def lock_unless(delegation: Delegation, *, already_locked: bool) -> Delegation:
    """The delegation's row locked: `delegation` itself when the caller already locked and
    loaded it in this transaction (`delegations_lock_for_worker`), else locked now."""
    return delegation if already_locked else lock_delegation(delegation)


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


def lock_catalog_role(locked: Delegation) -> CatalogRole:
    """Lock the delegation's catalogue role row (after the delegation's, always in this
    order) so an edit of the role cannot commit between a privilege check and the grant."""
    role = catalog_role_lock(catalog_role_id=locked.catalog_role_id)
    locked.catalog_role = role
    return role


def check_version(locked: Delegation, expected_version: int | None) -> None:
    if expected_version is not None and locked.version != expected_version:
        raise DelegationConflict(
            gettext(
                "This delegation changed while you were looking at it: it is now "
                "%(status)s. Reload the page and decide again."
            )
            % {"status": locked.get_status_display().lower()}
        )


def delegation_snapshot(delegation: Delegation) -> dict[str, Any]:
    return {
        "status": delegation.status,
        "failed_phase": delegation.failed_phase,
        "end_cause": delegation.end_cause,
        "version": delegation.version,
    }


def trust_scope_fields(trust_scope: str | None) -> dict[str, str]:
    """`{"trust_scope": …}` when the owner chose one at approve or offer time, else nothing."""
    if not trust_scope:
        return {}
    if trust_scope not in TrustScope.values:
        raise ValidationError({"trust_scope": gettext("Choose one of the trust scopes.")})
    return {"trust_scope": trust_scope}


class _DelegationEvent(TypedDict):
    """One transition's event, as `audit_delegation` and `audit_arguments` take it."""

    delegation: Delegation
    action: AuditAction
    actor: User | ServiceActor | None
    actor_organisation: Organisation | None
    before: dict[str, Any] | None
    metadata: NotRequired[dict[str, Any] | None]
    outcome: NotRequired[str]


def audit_delegation(**event: Unpack[_DelegationEvent]) -> None:
    audit_record(**audit_arguments(**event))
    if event.get("outcome", AuditEvent.Outcome.SUCCESS) == AuditEvent.Outcome.SUCCESS:
        delegation_announce(
            delegation=event["delegation"], action=event["action"], actor=actor_user(event["actor"])
        )


def audit_arguments(
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
        "after": delegation_snapshot(delegation),
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


def fleet_follow_up(delegation: Delegation, *, before: str, to: str) -> None:
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


def check_allowed(delegation: Delegation, *, to: str) -> None:
    if to not in ALLOWED_TRANSITIONS[delegation.status]:
        raise IllegalTransition(
            f"A {delegation.get_status_display().lower()} delegation cannot become "
            f"{Status(to).label.lower()}."
        )


def transition(
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
    check_allowed(delegation, to=to)
    before = delegation_snapshot(delegation)
    changes = dict(changes or {})
    changes["status"] = to
    if to != Status.FAILED:
        changes.setdefault("failed_phase", Delegation.Phase.NONE)
    version_bump(delegation, changes)
    delegation.changed = True
    audit_delegation(
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
    fleet_follow_up(delegation, before=before["status"], to=to)
    return delegation


def audit_denied(*, delegation: Delegation, action: AuditAction, actor: User, reason: str) -> None:
    """Record a refused attempt in its own transaction, so it survives the refusal."""
    with transaction.atomic():
        audit_delegation(
            delegation=delegation,
            action=action,
            actor=actor,
            actor_organisation=delegation.owner,
            before=None,
            metadata={"denied_because": reason},
            outcome=AuditEvent.Outcome.DENIED,
        )


def denial_recorder(
    *, delegation: Delegation, action: AuditAction, actor: User
) -> Callable[[str], None]:
    """`audit_denied` for one attempt, given only why it is refused: what a service hands to
    a check that may refuse it (`grant_precheck`'s `audit_refusal`), and uses itself."""
    return lambda reason: audit_denied(
        delegation=delegation, action=action, actor=actor, reason=reason
    )
