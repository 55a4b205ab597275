"""Who made a call: an ActionTrail event joined to the portal's delegations and people.

A partner session's event names the role (`userName` "<role>:<session>"), the STS key and the
partner account (`requestParameters.stsTokenPlayerUid`). The role and partner account give the
delegation; the STS key finds the portal's own issuance record (`CredentialIssuance`), hence the
person, unless the event names a partner account other than the issuance's; so does the
session's SourceIdentity (the portal sets it to the issuance's session name, and it survives
role chaining) when the call comes from the issuance's partner account: anyone may set a
SourceIdentity, and another partner trusted by the same role could name a session of B's (a
documented format) to pass its calls off as B's person's; a console switch carries the
partner's RAM user name as its session name, which a staff member's linked RAM user
(`StaffRamUserLink`) explains. A session none of these explains is "unknown" and raises an
alert.

`Attributor` reads each role, issuance and link once per ingestion run, and `prefetch` reads
a page's unknown keys, session names and RAM users in one query each (not one per event). An
identity the portal issued is attributed once per run: its answer does not depend on the
moment of the call, and a run meets the same few sessions a million times.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Q
from django.db.models.functions import Lower

from accounts.models import User
from activity.models import ActivityEvent
from delegations.models import (
    FINAL_STATUSES,
    NEVER_APPLIED_STATUSES,
    CloudAccount,
    CredentialIssuance,
    Delegation,
    ManagedRole,
    StaffRamUserLink,
)

READ_ONLY_POLICY_SUFFIX = "ReadOnlyAccess"
# Who an event says made the call: (role name, session name, access key id, partner account,
# source identity).
Identity = tuple[str, str, str, str, str]


@dataclass(frozen=True)
class Attribution:
    delegation: Delegation | None
    person: User | None
    person_label: str
    via: str


def _key_explains(issuance: CredentialIssuance, role: ManagedRole, partner_uid: str) -> bool:
    """Whether the portal's issuance of the event's STS key is the event's session: issued on
    this role, and to the partner account the event names. Some events name none; the key,
    which STS handed only to the portal for that issuance, then stands alone. An event naming
    another account contradicts the issuance and is that account's call."""
    delegation = issuance.delegation
    return delegation.managed_role_id == role.pk and partner_uid in (
        "",
        delegation.partner_account_uid,
    )


def read_only_intended(delegation: Delegation) -> bool:
    """A catalogue role whose every policy is a read-only one is meant for looking, not changing."""
    policies = delegation.catalog_role.policies or []
    names = [str(p.get("name", "")) for p in policies if isinstance(p, dict)]
    return bool(names) and all(name.endswith(READ_ONLY_POLICY_SUFFIX) for name in names)


class Attributor:
    def __init__(self, cloud_account: CloudAccount) -> None:
        self.cloud_account = cloud_account
        self._roles: dict[str, ManagedRole | None] = {}
        self._delegations: dict[tuple[str, str], list[Delegation]] = {}
        self._issuances: dict[str, CredentialIssuance | None] = {}
        self._links: dict[tuple[str, str], StaffRamUserLink | None] = {}
        # (role id, partner account, source identity) → the issuance it names.
        self._named: dict[tuple[str, str, str], CredentialIssuance | None] = {}
        self._issued: dict[Identity, Attribution] = {}

        self._all_roles_read = False

    def _role(self, role_name: str) -> ManagedRole | None:
        if not self._all_roles_read:
            # An account holds a few managed roles: read them all once.
            for role in ManagedRole.objects.filter(cloud_account=self.cloud_account).order_by(
                "-pk"
            ):
                self._roles[role.role_name.lower()] = role
            self._all_roles_read = True
        return self._roles.get(role_name.lower())

    def prefetch(self, identities: Iterable[Identity]) -> None:
        """Read, in one query each, what the coming events need and the run has not read
        yet."""
        keys: set[str] = set()
        names: set[tuple[str, str]] = set()
        links: set[tuple[str, str]] = set()
        for identity in set(identities) - self._issued.keys():
            role_name, session_name, access_key_id, partner_uid, source_identity = identity
            if not role_name or self._role(role_name) is None:
                continue
            if access_key_id and access_key_id not in self._issuances:
                keys.add(access_key_id)
            if source_identity and partner_uid:
                names.add((partner_uid, source_identity))
            if partner_uid and session_name:
                wanted_link = (partner_uid, session_name.lower())
                if wanted_link not in self._links:
                    links.add(wanted_link)
        if keys:
            found = {
                issuance.access_key_id: issuance
                for issuance in CredentialIssuance.objects.filter(
                    access_key_id__in=keys
                ).select_related("user", "delegation")
            }
            for key in keys:
                self._issuances[key] = found.get(key)
        role_ids = [role.pk for role in self._roles.values() if role is not None]
        wanted = {
            (str(role_id), partner_uid, name)
            for role_id in role_ids
            for partner_uid, name in names
            if (str(role_id), partner_uid, name) not in self._named
        }
        if wanted:
            issued: dict[tuple[str, str, str], CredentialIssuance] = {}
            for issuance in (
                CredentialIssuance.objects.filter(
                    delegation__managed_role_id__in=role_ids,
                    delegation__partner_account_uid__in={uid for _, uid, _ in wanted},
                    session_name__in={name for _, _, name in wanted},
                )
                .select_related("user", "delegation")
                .order_by("-issued_at")
            ):
                delegation = issuance.delegation
                issued_key = (
                    str(delegation.managed_role_id),
                    delegation.partner_account_uid,
                    issuance.session_name,
                )
                issued.setdefault(issued_key, issuance)
            for named_key in wanted:
                self._named[named_key] = issued.get(named_key)
        if links:
            seen: dict[tuple[str, str], StaffRamUserLink] = {}
            for link in (
                StaffRamUserLink.objects.annotate(lowered=Lower("ram_user_name"))
                .filter(
                    cloud_account__account_uid__in={uid for uid, _ in links},
                    lowered__in={name for _, name in links},
                )
                .select_related("user", "cloud_account")
                .order_by("pk")
            ):
                seen.setdefault((link.cloud_account.account_uid, link.ram_user_name.lower()), link)
            for link_key in links:
                self._links[link_key] = seen.get(link_key)

    def _delegation(
        self, role: ManagedRole, partner_uid: str, moment: datetime
    ) -> Delegation | None:
        key = (str(role.pk), partner_uid)
        if key not in self._delegations:
            # Only grants that were ever in force: a request rejected, withdrawn, still waiting
            # or left to expire (and a scheduled grant ended before its start) never let anyone
            # in, so a call after the real grant ended is that grant's, flagged as after its end.
            self._delegations[key] = list(
                Delegation.objects.filter(managed_role=role, partner_account_uid=partner_uid)
                .exclude(status__in=NEVER_APPLIED_STATUSES)
                .exclude(Q(status__in=FINAL_STATUSES, activated_at__isnull=True))
                .select_related("catalog_role", "owner")
                .order_by("-starts_at")
            )
        candidates = self._delegations[key]
        # The grant in force at the moment of the call, else the latest one that began before
        # it (a call after the end is a residual-window use of that grant).
        for delegation in candidates:
            if delegation.starts_at <= moment and (
                delegation.ended_at is None or moment <= delegation.ended_at
            ):
                return delegation
        for delegation in candidates:
            if delegation.starts_at <= moment:
                return delegation
        return candidates[-1] if candidates else None

    def _issuance(self, access_key_id: str) -> CredentialIssuance | None:
        if access_key_id not in self._issuances:
            self._issuances[access_key_id] = (
                CredentialIssuance.objects.filter(access_key_id=access_key_id)
                .select_related("user", "delegation")
                .first()
            )
        return self._issuances[access_key_id]

    def _issued_as(
        self, role: ManagedRole, partner_uid: str, source_identity: str
    ) -> CredentialIssuance | None:
        """The portal's latest issuance on `role` to the partner account `partner_uid` whose
        session carried `source_identity` (the portal stamps it with the person's session name;
        it survives role chaining, where the STS key changes). Only the partner's own: another
        partner trusted by the role can set the same SourceIdentity on a session of its own."""
        key = (str(role.pk), partner_uid, source_identity)
        if key not in self._named:
            self._named[key] = (
                CredentialIssuance.objects.filter(
                    delegation__managed_role=role,
                    delegation__partner_account_uid=partner_uid,
                    session_name=source_identity,
                )
                .select_related("user", "delegation")
                .order_by("-issued_at")
                .first()
            )
        return self._named[key]

    def _link(self, partner_uid: str, ram_user_name: str) -> StaffRamUserLink | None:
        key = (partner_uid, ram_user_name.lower())
        if key not in self._links:
            self._links[key] = (
                StaffRamUserLink.objects.filter(
                    cloud_account__account_uid=partner_uid,
                    ram_user_name__iexact=ram_user_name,
                )
                .select_related("user")
                .first()
            )
        return self._links[key]

    def attribute(self, identity: Identity, moment: datetime) -> Attribution:
        found = self._issued.get(identity)
        if found is None:
            found = self._attribute(identity, moment)
            if found.via == ActivityEvent.Via.ISSUED:
                self._issued[identity] = found
        return found

    def _attribute(self, identity: Identity, moment: datetime) -> Attribution:
        role_name, session_name, access_key_id, partner_uid, source_identity = identity
        if not role_name:
            return Attribution(None, None, "", ActivityEvent.Via.OTHER)
        role = self._role(role_name)
        if role is None:
            return Attribution(None, None, session_name, ActivityEvent.Via.OTHER)
        issuance = self._issuance(access_key_id) if access_key_id else None
        if issuance is not None and _key_explains(issuance, role, partner_uid):
            return Attribution(
                issuance.delegation, issuance.user, issuance.user.email, ActivityEvent.Via.ISSUED
            )
        named = (
            self._issued_as(role, partner_uid, source_identity)
            if source_identity and partner_uid
            else None
        )
        if named is not None:
            return Attribution(
                named.delegation, named.user, named.user.email, ActivityEvent.Via.ISSUED
            )
        delegation = self._delegation(role, partner_uid, moment) if partner_uid else None
        link = self._link(partner_uid, session_name) if partner_uid and session_name else None
        if link is not None:
            return Attribution(
                delegation,
                link.user,
                f"{link.user.email} (RAM user {link.ram_user_name})",
                ActivityEvent.Via.CONSOLE,
            )
        return Attribution(delegation, None, session_name, ActivityEvent.Via.UNKNOWN)
