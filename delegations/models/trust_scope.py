"""Whom a delegation's trust policy names: the vocabulary shared by catalogue roles (their
default) and delegations (the scope in force). `delegations.trust` changes it."""

from collections.abc import Iterable

from django.db import models
from django.utils.translation import gettext_lazy as _


class TrustScope(models.TextChoices):
    # Today's behaviour: `acs:ram::<partner>:root`, the partner decides who may assume.
    PARTNER_ACCOUNT = "account", _("Whole partner account")
    # `acs:ram::<partner>:user/<name>` for each RAM user the partner admin assigned, up to a cap.
    NAMED_PARTNER_MANAGED = "named_partner", _("Named people, partner-managed")
    # Each person the partner proposes is approved by the owner before entering the policy.
    NAMED_OWNER_APPROVED = "named_owner", _("Named people, owner-approved")


NAMED_SCOPES = frozenset({TrustScope.NAMED_PARTNER_MANAGED, TrustScope.NAMED_OWNER_APPROVED})
# From the scope trusting the most people to the one trusting the fewest: the whole account,
# then the people the partner names, then only those the owner approved one by one.
TRUST_SCOPES_WIDEST_FIRST = (
    TrustScope.PARTNER_ACCOUNT,
    TrustScope.NAMED_PARTNER_MANAGED,
    TrustScope.NAMED_OWNER_APPROVED,
)
DEFAULT_NAMED_PEOPLE_CAP = 5
MAX_NAMED_PEOPLE_CAP = 50


def narrowest_trust_scope(scopes: Iterable[str]) -> str | None:
    """The scope among `scopes` that trusts the fewest people (None when there is none): what
    several approvers together agreed to."""
    chosen = set(scopes)
    return next((scope for scope in reversed(TRUST_SCOPES_WIDEST_FIRST) if scope in chosen), None)


def trust_scope_field() -> models.CharField:
    return models.CharField(
        max_length=16, choices=TrustScope.choices, default=TrustScope.PARTNER_ACCOUNT
    )
