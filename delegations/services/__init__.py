"""State changes of the delegation lifecycle. Import from here.

The worker-side reconciliation lives in `delegations.services.apply` (import it directly).
"""

from delegations.services.drift import drift_clear, drift_record, drift_resolve
from delegations.services.lifecycle import (
    DelegationConflict,
    IllegalTransition,
    delegation_approve,
    delegation_expire,
    delegation_mark_active,
    delegation_mark_applying,
    delegation_mark_failed,
    delegation_mark_revoked,
    delegation_offer,
    delegation_reject,
    delegation_request,
    delegation_retry,
    delegation_revoke,
    delegation_withdraw,
    delegations_desired_on_role,
    delegations_expire_due,
    managed_role_for_catalog_role,
)
from delegations.services.outbox import (
    outbox_enqueue,
    outbox_enqueue_reconcile,
    outbox_publish,
    outbox_republish_due,
)
from delegations.services.partner_links import (
    partner_link_create,
    partner_link_normalise_code,
    partner_link_revoke,
)

__all__ = [
    "DelegationConflict",
    "IllegalTransition",
    "delegation_approve",
    "delegation_expire",
    "delegation_mark_active",
    "delegation_mark_applying",
    "delegation_mark_failed",
    "delegation_mark_revoked",
    "delegation_offer",
    "delegation_reject",
    "delegation_request",
    "delegation_retry",
    "delegation_revoke",
    "delegation_withdraw",
    "delegations_desired_on_role",
    "delegations_expire_due",
    "drift_clear",
    "drift_record",
    "drift_resolve",
    "managed_role_for_catalog_role",
    "outbox_enqueue",
    "outbox_enqueue_reconcile",
    "outbox_publish",
    "outbox_republish_due",
    "partner_link_create",
    "partner_link_normalise_code",
    "partner_link_revoke",
]
