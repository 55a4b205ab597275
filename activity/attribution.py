"""Who made a call: an ActionTrail event joined to the portal's delegations and people.

A partner session's event names the role (`userName` "<role>:<session>"), the STS key and the
partner account (`requestParameters.stsTokenPlayerUid`). The role and partner account give the
delegation; the STS key finds the portal's own issuance record (`CredentialIssuance`), hence the
person; a console switch carries the partner's RAM user name as its session name, which a
staff member's linked RAM user (`StaffRamUserLink`) explains. A session neither explains is
"unknown" and raises an alert.

`Attributor` reads each role, issuance and link once per ingestion run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from accounts.models import User
from activity.models import ActivityEvent
from delegations.models import (
    CloudAccount,
    CredentialIssuance,
    Delegation,
    ManagedRole,
    StaffRamUserLink,
)

READ_ONLY_POLICY_SUFFIX = "ReadOnlyAccess"


@dataclass(frozen=True)
class Attribution:
    delegation: Delegation | None
    person: User | None
    person_label: str
    via: str


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

    def _role(self, role_name: str) -> ManagedRole | None:
        key = role_name.lower()
        if key not in self._roles:
            self._roles[key] = ManagedRole.objects.filter(
                cloud_account=self.cloud_account, role_name__iexact=role_name
            ).first()
        return self._roles[key]

    def _delegation(
        self, role: ManagedRole, partner_uid: str, moment: datetime
    ) -> Delegation | None:
        key = (str(role.pk), partner_uid)
        if key not in self._delegations:
            self._delegations[key] = list(
                Delegation.objects.filter(managed_role=role, partner_account_uid=partner_uid)
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

    def attribute(
        self,
        *,
        role_name: str,
        session_name: str,
        access_key_id: str,
        partner_uid: str,
        moment: datetime,
    ) -> Attribution:
        if not role_name:
            return Attribution(None, None, "", ActivityEvent.Via.OTHER)
        role = self._role(role_name)
        if role is None:
            return Attribution(None, None, session_name, ActivityEvent.Via.OTHER)
        issuance = self._issuance(access_key_id) if access_key_id else None
        if issuance is not None and issuance.delegation.managed_role_id == role.pk:
            return Attribution(
                issuance.delegation, issuance.user, issuance.user.email, ActivityEvent.Via.ISSUED
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
