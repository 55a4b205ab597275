"""An audit event about one delegation: it sits in the owner's ledger and its partner sees it
too (every sub-area that records something about a delegation writes it this way)."""

from __future__ import annotations

from typing import Any

from accounts.models import Organisation
from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from delegations.models import CatalogRole, Delegation


def delegation_label(delegation: Delegation) -> str:
    """How the ledger names a delegation: "<role> for <partner>"."""
    return role_for_partner_label(delegation.catalog_role, delegation.partner)


def role_for_partner_label(catalog_role: CatalogRole, partner: Organisation) -> str:
    """The ledger's "<role> for <partner>": a delegation's name, and the name of what leads
    to one (an emergency role marked for a partner, its activations)."""
    return f"{catalog_role.role_name} for {partner.name}"


def delegation_audit_record(
    delegation: Delegation, action: AuditAction, **fields: Any
) -> AuditEvent:
    """`audit_record` for an event about `delegation`: the owner's, related to the partner,
    about the delegation itself (named as the ledger names a delegation) unless `fields` names
    another `target` (`fields` are the rest of `audit_record`'s arguments)."""
    if fields.get("target") is None:
        fields["target"] = delegation
        fields.setdefault("target_label", delegation_label(delegation))
    return audit_record(
        action=action,
        organisation=delegation.owner,
        related_organisations=[delegation.partner],
        **fields,
    )
