"""A run by instance ids starts only on instances that are running: before anything is
written or started, every id is looked up in the chosen owner accounts x regions, and an id
that is not running in any of them (stopped, or not found) is a form error naming it.

The lookup reaches each owner account the way the run will: the partner's connected key
assumes the grant's owner role (with the grant's ExternalId, if any) and asks ECS
`DescribeInstances` there, through the cloud door (`cloud.oos.OosClient`, the official ECS
SDK). Tests hand `instances_check` a lookup of their own. Where each id was found running is
kept on the run's targets: an owner is shown only the ids in its own accounts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from django.utils.translation import gettext as _

from cloud.client import CloudClient
from cloud.errors import CloudError
from cloud.oos import OosClient
from cloud.values import MIN_STS_DURATION_SECONDS, IssuedCredentials
from delegations.connection.services import cloud_account_credentials
from delegations.models import CloudAccount, Delegation
from delegations.role_state import delegation_external_id

RUNNING = "Running"
SESSION_NAME = "portal-runbook-check"


class InstanceLookup(Protocol):
    def __call__(
        self, *, delegation: Delegation, region_id: str, instance_ids: Sequence[str]
    ) -> dict[str, str]:
        """Each id ECS knows in the grant's owner account and `region_id` → its status."""
        ...


def cloud_instance_lookup(partner_account: CloudAccount) -> InstanceLookup:
    """ECS as the run reaches it: the partner's key, through each grant's owner role."""
    sts = CloudClient(
        cloud_account_credentials(cloud_account=partner_account), region_id=partner_account.region
    )
    sessions: dict[object, IssuedCredentials] = {}

    def lookup(
        *, delegation: Delegation, region_id: str, instance_ids: Sequence[str]
    ) -> dict[str, str]:
        issued = sessions.get(delegation.pk)
        if issued is None:
            issued = sts.assume_role(
                role_arn=delegation.managed_role.role_arn,
                session_name=SESSION_NAME,
                duration_seconds=MIN_STS_DURATION_SECONDS,
                external_id=delegation_external_id(delegation),
            )
            sessions[delegation.pk] = issued
        ecs = OosClient(
            access_key_id=issued.access_key_id,
            access_key_secret=issued.access_key_secret,
            security_token=issued.security_token,
            region_id=region_id,
        )
        return ecs.instance_statuses(region_id=region_id, instance_ids=instance_ids)

    return lookup


@dataclass(frozen=True)
class InstanceCheck:
    """Why the ids cannot be run on, one message each (empty when every id is running in one
    of the accounts x regions), and where each id was found running: (owner account UID,
    region) → its ids, in the order given."""

    problems: list[str]
    running_in: dict[tuple[str, str], list[str]]


def instances_check(
    *,
    targets: Sequence[tuple[Delegation, str]],
    instance_ids: Sequence[str],
    lookup: InstanceLookup,
) -> InstanceCheck:
    """Look every id up in the accounts x regions. Stops asking once every id is found
    running (an instance id is unique in the cloud: it runs in one account and region)."""
    wanted = list(dict.fromkeys(instance_ids))
    seen: dict[str, str] = {}  # id → a status it has where it was found (Running wins)
    found_in: dict[str, tuple[str, str]] = {}  # id → where it was found running
    for delegation, region in targets:
        pending = [i for i in wanted if seen.get(i) != RUNNING]
        if not pending:
            break
        uid = delegation.managed_role.cloud_account.account_uid
        try:
            found = lookup(delegation=delegation, region_id=region, instance_ids=pending)
        except CloudError as error:
            problem = _(
                "The instances could not be checked in account %(uid)s, %(region)s: "
                "%(code)s%(reference)s. Nothing was started."
            ) % {
                "uid": uid,
                "region": region,
                "code": error.code or error.category.value,
                "reference": (
                    _(" (request id %(request_id)s)") % {"request_id": error.request_id}
                    if error.request_id
                    else ""
                ),
            }
            return InstanceCheck(problems=[problem], running_in={})
        for instance_id, status in found.items():
            if instance_id in pending and seen.get(instance_id) != RUNNING:
                seen[instance_id] = status
                if status == RUNNING:
                    found_in[instance_id] = (uid, region)
    messages = []
    missing = [i for i in wanted if i not in seen]
    if missing:
        messages.append(
            _("Not found in the chosen accounts and regions: %(ids)s.")
            % {"ids": ", ".join(missing)}
        )
    stopped = [f"{i} ({seen[i]})" for i in wanted if i in seen and seen[i] != RUNNING]
    if stopped:
        messages.append(
            _("Not running, so the command cannot run there: %(ids)s.")
            % {"ids": ", ".join(stopped)}
        )
    running_in: dict[tuple[str, str], list[str]] = {}
    for instance_id in wanted:
        if instance_id in found_in:
            running_in.setdefault(found_in[instance_id], []).append(instance_id)
    return InstanceCheck(problems=messages, running_in=running_in)
