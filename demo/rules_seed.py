"""The demo's approval rules, so a newcomer sees them at once: `ecs-viewer` needs
two approvals (company-a has a second admin, the approver), `ecs-admin` is a break-glass role
Alice of company-b may activate herself for up to 4 hours, and an access review is open,
asking company-a's admins about each active delegation and company-b's admin about the staff
assigned. Idempotent (a second run writes nothing); through the same services as the pages."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError

from accounts.models import Organisation, User
from delegations.approvals.services import approval_rule_set
from delegations.breakglass.services import break_glass_role_set
from delegations.models import (
    ApprovalRule,
    BreakGlassRole,
    CatalogRole,
    ReviewCampaign,
    ReviewOutcome,
    ReviewSchedule,
)
from delegations.reviews.services import review_campaign_start, review_schedule_set
from demo.people import first_admin

QUORUM_ROLE = "ecs-viewer"
BREAK_GLASS_ROLE = "ecs-admin"
BREAK_GLASS_PERSON = "alice@company-b.example"
BREAK_GLASS_HOURS = 4


def _quorum(owner: Organisation, admin: User) -> str:
    role = CatalogRole.objects.filter(organisation=owner, role_name=QUORUM_ROLE).first()
    if role is None:
        return f"Note: no {QUORUM_ROLE} role; the quorum demo was skipped."
    rule = ApprovalRule.objects.filter(catalog_role=role).first()
    if rule is not None and rule.approvals_required == 2:
        return f"Quorum: {QUORUM_ROLE} already needs 2 approvals."
    approval_rule_set(catalog_role=role, approvals_required=2, set_by=admin)
    return f"Quorum: requests for {QUORUM_ROLE} need 2 approvals (two company-a admins)."


def _break_glass(owner: Organisation, partner: Organisation, admin: User) -> str:
    role = CatalogRole.objects.filter(organisation=owner, role_name=BREAK_GLASS_ROLE).first()
    person = User.objects.filter(email__iexact=BREAK_GLASS_PERSON).first()
    if role is None or person is None:
        return f"Note: no {BREAK_GLASS_ROLE} role or {BREAK_GLASS_PERSON}; break-glass skipped."
    if BreakGlassRole.objects.filter(catalog_role=role, partner=partner).exists():
        return f"Break-glass: {BREAK_GLASS_ROLE} for {partner.name} already marked."
    break_glass_role_set(
        owner=owner,
        set_by=admin,
        catalog_role=role,
        partner=partner,
        people=[person],
        max_hours=BREAK_GLASS_HOURS,
    )
    return (
        f"Break-glass: {BREAK_GLASS_PERSON} may activate {BREAK_GLASS_ROLE} for up to "
        f"{BREAK_GLASS_HOURS} h (Break-glass page); company-a's admins review it."
    )


def _review(owner: Organisation, admin: User) -> str:
    if ReviewCampaign.objects.filter(organisation=owner).exists():
        return "Access review: one is already there (Catalogue → Access reviews)."
    if not ReviewSchedule.objects.filter(organisation=owner).exists():
        review_schedule_set(
            owner=owner,
            set_by=admin,
            every_days=90,
            deadline_days=14,
            default_outcome=ReviewOutcome.REMIND,
        )
    campaign = review_campaign_start(owner=owner, started_by=admin)
    return (
        "Access review: open until "
        f"{campaign.deadline_at:%Y-%m-%d}, both sides asked (Catalogue → Access reviews)."
    )


def demo_rules_seed(*, owner: Organisation, partner: Organisation) -> list[str]:
    """Lines to print; never raises for what the demo cannot do (it says so instead)."""
    admin = first_admin(owner)
    if admin is None:
        return ["Note: company-a has no admin; the approval-rules demo was skipped."]
    lines = []
    for step in (
        lambda: _quorum(owner, admin),
        lambda: _break_glass(owner, partner, admin),
        lambda: _review(owner, admin),
    ):
        try:
            lines.append(step())
        except (ValidationError, PermissionDenied) as error:
            why = " ".join(getattr(error, "messages", [str(error)]))
            lines.append(f"Note: an approval-rules demo step was skipped: {why}")
    return lines
