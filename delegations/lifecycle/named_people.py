"""The owner's decision on a named person (an owner-approved trust scope), under the rules the
delegation's own approval follows: the trust area (`delegations.trust`) writes the decision,
and the lifecycle, which calls both it and the approval rules, says who may make it.

Only someone who may decide the delegation decides its people: an owner admin, never a member
of the partner nor the person's proposer, and when approver groups are attached to the role or
the partner, only their members (`approvals.services.proposal_decision_refusal`). Approving a
person lets one more of the partner's people assume the role, so it makes the grant checks an
approval makes (allow-list, the role still offered in a connected account, its high-privilege
opt-in judged now). The checks run before the lock, where a refusal is recorded in its own
transaction, and again under the delegation's row lock, where the decision is written.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext

from accounts.models import User
from delegations.approvals.selectors import proposal_deciders
from delegations.approvals.services import proposal_decision_refusal
from delegations.lifecycle.transitions import grant_precheck, grant_recheck
from delegations.models import Delegation, TrustedPerson
from delegations.trust import services as trust_services
from delegations.trust.selectors import PeopleDeciding, people_deciding_register


def trusted_person_decide(
    *,
    person: TrustedPerson,
    decided_by: User,
    approve: bool,
    with_mfa: bool,
    reason: str = "",
) -> TrustedPerson:
    """An owner admin approves (step-up, MFA when required) or refuses (with a reason) a
    person the partner proposed, while the delegation is asked for or granted."""
    current = TrustedPerson.objects.select_related(
        "delegation__owner",
        "delegation__partner",
        "delegation__catalog_role__cloud_account",
        "delegation__managed_role__cloud_account",
    ).get(pk=person.pk)
    delegation = current.delegation

    def deny(because: str) -> None:
        trust_services.trusted_person_decision_denied(
            person=current, decided_by=decided_by, approve=approve, reason=because
        )

    checked: tuple[Any, bool] | None = None
    if current.status == TrustedPerson.Status.PENDING:
        problem = trust_services.trusted_person_decision_problem(delegation, approve=approve)
        if problem is not None:
            raise ValidationError(problem)
        refusal = proposal_decision_refusal(
            delegation=delegation, user=decided_by, proposed_by_id=current.proposed_by_id
        )
        if refusal is not None:
            deny(refusal)
            raise PermissionDenied(refusal)
        if approve:
            checked = grant_precheck(delegation=delegation, audit_refusal=deny)

    def decider_check(locked: Delegation) -> None:
        refusal = proposal_decision_refusal(
            delegation=locked, user=decided_by, proposed_by_id=current.proposed_by_id
        )
        if refusal is not None:
            raise PermissionDenied(refusal)
        if approve:
            if checked is None:  # it was not pending when read: decided meanwhile
                raise ValidationError(
                    gettext("This request changed; reload the page and decide again.")
                )
            grant_recheck(locked=locked, checked=checked)

    return trust_services.trusted_person_decide(
        person=current,
        decided_by=decided_by,
        approve=approve,
        with_mfa=with_mfa,
        reason=reason,
        decider_check=decider_check,
    )


def people_deciding(delegation: Delegation, user: User) -> PeopleDeciding:
    """Whether `user` may decide on the people proposed for `delegation` (the trust page then
    offers Approve and Refuse) and, when not, who may (the page says so instead)."""
    refusal = proposal_decision_refusal(delegation=delegation, user=user, proposed_by_id=None)
    if refusal is None:
        return PeopleDeciding(refusal=None)
    deciders = proposal_deciders(delegation=delegation)
    return PeopleDeciding(refusal=refusal, deciders=tuple(person.email for person in deciders))


people_deciding_register(people_deciding)
