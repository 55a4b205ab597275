"""Whom a delegation's trust policy names: the vocabulary shared by catalogue roles (their
default) and delegations (the scope in force). `delegations.trust` changes it."""

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
DEFAULT_NAMED_PEOPLE_CAP = 5
MAX_NAMED_PEOPLE_CAP = 50


def trust_scope_field() -> models.CharField:
    return models.CharField(
        max_length=16, choices=TrustScope.choices, default=TrustScope.PARTNER_ACCOUNT
    )
