"""What a restarted worker does about its previous life: free the leases it still held.

Kept apart from `incarnation` (which the engine imports for lease tokens) because it needs
the subjects' services, which import the engine.
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q

from delegations.models import ManagedRole, PartnerUserPolicy
from delegations.partner_access import partner_user_policy_request
from delegations.worker.incarnation import Identity, identity
from delegations.worker.owner_role import managed_role_request_reconcile

logger = logging.getLogger(__name__)


def release_previous_incarnations(current: Identity | None = None) -> dict[str, int]:
    """Free every lease an earlier incarnation of this node still holds (it is dead: this node
    runs one worker) and ask for a reconcile of each subject, through the outbox. Returns how
    many leases were freed per kind of subject."""
    current = current or identity()
    ours = Q(locked_by__startswith=f"{current.node_key}.") & ~Q(
        locked_by__startswith=current.prefix
    )
    freed = {"managed_roles": 0, "partner_user_policies": 0}
    for managed_role in ManagedRole.objects.filter(ours):
        with transaction.atomic():
            if ManagedRole.objects.filter(
                pk=managed_role.pk, locked_by=managed_role.locked_by
            ).update(locked_by="", locked_until=None):
                managed_role_request_reconcile(managed_role=managed_role)
                freed["managed_roles"] += 1
    for policy in PartnerUserPolicy.objects.filter(ours):
        with transaction.atomic():
            if PartnerUserPolicy.objects.filter(pk=policy.pk, locked_by=policy.locked_by).update(
                locked_by="", locked_until=None
            ):
                partner_user_policy_request(policy=policy)
                freed["partner_user_policies"] += 1
    if any(freed.values()):
        logger.warning("Freed the leases of this worker's previous run: %s", freed)
    return freed
