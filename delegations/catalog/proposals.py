"""Four eyes on the catalogue and the allow-list: with the owner's four-eyes
setting on, adding a catalogue role, editing one (policies, maximum session, high-privilege
opt-in, default trust scope, unused-role setting), deactivating or reactivating one, changing
the cloud accounts it is offered in, and adding or removing a partner account are proposals,
with a diff, that a second owner admin approves (`approvals.four_eyes.rule_proposal_approve`,
which applies them through `catalog.services` as their author, validating them again then).

Each `*_or_propose` function makes the change at once when four eyes is off (returning what
the service returns) and otherwise validates it and returns the pending `RuleProposal`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext

from accounts.models import Organisation, User
from accounts.permissions import require_admin_member
from delegations.catalog import allow_list, services
from delegations.models import CatalogRole, CloudAccount, PartnerAllowance, RuleProposal, TrustScope
from delegations.proposals import four_eyes_on, rule_proposal_create

Kind = RuleProposal.Kind


def _require_admin(user: User, owner: Organisation) -> None:
    require_admin_member(
        user,
        owner,
        refusal=gettext("Only an admin of the owner organisation changes the catalogue."),
    )


def _role_view(
    *,
    role_name: str,
    description: str,
    policy_keys: Sequence[tuple[str, str]],
    max_session_duration: int,
    keep_role_when_empty: bool,
    allows_high_privilege: bool,
    default_trust_scope: str,
) -> dict[str, Any]:
    return {
        "role": role_name,
        "description": description,
        "policies": sorted(f"{kind}:{name}" for kind, name in policy_keys),
        "max_session_duration": max_session_duration,
        "keep_role_when_empty": keep_role_when_empty,
        "allows_high_privilege": allows_high_privilege,
        "default_trust_scope": default_trust_scope,
    }


def catalog_role_update_or_propose(
    *,
    catalog_role: CatalogRole,
    user: User,
    description: str,
    policy_keys: Sequence[Any],
    max_session_duration: int,
    keep_role_when_empty: bool,
    high_privilege_confirmed: bool = False,
    default_trust_scope: str | None = None,
) -> CatalogRole | RuleProposal:
    arguments: dict[str, Any] = {
        "description": description,
        "policy_keys": policy_keys,
        "max_session_duration": max_session_duration,
        "keep_role_when_empty": keep_role_when_empty,
        "high_privilege_confirmed": high_privilege_confirmed,
        "default_trust_scope": default_trust_scope,
    }
    owner = catalog_role.organisation
    if not four_eyes_on(owner=owner):
        return services.catalog_role_update(catalog_role=catalog_role, updated_by=user, **arguments)
    _require_admin(user, owner)
    keys = services.catalog_role_validate_update(
        catalog_role=catalog_role,
        description=description,
        policy_keys=policy_keys,
        max_session_duration=max_session_duration,
    )
    scope = default_trust_scope or catalog_role.default_trust_scope
    if scope not in TrustScope.values:
        raise ValidationError({"default_trust_scope": gettext("Choose one of the trust scopes.")})
    before = _role_view(
        role_name=catalog_role.role_name,
        description=catalog_role.description,
        policy_keys=[(str(p.get("type")), str(p.get("name"))) for p in catalog_role.policies or []],
        max_session_duration=catalog_role.max_session_duration,
        keep_role_when_empty=catalog_role.keep_role_when_empty,
        allows_high_privilege=catalog_role.allows_high_privilege,
        default_trust_scope=catalog_role.default_trust_scope,
    )
    after = _role_view(
        role_name=catalog_role.role_name,
        description=(description or "").strip(),
        policy_keys=keys,
        max_session_duration=max_session_duration,
        keep_role_when_empty=bool(keep_role_when_empty),
        allows_high_privilege=bool(high_privilege_confirmed),
        default_trust_scope=scope,
    )
    if before == after:
        return catalog_role.unchanged()
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=Kind.CATALOG_ROLE_UPDATE,
        target_id=catalog_role.pk,
        payload={
            **arguments,
            "policy_keys": [list(key) for key in keys],
            "default_trust_scope": scope,
        },
        before=before,
        after=after,
    )


def catalog_role_create_or_propose(
    *,
    owner: Organisation,
    user: User,
    role_name: str,
    description: str,
    policy_keys: Sequence[Any],
    max_session_duration: int,
    keep_role_when_empty: bool = False,
    high_privilege_confirmed: bool = False,
    default_trust_scope: str = TrustScope.PARTNER_ACCOUNT,
    one_role_per_partner: bool = False,
) -> CatalogRole | RuleProposal:
    """Add a role now, or, with four eyes on, check it as adding it would (the account's
    policies and roles are read) and propose it."""
    arguments: dict[str, Any] = {
        "role_name": role_name,
        "description": (description or "").strip(),
        "policy_keys": policy_keys,
        "max_session_duration": max_session_duration,
        "keep_role_when_empty": bool(keep_role_when_empty),
        "high_privilege_confirmed": bool(high_privilege_confirmed),
        "default_trust_scope": default_trust_scope,
        "one_role_per_partner": bool(one_role_per_partner),
    }
    if not four_eyes_on(owner=owner):
        return services.catalog_role_create(owner=owner, created_by=user, **arguments)
    _require_admin(user, owner)
    account, keys, high_privilege = services.catalog_role_validate_create(
        owner=owner,
        role_name=role_name,
        description=arguments["description"],
        policy_keys=policy_keys,
        max_session_duration=max_session_duration,
        high_privilege_confirmed=arguments["high_privilege_confirmed"],
        default_trust_scope=default_trust_scope,
    )
    after = _role_view(
        role_name=role_name,
        description=arguments["description"],
        policy_keys=keys,
        max_session_duration=max_session_duration,
        keep_role_when_empty=arguments["keep_role_when_empty"],
        allows_high_privilege=bool(high_privilege),
        default_trust_scope=default_trust_scope,
    ) | {
        "account_uid": account.account_uid,
        "one_role_per_partner": arguments["one_role_per_partner"],
    }
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=Kind.CATALOG_ROLE_CREATE,
        target_id="",
        payload={**arguments, "policy_keys": [list(key) for key in keys]},
        before=None,
        after=after,
    )


def _activity_proposal(
    catalog_role: CatalogRole, user: User, *, kind: str, active: bool
) -> CatalogRole | RuleProposal:
    """Propose offering `catalog_role` (again) or no longer; a role already so changes
    nothing."""
    owner = catalog_role.organisation
    _require_admin(user, owner)
    if catalog_role.is_active == active:
        return catalog_role.unchanged()
    services.catalog_role_validate_set_active(catalog_role=catalog_role, active=active)
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=kind,
        target_id=catalog_role.pk,
        payload={},
        before={"role": catalog_role.role_name, "active": not active},
        after={"role": catalog_role.role_name, "active": active},
    )


def catalog_role_deactivate_or_propose(
    *, catalog_role: CatalogRole, user: User
) -> CatalogRole | RuleProposal:
    if not four_eyes_on(owner=catalog_role.organisation):
        return services.catalog_role_deactivate(catalog_role=catalog_role, deactivated_by=user)
    return _activity_proposal(catalog_role, user, kind=Kind.CATALOG_ROLE_DEACTIVATE, active=False)


def catalog_role_reactivate_or_propose(
    *, catalog_role: CatalogRole, user: User
) -> CatalogRole | RuleProposal:
    if not four_eyes_on(owner=catalog_role.organisation):
        return services.catalog_role_reactivate(catalog_role=catalog_role, reactivated_by=user)
    return _activity_proposal(catalog_role, user, kind=Kind.CATALOG_ROLE_REACTIVATE, active=True)


def catalog_role_set_accounts_or_propose(
    *,
    catalog_role: CatalogRole,
    user: User,
    all_accounts: bool,
    accounts: Iterable[CloudAccount] = (),
) -> CatalogRole | RuleProposal:
    """Change where a role is offered now, or, with four eyes on, propose it: offering a role
    in more accounts hands out more than editing it does."""
    owner = catalog_role.organisation
    if not four_eyes_on(owner=owner):
        return services.catalog_role_set_accounts(
            catalog_role=catalog_role, changed_by=user, all_accounts=all_accounts, accounts=accounts
        )
    _require_admin(user, owner)
    change = services.catalog_role_validate_set_accounts(
        catalog_role=catalog_role, all_accounts=all_accounts, accounts=accounts
    )
    if change.before == change.after:
        return catalog_role.unchanged()
    role = {"role": catalog_role.role_name}
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=Kind.CATALOG_ROLE_SET_ACCOUNTS,
        target_id=catalog_role.pk,
        payload={
            "all_accounts": bool(all_accounts),
            "accounts": [str(account.pk) for account in change.accounts],
        },
        before=role | change.before,
        after=role | change.after,
    )


def partner_allowance_add_or_propose(
    *, owner: Organisation, user: User, partner_account_uid: str, label: str = ""
) -> PartnerAllowance | RuleProposal:
    if not four_eyes_on(owner=owner):
        return allow_list.partner_allowance_add(
            owner=owner, added_by=user, partner_account_uid=partner_account_uid, label=label
        )
    _require_admin(user, owner)
    try:
        label = allow_list.partner_allowance_validate(
            owner=owner, partner_account_uid=partner_account_uid, label=label
        )
    except allow_list.AllowanceRefused as refusal:
        allow_list.partner_allowance_refusal_record(
            refusal, owner=owner, by=user, partner_account_uid=partner_account_uid, label=label
        )
        raise
    wanted = {"partner_account_uid": partner_account_uid, "label": label}
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=Kind.ALLOWANCE_ADD,
        target_id="",
        payload=wanted,
        before=None,
        after=wanted,
    )


def partner_allowance_remove_or_propose(
    *, allowance: PartnerAllowance, user: User
) -> RuleProposal | None:
    owner = allowance.organisation
    if not four_eyes_on(owner=owner):
        allow_list.partner_allowance_remove(allowance=allowance, removed_by=user)
        return None
    _require_admin(user, owner)
    return rule_proposal_create(
        owner=owner,
        user=user,
        kind=Kind.ALLOWANCE_REMOVE,
        target_id=allowance.pk,
        payload={},
        before={"partner_account_uid": allowance.partner_account_uid, "label": allowance.label},
        after=None,
    )
