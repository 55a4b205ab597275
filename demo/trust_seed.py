"""The demo's one delegation with a named-people trust scope, so a newcomer sees
per-person trust at once: company-a offers `ecs-viewer` to company-b with the scope "named
people, owner-approved", company-b's admin proposes Alice and company-a's admin approves her.
The worker then writes a trust policy naming `acs:ram::12345678:user/Alice` (and the broker)
instead of the whole account. Idempotent; through the same services as the pages."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Organisation
from delegations.lifecycle.named_people import trusted_person_decide
from delegations.lifecycle.starting import delegation_offer
from delegations.models import CatalogRole, Delegation, TrustedPerson, TrustScope
from delegations.trust.services import trusted_person_propose
from demo.people import first_admin, seed_decides_with_mfa

NAMED_ROLE = "ecs-viewer"
NAMED_PERSON = "Alice"


def demo_named_people_seed(*, owner: Organisation, partner: Organisation) -> list[str]:
    """Lines to print; never raises for what the demo cannot do (it says so instead)."""
    role = CatalogRole.objects.filter(organisation=owner, role_name=NAMED_ROLE).first()
    owner_admin, partner_admin = first_admin(owner), first_admin(partner)
    if role is None or owner_admin is None or partner_admin is None:
        return [f"Note: no {NAMED_ROLE} role or admins; the named-people demo was skipped."]
    delegation = (
        Delegation.objects.filter(partner=partner, catalog_role=role)
        .exclude(status__in=["revoked", "rejected", "expired", "withdrawn"])
        .first()
    )
    if delegation is not None and TrustedPerson.objects.filter(delegation=delegation).exists():
        return [f"Named-people delegation of {NAMED_ROLE} to {partner.name} already there."]
    try:
        if delegation is None:
            delegation = delegation_offer(
                owner=owner,
                offered_by=owner_admin,
                partner=partner,
                catalog_role=role,
                reason="Demo: only named people of company-b may assume this role",
                ends_at=None,
                with_mfa=seed_decides_with_mfa(),
                trust_scope=TrustScope.NAMED_OWNER_APPROVED,
            )
        person = trusted_person_propose(
            delegation=delegation, proposed_by=partner_admin, ram_user_name=NAMED_PERSON
        )
        trusted_person_decide(
            person=person, decided_by=owner_admin, approve=True, with_mfa=seed_decides_with_mfa()
        )
    except (ValidationError, PermissionDenied) as error:
        why = " ".join(getattr(error, "messages", [str(error)]))
        return [f"Note: the named-people demo was skipped: {why}"]
    return [
        f"Offered {NAMED_ROLE} to {partner.name} with the trust scope 'named people, "
        f"owner-approved'; {NAMED_PERSON} proposed and approved (see the delegation's "
        "trust page)."
    ]
