"""The owner's catalogue: the roles it may grant (its allow-list of partner accounts is
`catalog.allow_list`; what an account's policies are, `catalog.account_policies`).

Nothing here calls a mutating cloud API: a catalogue role becomes a RAM role only when the
worker applies a delegation. The reads it does make (the account's policies, a policy's
document, whether a same-named role already exists) happen before anything is written, so a
refusal writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.db.models.functions import Lower
from django.utils.translation import gettext
from django.utils.translation import gettext as _

from accounts.models import Organisation, User
from audit.actions import AuditAction
from audit.services import audit_record
from cloud import policies
from cloud.errors import CloudError
from core.db import conflict_as_validation_error
from delegations.catalog.account_policies import (
    PolicyKey,
    cloud_account_policies,
    cloud_failure,
    high_privilege_reasons_in,
    validate_custom_policies_in,
)
from delegations.catalog.selectors import (
    catalog_role_accounts,
    catalog_role_reach,
    catalog_roles_granted_in,
)
from delegations.connection.services import cloud_account_client
from delegations.models import (
    CATALOG_ROLE_EDITABLE_FIELDS,
    HOME_FIRST,
    MAX_SESSION_DURATION,
    MIN_SESSION_DURATION,
    NEVER_APPLIED_STATUSES,
    CatalogRole,
    CloudAccount,
    Delegation,
    ManagedRole,
    TrustScope,
)
from delegations.outbox import outbox_enqueue_reconcile

MAX_POLICIES_PER_ROLE = 10
# RAM's Description limit minus room for the portal's marker, which the worker appends.
DESCRIPTION_MAX_LENGTH = policies.MAX_ROLE_DESCRIPTION_LENGTH - len(policies.PORTAL_MARKER) - 1


# --- catalogue roles --------------------------------------------------------------------------


def _active_cloud_account(owner: Organisation) -> CloudAccount:
    if not owner.is_owner:
        raise ValidationError(
            gettext("Only resource owner organisations keep a catalogue of roles.")
        )
    # A new role's home is the owner's primary account; it may be offered in the others.
    account = CloudAccount.objects.filter(
        organisation=owner, is_active=True, is_primary=True
    ).first()
    if account is None:
        raise ValidationError(gettext("Connect your Alibaba Cloud account before adding roles."))
    return account


def _parse_policy_keys(raw: Sequence[Any]) -> list[PolicyKey]:
    keys: list[PolicyKey] = []
    for item in raw:
        if isinstance(item, dict):
            kind, name = item.get("type"), item.get("name")
        elif isinstance(item, (tuple, list)) and len(item) == 2:
            kind, name = item
        elif isinstance(item, str) and ":" in item:
            kind, name = item.split(":", 1)
        else:
            raise ValidationError({"policies": gettext("Choose policies from the account's list.")})
        try:
            policies.validate_policy_type(kind)
            policies.validate_policy_name(name)
        except policies.PolicyError:
            raise ValidationError(
                {"policies": gettext("Choose policies from the account's list.")}
            ) from None
        # Both passed the validators above, so they are strings.
        if (kind, name) not in keys:
            keys.append((str(kind), str(name)))
    return keys


def _roles_granted_in(
    *, owner: Organisation, role_name: str, accounts: Iterable[CloudAccount] | None
) -> QuerySet[CatalogRole]:
    """The owner's catalogue roles named `role_name` (RAM ignores case) that may be granted
    in one of `accounts` (None: in any account): homed there, offered in every account, or
    offered there. In one account a name is one RAM role, which two catalogue roles, each
    with its own policies, cannot share."""
    named = CatalogRole.objects.annotate(lowered=Lower("role_name")).filter(
        organisation=owner, lowered=role_name.lower()
    )
    if accounts is None:
        return named
    return catalog_roles_granted_in(named, accounts=accounts)


def catalog_role_validate(
    *,
    owner: Organisation,
    role_name: str,
    description: str,
    policy_keys: Sequence[Any],
    max_session_duration: int,
) -> tuple[CloudAccount, list[PolicyKey]]:
    """Every rule for a new catalogue role that needs no cloud call; returns the account and the
    cleaned policy keys. Raises ValidationError (field → message)."""
    account = _active_cloud_account(owner)
    errors: dict[str, str] = {}
    keys = _validate_role_settings(
        errors,
        description=description,
        policy_keys=policy_keys,
        max_session_duration=max_session_duration,
    )
    try:
        policies.validate_role_name(role_name)
    except policies.PolicyError as exc:
        errors["role_name"] = str(exc)
    else:
        if _roles_granted_in(owner=owner, role_name=role_name, accounts=[account]).exists():
            errors["role_name"] = gettext(
                "The catalogue already has a role named %(role_name)s (RAM role names "
                "ignore case; a deactivated role keeps its name)."
            ) % {"role_name": role_name}
    if errors:
        raise ValidationError(errors)
    return account, keys


def _validate_role_settings(
    errors: dict[str, str],
    *,
    description: str,
    policy_keys: Sequence[Any],
    max_session_duration: int,
) -> list[PolicyKey]:
    """The rules for what a role grants, shared by adding and editing a role: collects
    messages in `errors` (field → message) and returns the cleaned policy keys."""
    if not isinstance(description, str) or len(description) > DESCRIPTION_MAX_LENGTH:
        errors["description"] = gettext(
            "A description is at most %(DESCRIPTION_MAX_LENGTH)s characters."
        ) % {"DESCRIPTION_MAX_LENGTH": DESCRIPTION_MAX_LENGTH}
    elif policies.PORTAL_MARKER in description:
        errors["description"] = gettext("The description cannot contain the portal's own marker.")
    if (
        not isinstance(max_session_duration, int)
        or isinstance(max_session_duration, bool)
        or not MIN_SESSION_DURATION <= max_session_duration <= MAX_SESSION_DURATION
    ):
        errors["max_session_duration"] = gettext(
            "The maximum session is %(MIN_SESSION_DURATION)s to "
            "%(MAX_SESSION_DURATION)s seconds (1 to 12 hours)."
        ) % {
            "MIN_SESSION_DURATION": MIN_SESSION_DURATION,
            "MAX_SESSION_DURATION": MAX_SESSION_DURATION,
        }
    keys: list[PolicyKey] = []
    try:
        keys = _parse_policy_keys(policy_keys)
    except ValidationError as exc:
        errors.update({field: " ".join(msgs) for field, msgs in exc.message_dict.items()})
    else:
        if not keys:
            errors["policies"] = gettext("Choose at least one permission policy.")
        elif len(keys) > MAX_POLICIES_PER_ROLE:
            errors["policies"] = gettext(
                "A role gets at most %(MAX_POLICIES_PER_ROLE)s policies."
            ) % {"MAX_POLICIES_PER_ROLE": MAX_POLICIES_PER_ROLE}
    return keys


def _validate_policies_in_account(
    account: CloudAccount,
    keys: Sequence[PolicyKey],
    *,
    high_privilege_confirmed: bool,
    elsewhere: Sequence[CloudAccount] = (),
) -> list[str]:
    """The policies must be in the account's live list, their Custom ones also in each
    account `elsewhere` (where the role is offered or granted besides), and any
    high-privilege one, in any of these accounts, needs the opt-in. Returns the
    high-privilege ones. Reads only."""
    try:
        available = {p.key for p in cloud_account_policies(cloud_account=account)}
    except CloudError as error:
        raise cloud_failure(error, gettext("list the account's policies")) from None
    unknown = [f"{kind} policy {name}" for kind, name in keys if (kind, name) not in available]
    if unknown:
        raise ValidationError(
            {
                "policies": gettext("Not in the account's policies: %(unknown)s.")
                % {"unknown": ", ".join(unknown)}
            }
        )
    validate_custom_policies_in(elsewhere, keys, field="policies")
    try:
        high_privilege = high_privilege_reasons_in(account, keys, elsewhere=elsewhere)
    except CloudError as error:
        raise cloud_failure(error, gettext("read the policies and roles")) from None
    if high_privilege and not high_privilege_confirmed:
        why = "; ".join(f"{name} {', '.join(reasons)}" for name, reasons in high_privilege.items())
        raise ValidationError(
            {
                "high_privilege_confirmed": gettext(
                    "High privilege: %(why)s. Tick the box to confirm a partner may have that."
                )
                % {"why": why}
            }
        )
    return list(high_privilege)


def catalog_role_validate_create(
    *,
    owner: Organisation,
    role_name: str,
    description: str,
    policy_keys: Sequence[Any],
    max_session_duration: int,
    high_privilege_confirmed: bool,
    default_trust_scope: str,
) -> tuple[CloudAccount, list[PolicyKey], list[str]]:
    """Every check adding a role makes before it saves (a four-eyes proposal makes them too):
    `catalog_role_validate`'s, then the account's own, read through the adapter: the policies
    in its live list (a high-privilege one only with the opt-in), and no role of that name the
    portal did not create, nor a partner's own role. Returns the account, the cleaned policy
    keys and the high-privilege policies. Reads only."""
    _valid_trust_scope(default_trust_scope)
    account, keys = catalog_role_validate(
        owner=owner,
        role_name=role_name,
        description=description,
        policy_keys=policy_keys,
        max_session_duration=max_session_duration,
    )
    high_privilege = _validate_policies_in_account(
        account, keys, high_privilege_confirmed=high_privilege_confirmed
    )
    try:
        existing = cloud_account_client(cloud_account=account).get_role(role_name)
    except CloudError as error:
        raise cloud_failure(error, gettext("read the policies and roles")) from None
    if existing is not None and not policies.has_marker(existing.description):
        raise ValidationError(
            {
                "role_name": gettext(
                    "A role named %(existing)s already exists in the account and the portal "
                    "did not create it; the portal never takes over such a role. Choose "
                    "another name."
                )
                % {"existing": existing.name}
            }
        )
    partners_own = (
        ManagedRole.objects.filter(
            cloud_account=account, role_name__iexact=role_name, partner__isnull=False
        )
        .select_related("partner")
        .first()
    )
    if partners_own is not None:
        raise ValidationError(
            {
                "role_name": gettext(
                    "%(partners_own)s is %(partner)s's own role for another catalogue role "
                    "(one role per partner). Choose another name."
                )
                % {"partners_own": partners_own.role_name, "partner": partners_own.partner}
            }
        )
    return account, keys, high_privilege


def catalog_role_create(
    *,
    owner: Organisation,
    created_by: User | None,
    role_name: str,
    description: str,
    policy_keys: Sequence[Any],
    max_session_duration: int,
    keep_role_when_empty: bool = False,
    high_privilege_confirmed: bool = False,
    default_trust_scope: str = TrustScope.PARTNER_ACCOUNT,
    one_role_per_partner: bool = False,
) -> CatalogRole:
    """Add a role to the catalogue. `policy_keys`: (type, name) pairs, "Type:Name" strings or
    {"type", "name"} dicts, each of which must be in the account's live policy list.
    `one_role_per_partner`: each partner gets its own RAM role `<role>-<partner alias>`
    instead of a place in one shared trust policy (fixed once the role is added)."""
    description = (description or "").strip()
    account, keys, high_privilege = catalog_role_validate_create(
        owner=owner,
        role_name=role_name,
        description=description,
        policy_keys=policy_keys,
        max_session_duration=max_session_duration,
        high_privilege_confirmed=high_privilege_confirmed,
        default_trust_scope=default_trust_scope,
    )
    taken = {
        "role_name": gettext("The catalogue already has a role named %(role_name)s.")
        % {"role_name": role_name}
    }
    with conflict_as_validation_error(taken):
        role = CatalogRole.objects.create(
            organisation=owner,
            cloud_account=account,
            role_name=role_name,
            description=description,
            policies=[{"type": kind, "name": name} for kind, name in keys],
            max_session_duration=max_session_duration,
            keep_role_when_empty=bool(keep_role_when_empty),
            allows_high_privilege=bool(high_privilege),
            default_trust_scope=_valid_trust_scope(default_trust_scope),
            one_role_per_partner=bool(one_role_per_partner),
            created_by=created_by,
        )
        audit_record(
            action=AuditAction.CATALOG_ROLE_CREATED,
            actor=created_by,
            organisation=owner,
            target=role,
            after=_role_public(role),
            metadata={"high_privilege_policies": high_privilege},
        )
    return role


def _role_public(role: CatalogRole) -> dict[str, object]:
    return {
        "role_name": role.role_name,
        "account_uid": role.cloud_account.account_uid,
        "description": role.description,
        "policies": role.policies,
        "max_session_duration": role.max_session_duration,
        "keep_role_when_empty": role.keep_role_when_empty,
        "allows_high_privilege": role.allows_high_privilege,
        "default_trust_scope": role.default_trust_scope,
        "one_role_per_partner": role.one_role_per_partner,
        "is_active": role.is_active,
    }


def _valid_trust_scope(value: str) -> str:
    if value not in TrustScope.values:
        raise ValidationError({"default_trust_scope": gettext("Choose one of the trust scopes.")})
    return value


def catalog_role_validate_update(
    *,
    catalog_role: CatalogRole,
    description: str,
    policy_keys: Sequence[Any],
    max_session_duration: int,
) -> list[PolicyKey]:
    """Every rule for editing a role that needs no cloud call (the same as for adding one);
    returns the cleaned policy keys. Raises ValidationError (field → message)."""
    if not catalog_role.cloud_account.is_active:
        raise ValidationError(gettext("Connect the role's cloud account again before editing it."))
    errors: dict[str, str] = {}
    keys = _validate_role_settings(
        errors,
        description=(description or "").strip(),
        policy_keys=policy_keys,
        max_session_duration=max_session_duration,
    )
    if errors:
        raise ValidationError(errors)
    return keys


def catalog_role_lock(*, catalog_role_id: Any) -> CatalogRole:
    """The role's row (with its cloud account), locked until the transaction ends, so that an
    edit cannot commit between a check of the role and what is done on the strength of it."""
    return (
        CatalogRole.objects.select_for_update()
        .select_related("cloud_account")
        .get(pk=catalog_role_id)
    )


def catalog_role_update(
    *,
    catalog_role: CatalogRole,
    updated_by: User | None,
    description: str,
    policy_keys: Sequence[Any],
    max_session_duration: int,
    keep_role_when_empty: bool,
    high_privilege_confirmed: bool = False,
    default_trust_scope: str | None = None,
) -> CatalogRole:
    """Change what a catalogue role grants: its description, policies, maximum session and
    what happens to the RAM role when unused. Validated exactly as when it was added
    (including the high-privilege opt-in); the name stays, as it names the RAM role. Its
    Custom policies must also exist in every other account it is offered or granted in, and
    are judged for the opt-in by those accounts' own documents of the name.

    Delegations already granted follow the new settings: the cloud role's desired state is
    computed from the catalogue, so a reconcile is enqueued for it (in this transaction),
    and policies taken off the role are remembered on it for the worker to detach."""
    description = (description or "").strip()
    keys = catalog_role_validate_update(
        catalog_role=catalog_role,
        description=description,
        policy_keys=policy_keys,
        max_session_duration=max_session_duration,
    )
    high_privilege = _validate_policies_in_account(
        catalog_role.cloud_account,
        keys,
        high_privilege_confirmed=high_privilege_confirmed,
        elsewhere=catalog_role_reach(catalog_role=catalog_role),
    )
    with transaction.atomic():
        role = catalog_role_lock(catalog_role_id=catalog_role.pk)
        before = _role_public(role)
        old_keys = {(str(p.get("type")), str(p.get("name"))) for p in role.policies or []}
        role.description = description
        role.policies = [{"type": kind, "name": name} for kind, name in keys]
        role.max_session_duration = max_session_duration
        role.keep_role_when_empty = bool(keep_role_when_empty)
        role.allows_high_privilege = bool(high_privilege)
        if default_trust_scope is not None:
            role.default_trust_scope = _valid_trust_scope(default_trust_scope)
        after = _role_public(role)
        if after == before:
            return role.unchanged()
        role.save(update_fields=[*CATALOG_ROLE_EDITABLE_FIELDS, "updated_at"])
        reconciling = _reconcile_after_edit(role, removed=old_keys - set(keys))
        audit_record(
            action=AuditAction.CATALOG_ROLE_UPDATED,
            actor=updated_by,
            organisation=role.organisation,
            target=role,
            before=before,
            after=after,
            metadata={
                "high_privilege_policies": high_privilege,
                "reconciling_roles": reconciling,
            },
        )
    role.changed = True
    return role


def _reconcile_after_edit(role: CatalogRole, *, removed: set[PolicyKey]) -> list[str]:
    """Enqueue a reconcile for the cloud role behind `role` when the portal has (or may have)
    put it in the cloud; returns the names of the roles enqueued."""
    # The shared role is found by name; the roles of one partner each name their catalogue role;
    # the roles in the owner's other accounts (fleet grants) through their delegations.
    managed_roles = ManagedRole.objects.select_for_update().filter(
        Q(cloud_account=role.cloud_account, role_name__iexact=role.role_name)
        | Q(catalog_role=role)
        | Q(pk__in=Delegation.objects.filter(catalog_role=role).values("managed_role_id"))
    )
    enqueued = []
    for managed_role in managed_roles:
        if removed:
            known = {tuple(p) for p in managed_role.known_policies or ()} | removed
            managed_role.known_policies = sorted([kind, name] for kind, name in known)
            managed_role.save(update_fields=["known_policies"])
        in_cloud = (
            managed_role.created_by_portal
            or managed_role.delegations.exclude(status__in=NEVER_APPLIED_STATUSES).exists()
        )
        if in_cloud:
            outbox_enqueue_reconcile(managed_role=managed_role)
            enqueued.append(managed_role.role_name)
    return enqueued


@dataclass(frozen=True)
class AccountsChange:
    """Where a role is offered besides its home account, before and after a change (the
    audit event's and a four-eyes proposal's diff), and the accounts it will list."""

    before: dict[str, Any]
    after: dict[str, Any]
    accounts: list[CloudAccount]


def catalog_role_validate_set_accounts(
    *, catalog_role: CatalogRole, all_accounts: bool, accounts: Iterable[CloudAccount] = ()
) -> AccountsChange:
    """The checks `catalog_role_set_accounts` makes before it saves (a proposal makes them
    too), and the change they allow: the accounts are the owner's own and connected, no other
    role of the name may be granted there, and each account the role is offered in anew has
    its Custom policies (read through the adapter)."""
    chosen = {account.pk: account for account in accounts}
    foreign = [
        account
        for account in chosen.values()
        if account.organisation_id != catalog_role.organisation_id or not account.is_active
    ]
    if foreign:
        raise ValidationError({"accounts": _("Choose among your own connected cloud accounts.")})
    chosen.pop(catalog_role.cloud_account_id, None)
    taken = _roles_granted_in(
        owner=catalog_role.organisation,
        role_name=catalog_role.role_name,
        accounts=None if all_accounts else list(chosen.values()),
    ).exclude(pk=catalog_role.pk)
    if taken.exists():
        raise ValidationError(
            {
                "accounts": _(
                    "Another catalogue role named %(role)s may be granted in one of these "
                    "accounts: there both would be the one RAM role %(role)s, with the policies "
                    "of either."
                )
                % {"role": catalog_role.role_name}
            }
        )
    # Where it is offered anew must have its Custom policies (not checked again: accounts it
    # stays offered in, where a grant is refused if one went missing since).
    offered = {account.pk for account in catalog_role_accounts(catalog_role=catalog_role)}
    if all_accounts:
        wanted = list(
            CloudAccount.objects.filter(
                organisation_id=catalog_role.organisation_id, is_active=True
            ).order_by(*HOME_FIRST)
        )
    else:
        wanted = list(chosen.values())
    validate_custom_policies_in(
        [account for account in wanted if account.pk not in offered],
        [(str(p.get("type")), str(p.get("name"))) for p in catalog_role.policies or []],
        field="accounts",
    )
    before = {
        "offered_in_all_accounts": catalog_role.offered_in_all_accounts,
        "extra_accounts": sorted(catalog_role.extra_accounts.values_list("account_uid", flat=True)),
    }
    after = {
        "offered_in_all_accounts": bool(all_accounts),
        "extra_accounts": sorted(account.account_uid for account in chosen.values()),
    }
    return AccountsChange(before=before, after=after, accounts=list(chosen.values()))


def catalog_role_set_accounts(
    *,
    catalog_role: CatalogRole,
    changed_by: User | None,
    all_accounts: bool,
    accounts: Iterable[CloudAccount] = (),
) -> CatalogRole:
    """Say where the role may be granted besides its home account: every connected account
    of the owner (`all_accounts`), or the ones listed. Access already granted elsewhere is
    not touched (revoke it to end it).

    The checks read the accounts' policy lists first, before the role's row is locked (no
    cloud call holds it), and run again under the lock on the fresh row, from those lists."""
    accounts = list(accounts)
    catalog_role_validate_set_accounts(
        catalog_role=catalog_role, all_accounts=all_accounts, accounts=accounts
    )
    with transaction.atomic():
        return _set_accounts(
            catalog_role=catalog_role,
            changed_by=changed_by,
            all_accounts=all_accounts,
            accounts=accounts,
        )


def _set_accounts(
    *,
    catalog_role: CatalogRole,
    changed_by: User | None,
    all_accounts: bool,
    accounts: list[CloudAccount],
) -> CatalogRole:
    role = catalog_role_lock(catalog_role_id=catalog_role.pk)
    change = catalog_role_validate_set_accounts(
        catalog_role=role, all_accounts=all_accounts, accounts=accounts
    )
    before, after = change.before, change.after
    if before == after:
        return role.unchanged()
    role.offered_in_all_accounts = bool(all_accounts)
    role.save(update_fields=["offered_in_all_accounts", "updated_at"])
    role.extra_accounts.set(change.accounts)
    audit_record(
        action=AuditAction.CATALOG_ROLE_ACCOUNTS_CHANGED,
        actor=changed_by,
        organisation=role.organisation,
        target=role,
        before=before,
        after=after,
    )
    role.changed = True
    return role


def catalog_role_validate_set_active(*, catalog_role: CatalogRole, active: bool) -> None:
    """The check offering a role again makes before it saves (a four-eyes proposal makes it
    too): its account must be connected."""
    if active and not catalog_role.cloud_account.is_active:
        raise ValidationError(gettext("Connect the role's cloud account again first."))


def _catalog_role_set_active(
    *, catalog_role: CatalogRole, actor: User | None, active: bool
) -> CatalogRole:
    with transaction.atomic():
        role = catalog_role_lock(catalog_role_id=catalog_role.pk)
        if role.is_active == active:
            return role.unchanged()
        catalog_role_validate_set_active(catalog_role=role, active=active)
        before = _role_public(role)
        role.is_active = active
        role.save(update_fields=["is_active", "updated_at"])
        audit_record(
            action=AuditAction.CATALOG_ROLE_REACTIVATED
            if active
            else AuditAction.CATALOG_ROLE_DEACTIVATED,
            actor=actor,
            organisation=role.organisation,
            target=role,
            before=before,
            after=_role_public(role),
        )
    role.changed = True
    return role


def catalog_role_deactivate(
    *, catalog_role: CatalogRole, deactivated_by: User | None
) -> CatalogRole:
    """Stop offering the role. Existing delegations are not touched (revoke them if needed)."""
    return _catalog_role_set_active(catalog_role=catalog_role, actor=deactivated_by, active=False)


def catalog_role_reactivate(
    *, catalog_role: CatalogRole, reactivated_by: User | None
) -> CatalogRole:
    return _catalog_role_set_active(catalog_role=catalog_role, actor=reactivated_by, active=True)
