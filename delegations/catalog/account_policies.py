"""An owner account's permission policies as the catalogue and the grant checks read them,
through the cloud adapter: the account's list (System and Custom) and a policy's document,
cached briefly; which policies are high privilege; and which of a catalogue role's Custom
policies an account lacks (a Custom policy is one account's own: a role granted in another of
the owner's accounts attaches that account's policy of the name). Reads only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.utils.translation import gettext, ngettext

from cloud import policies
from cloud.errors import CloudError
from delegations.catalog.selectors import catalog_role_reach
from delegations.connection.services import cloud_account_client, cloud_error_reference
from delegations.models import CatalogRole, CloudAccount

# How long the account's policy list and policy documents are reused between page loads: long
# enough that a form and its submission see the same list, short enough that a policy created
# in the console shows up soon.
POLICY_LIST_CACHE_SECONDS = 120
POLICY_DOCUMENT_CACHE_SECONDS = 300

# Granting these hands a partner the keys to the account whatever their documents say; every
# other policy is judged by its document (`cloud.policies.high_privilege_reasons`).
HIGH_PRIVILEGE_POLICY_NAMES = {
    "AdministratorAccess": policies.REASON_EVERY_ACTION,
    "AliyunRAMFullAccess": policies.REASON_RAM_WRITE,
}

PolicyKey = tuple[str, str]  # (policy type, policy name)


@dataclass(frozen=True)
class AvailablePolicy:
    policy_type: str
    policy_name: str
    description: str

    @property
    def key(self) -> PolicyKey:
        return (self.policy_type, self.policy_name)

    @property
    def value(self) -> str:
        """How a form names it: "System:AliyunECSFullAccess"."""
        return f"{self.policy_type}:{self.policy_name}"

    @property
    def high_privilege_by_name(self) -> bool:
        return self.policy_name in HIGH_PRIVILEGE_POLICY_NAMES


# --- reading the account's policies -----------------------------------------------------------


def _cache_key(cloud_account: CloudAccount, *parts: str) -> str:
    # The fingerprint is part of the key: a replaced AccessKey (maybe with other rights) never
    # reuses what the old one read.
    return ":".join(
        ["delegations", "catalog", str(cloud_account.pk), cloud_account.secret_fingerprint, *parts]
    )


def cloud_account_policies(
    *, cloud_account: CloudAccount, refresh: bool = False
) -> list[AvailablePolicy]:
    """The account's System and Custom policies, live through the adapter (cached briefly).
    Raises CloudError when the cloud cannot answer."""
    key = _cache_key(cloud_account, "policies")
    cached = None if refresh else cache.get(key)
    if cached is None:
        found = cloud_account_client(cloud_account=cloud_account).list_policies()
        cached = [
            (policy.policy_type, policy.policy_name, policy.description or "") for policy in found
        ]
        cache.set(key, cached, POLICY_LIST_CACHE_SECONDS)
    available = [AvailablePolicy(kind, name, text) for kind, name, text in cached]
    return sorted(available, key=lambda p: (p.policy_type != "System", p.policy_name.lower()))


def _policy_read(
    cloud_account: CloudAccount, key: PolicyKey, *, refresh: bool = False
) -> tuple[bool, str | None]:
    """Whether the account has the policy, and its default version's document (None when it
    has none or the policy is missing), read through the adapter (cached briefly)."""
    cache_key = _cache_key(cloud_account, "policy", *key)
    cached = None if refresh else cache.get(cache_key)
    if cached is None:
        policy = cloud_account_client(cloud_account=cloud_account).get_policy(
            policy_type=key[0], policy_name=key[1]
        )
        cached = (policy is not None, (policy.document if policy is not None else None) or "")
        cache.set(cache_key, cached, POLICY_DOCUMENT_CACHE_SECONDS)
    exists, document = cached
    return bool(exists), document or None


def policy_high_privilege_reasons(
    cloud_account: CloudAccount, key: PolicyKey, *, refresh: bool = False
) -> tuple[str, ...]:
    """Why one policy of the account is high privilege (empty: it is not, or the account has
    no such policy): by name for the System policies that are by definition, else by its
    document. Raises CloudError."""
    by_name_alone = key[1] in HIGH_PRIVILEGE_POLICY_NAMES  # then no document is read
    document = None if by_name_alone else _policy_read(cloud_account, key, refresh=refresh)[1]
    return _judged(key[1], document)


def _judged(name: str, document: str | None) -> tuple[str, ...]:
    """Why a policy is high privilege: by name for the System policies that are by
    definition, else by its document (empty: it is not)."""
    by_name = HIGH_PRIVILEGE_POLICY_NAMES.get(name)
    return (by_name,) if by_name is not None else policies.high_privilege_reasons(document)


def catalog_policies_high_privilege_reasons(
    *, cloud_account: CloudAccount, policy_keys: Iterable[PolicyKey]
) -> dict[str, tuple[str, ...]]:
    """Policy name → why it is high privilege, for the high-privilege ones among `policy_keys`
    (in their order; documents read through the adapter). Raises CloudError."""
    flagged = {}
    for key in policy_keys:
        reasons = policy_high_privilege_reasons(cloud_account, key)
        if reasons:
            flagged[key[1]] = reasons
    return flagged


def catalog_policies_high_privilege(
    *, cloud_account: CloudAccount, policy_keys: Iterable[PolicyKey]
) -> list[str]:
    """The names among `policy_keys` that are high privilege (see
    `catalog_policies_high_privilege_reasons`). Raises CloudError."""
    return list(
        catalog_policies_high_privilege_reasons(
            cloud_account=cloud_account, policy_keys=policy_keys
        )
    )


@dataclass(frozen=True)
class GrantPolicies:
    """What granting a catalogue role in one account would attach there, judged now."""

    # The role's Custom policies the account has no policy of the name for: the grant's
    # AttachPolicyToRole would fail there (EntityNotExist.Policy).
    missing: list[str]
    # The role's policies that grant RAM administration or full access there.
    high_privilege: list[str]


def catalog_role_policies_now(
    *, catalog_role: CatalogRole, cloud_account: CloudAccount | None = None
) -> GrantPolicies:
    """The role's policies as a decision that grants it (approve, offer, retry) in
    `cloud_account` (default: its home) finds them now: the Custom ones the account lacks,
    and the high-privilege ones.

    By name for every policy; Custom policies also by their current default version, read
    fresh and not from the cache, because anyone with RAM rights in the account can publish
    a new version, or delete the policy, at any time. A Custom policy is the account's own:
    a grant in another of the owner's accounts attaches that account's policy of the name,
    so that one must exist, and is judged. System policies are Alibaba Cloud's own, in every
    account: their verdict from when the role was created or edited stands, so granting a
    role of System policies makes no cloud call. Raises CloudError."""
    account = cloud_account or catalog_role.cloud_account
    missing, flagged = [], []
    for item in catalog_role.policies or []:
        kind, name = str(item.get("type")), str(item.get("name"))
        if kind == CatalogRole.PolicyType.CUSTOM:
            exists, document = _policy_read(account, (kind, name), refresh=True)
            if not exists:
                missing.append(name)
                continue
            if _judged(name, document):
                flagged.append(name)
        elif name in HIGH_PRIVILEGE_POLICY_NAMES:
            flagged.append(name)
    return GrantPolicies(missing=missing, high_privilege=flagged)


def custom_policies_missing_message(names: Sequence[str], *, account: CloudAccount) -> str:
    """Why a role with the Custom policies `names` cannot be granted in `account`: a Custom
    policy is one account's own, and that account has none of the name."""
    return ngettext(
        "Custom policy %(policies)s does not exist in the account %(account)s; create it "
        "there first.",
        "Custom policies %(policies)s do not exist in the account %(account)s; create them "
        "there first.",
        len(names),
    ) % {"policies": ", ".join(names), "account": account.label}


def _custom_keys(keys: Iterable[PolicyKey]) -> list[PolicyKey]:
    return [key for key in keys if key[0] == CatalogRole.PolicyType.CUSTOM]


def _custom_policies_missing_in(account: CloudAccount, keys: Sequence[PolicyKey]) -> list[str]:
    """The names among the Custom `keys` that `account` has no policy of, from its policy
    list (cached briefly; read again before answering that one is missing, so a policy the
    owner has just created there counts). Raises ValidationError when the list cannot be
    read."""
    missing: list[str] = []
    for refresh in (False, True):
        try:
            available = {
                p.key for p in cloud_account_policies(cloud_account=account, refresh=refresh)
            }
        except CloudError as error:
            what = gettext("list the policies of the account %(account)s") % {
                "account": account.label
            }
            raise cloud_failure(error, what) from None
        missing = [name for kind, name in keys if (kind, name) not in available]
        if not missing:
            break
    return missing


def validate_custom_policies_in(
    accounts: Iterable[CloudAccount], keys: Iterable[PolicyKey], *, field: str
) -> None:
    """Each Custom policy among `keys` exists in each of `accounts`, where the role would
    attach that account's policy of the name. Reads only; a role of System policies reads
    nothing. Raises ValidationError on `field`, naming each policy and account."""
    custom = _custom_keys(keys)
    if not custom:
        return
    problems = []
    for account in accounts:
        missing = _custom_policies_missing_in(account, custom)
        if missing:
            problems.append(custom_policies_missing_message(missing, account=account))
    if problems:
        raise ValidationError({field: " ".join(problems)})


def high_privilege_reasons_in(
    account: CloudAccount, keys: Sequence[PolicyKey], *, elsewhere: Iterable[CloudAccount] = ()
) -> dict[str, tuple[str, ...]]:
    """Why `keys` are high privilege in `account` (`catalog_policies_high_privilege_reasons`)
    and, for their Custom policies, in each account `elsewhere`, by that account's own
    document of the name (named "<policy> in the account <account>"). Raises CloudError."""
    flagged = catalog_policies_high_privilege_reasons(cloud_account=account, policy_keys=keys)
    custom = _custom_keys(keys)
    for other in elsewhere if custom else ():
        found = catalog_policies_high_privilege_reasons(cloud_account=other, policy_keys=custom)
        for name, reasons in found.items():
            flagged[f"{name} in the account {other.label}"] = reasons
    return flagged


def catalog_role_edit_high_privilege(
    *, catalog_role: CatalogRole, policy_keys: Sequence[PolicyKey]
) -> list[str]:
    """The high-privilege ones among `policy_keys`, were the role given them: judged in its
    home account and, for Custom policies, in each other account it is offered or granted
    in (`catalog_role_reach`), whose own policy of the name its RAM role there attaches.
    Raises CloudError."""
    return list(
        high_privilege_reasons_in(
            catalog_role.cloud_account,
            policy_keys,
            elsewhere=catalog_role_reach(catalog_role=catalog_role),
        )
    )


def catalog_roles_with_high_privilege_reasons(
    roles: Iterable[CatalogRole],
) -> list[CatalogRole]:
    """The roles, each with `high_privilege_reasons`: `[(policy name, reason), ...]` saying
    why a role that needed the opt-in is high privilege, for the catalogue page.

    Only roles that carry the opt-in are looked at; their Custom documents come from the
    short cache. When the cloud cannot answer, the reason says so instead of failing the page.
    """
    listed = list(roles)
    for role in listed:
        reasons: list[tuple[str, str]] = []
        if role.allows_high_privilege:
            for item in role.policies or []:
                key = (str(item.get("type")), str(item.get("name")))
                try:
                    found = policy_high_privilege_reasons(role.cloud_account, key)
                except CloudError:
                    found = ("its document could not be read from Alibaba Cloud just now",)
                reasons += [(key[1], reason) for reason in found]
        role.high_privilege_reasons = reasons
    return listed


def cloud_failure(error: CloudError, what: str) -> ValidationError:
    """A catalogue refusal saying the cloud could not `what` (retry later when transient) and
    that nothing was saved."""
    reference = cloud_error_reference(error)
    if error.transient:
        return ValidationError(
            gettext(
                "Alibaba Cloud could not be reached to %(what)s (%(message)s). Nothing "
                "was saved; try again in a moment."
            )
            % {"what": what, "message": error.message}
        )
    return ValidationError(
        gettext(
            "Alibaba Cloud refused to %(what)s: %(code)s: %(message)s%(reference)s. "
            "Nothing was saved."
        )
        % {
            "what": what,
            "code": error.code or error.category.value,
            "message": error.message,
            "reference": reference,
        }
    )
