"""Two admins approving, at the same moment, two proposals written against the same rule:
one applies and the other is refused as outdated, never both one over the other.

Real concurrency needs real row locks, so this runs on PostgreSQL (CI); SQLite serialises
writers and is covered by the sequential tests in test_four_eyes_outdated.py.
"""

import time

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from accounts.models import Membership, Organisation, User
from delegations.approvals import four_eyes
from delegations.approvals.four_eyes import (
    approval_rule_set_or_propose,
    four_eyes_set,
    rule_proposal_approve,
)
from delegations.models import ApprovalRule, CatalogRole, RuleProposal
from tests.delegations.lifecycle.test_decision_races import race
from tests.personas import make_member

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row-lock races need PostgreSQL"),
]
# Each round's two quorums, both unlike the one in force (the same quorum again changes nothing,
# and the other proposal would rightly still apply).
ROUNDS = ((2, 3), (4, 5), (1, 2))


def test_two_proposals_on_one_rule_approved_at_once_apply_one_and_outdate_the_other(
    company_a: Organisation,
    ecs_admin: CatalogRole,
    owner_admin: User,
    owner_admin_2: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    apply = four_eyes._apply

    def slow_apply(proposal: RuleProposal) -> None:
        time.sleep(0.3)  # both approvals are past their checks before either applies
        apply(proposal)

    monkeypatch.setattr(four_eyes, "_apply", slow_apply)
    third, *_enough_for_a_quorum_of_5 = (
        make_member(company_a, Membership.Role.ADMIN, email=f"admin-{i}@company-a.example")
        for i in range(3)
    )
    four_eyes_set(owner=company_a, user=owner_admin, on=True)
    for quorums in ROUNDS:
        proposals = [
            approval_rule_set_or_propose(
                catalog_role=ecs_admin,
                user=owner_admin,
                approvals_required=wanted,
                auto_approve_max_hours=None,
            )
            for wanted in quorums
        ]
        assert all(isinstance(proposal, RuleProposal) for proposal in proposals)
        outcomes = race(
            *(
                lambda proposal=proposal, by=by: rule_proposal_approve(
                    proposal=proposal, approved_by=by
                )
                for proposal, by in zip(proposals, (owner_admin_2, third), strict=True)
            )
        )
        applied = [o for o in outcomes if isinstance(o, RuleProposal)]
        refused = [o for o in outcomes if isinstance(o, ValidationError)]
        assert len(applied) == 1 and len(refused) == 1, outcomes
        assert "changed since" in str(refused[0])
        statuses = sorted(RuleProposal.objects.get(pk=p.pk).status for p in proposals)
        assert statuses == [RuleProposal.Status.APPLIED, RuleProposal.Status.OUTDATED]
        rule = ApprovalRule.objects.get(catalog_role=ecs_admin)
        assert rule.approvals_required == applied[0].payload["approvals_required"]
