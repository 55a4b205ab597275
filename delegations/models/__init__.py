"""Everything the delegation lifecycle stores, one module per sub-domain.

- `versioned`: `VersionedModel`, the version and last change of a row people change under a
  version (a delegation, a fleet, an emergency role, an approver group, a settings row).
- `connection`: `CloudAccount`, an organisation's Alibaba Cloud account and the (encrypted)
  AccessKey the portal uses in it. Owners may have several (one primary); partners have one.
- `catalog`: `CatalogRole`, `PartnerAllowance`, `PartnerLink`: what an owner may grant, to
  which partner accounts, and the codes by which partners find the owner.
- `worker`: `ManagedRole`, `CloudCall`, `DriftFinding`, `OutboxMessage`: the worker's view of
  a RAM role (lock lease, last seen state), every call made to the cloud (intent written
  before the call), differences between the cloud and the portal found by the reconciler,
  and follow-up work written in the same transaction as the change that needs it, so a broker
  outage or a lost task loses nothing.
- `fleet`: `FleetGrant`, one catalogue role for one partner across several owner accounts x
  regions, decided once, owning one delegation per account.
- `lifecycle`: `Delegation`, one partner's access to one catalogue role, and its vocabulary
  (statuses, the allowed transitions).
- `trust_scope`, `trust`: whom a trust policy names (`TrustScope`) and the named people the
  owner approved for it (`TrustedPerson`).
- `approvals`: `ApproverGroup`, `ApprovalRule`, `DelegationApproval`: who may decide a
  request, how many distinct approvals it needs, and each approval given.
- `breakglass`: `BreakGlassRole`, `BreakGlassActivation`: emergency roles a partner's named
  people activate themselves, and each activation with the owner's review of it.
- `reviews`: `ReviewSchedule`, `ReviewCampaign`, `ReviewItem`: access reviews across the
  company boundary, each question put to the owner's approvers or the partner's admins.
- `partner`: staff assignments, the partner users' AssumeRole policies, credential issuances,
  credentials-URI keys and the owner's emergency cut-off.

Every name is re-exported here: the rest of the code imports from `delegations.models`, and
the migrations name the validators by this path. State changes happen in the sub-areas'
services only; these classes hold data and the vocabulary.
"""

from delegations.models.approvals import (
    APPROVER_GROUP_NAME_MAX_LENGTH,
    MAX_APPROVALS_REQUIRED,
    MAX_AUTO_APPROVE_HOURS,
    ApprovalRule,
    ApprovalSettings,
    ApproverGroup,
    DelegationApproval,
    DelegationExtension,
    RuleProposal,
)
from delegations.models.breakglass import (
    BREAK_GLASS_REVIEW_WITHIN,
    MAX_BREAK_GLASS_HOURS,
    MAX_BREAK_GLASS_QUORUM,
    MIN_BREAK_GLASS_REASON,
    BreakGlassActivation,
    BreakGlassRole,
)
from delegations.models.catalog import (
    CATALOG_ROLE_EDITABLE_FIELDS,
    CATALOG_ROLE_ORDER,
    MAX_SESSION_DURATION,
    MIN_SESSION_DURATION,
    ROLE_NAME_MAX_LENGTH,
    CatalogRole,
    PartnerAllowance,
    PartnerLink,
    role_in_account,
    validate_role_name,
)
from delegations.models.connection import HOME_FIRST, REGION_RE, CloudAccount, validate_region
from delegations.models.fleet import (
    MAX_FLEET_ACCOUNTS,
    MAX_FLEET_CONCURRENCY,
    MAX_FLEET_REGIONS,
    FleetGrant,
)
from delegations.models.lifecycle import (
    ALLOWED_TRANSITIONS,
    DESIRED_PRESENT_STATUSES,
    EXPIRABLE_STATUSES,
    FINAL_STATUSES,
    NEVER_APPLIED_STATUSES,
    WORKER_PENDING_STATUSES,
    Delegation,
)
from delegations.models.partner import (
    NOT_NARROWED,
    CredentialIssuance,
    CredentialsUriToken,
    PartnerUserPolicy,
    RoleCutOff,
    StaffAssignment,
    StaffRamUserLink,
)
from delegations.models.reviews import (
    MAX_REVIEW_DEADLINE_DAYS,
    MAX_REVIEW_EVERY_DAYS,
    ReviewCampaign,
    ReviewItem,
    ReviewOutcome,
    ReviewSchedule,
)
from delegations.models.trust import TrustedPerson
from delegations.models.trust_scope import (
    DEFAULT_NAMED_PEOPLE_CAP,
    MAX_NAMED_PEOPLE_CAP,
    NAMED_SCOPES,
    TRUST_SCOPES_WIDEST_FIRST,
    TrustScope,
    narrowest_trust_scope,
)
from delegations.models.versioned import VersionedModel
from delegations.models.worker import (
    CloudCall,
    DriftFinding,
    LeasedModel,
    ManagedRole,
    OutboxMessage,
)

__all__ = [
    "ALLOWED_TRANSITIONS",
    "APPROVER_GROUP_NAME_MAX_LENGTH",
    "BREAK_GLASS_REVIEW_WITHIN",
    "CATALOG_ROLE_EDITABLE_FIELDS",
    "CATALOG_ROLE_ORDER",
    "DEFAULT_NAMED_PEOPLE_CAP",
    "DESIRED_PRESENT_STATUSES",
    "EXPIRABLE_STATUSES",
    "FINAL_STATUSES",
    "HOME_FIRST",
    "MAX_APPROVALS_REQUIRED",
    "MAX_AUTO_APPROVE_HOURS",
    "MAX_BREAK_GLASS_HOURS",
    "MAX_BREAK_GLASS_QUORUM",
    "MAX_FLEET_ACCOUNTS",
    "MAX_FLEET_CONCURRENCY",
    "MAX_FLEET_REGIONS",
    "MAX_NAMED_PEOPLE_CAP",
    "MAX_REVIEW_DEADLINE_DAYS",
    "MAX_REVIEW_EVERY_DAYS",
    "MAX_SESSION_DURATION",
    "MIN_BREAK_GLASS_REASON",
    "MIN_SESSION_DURATION",
    "NAMED_SCOPES",
    "NEVER_APPLIED_STATUSES",
    "NOT_NARROWED",
    "REGION_RE",
    "ROLE_NAME_MAX_LENGTH",
    "TRUST_SCOPES_WIDEST_FIRST",
    "WORKER_PENDING_STATUSES",
    "ApprovalRule",
    "ApprovalSettings",
    "ApproverGroup",
    "BreakGlassActivation",
    "BreakGlassRole",
    "CatalogRole",
    "CloudAccount",
    "CloudCall",
    "CredentialIssuance",
    "CredentialsUriToken",
    "Delegation",
    "DelegationApproval",
    "DelegationExtension",
    "DriftFinding",
    "FleetGrant",
    "LeasedModel",
    "ManagedRole",
    "OutboxMessage",
    "PartnerAllowance",
    "PartnerLink",
    "PartnerUserPolicy",
    "ReviewCampaign",
    "ReviewItem",
    "ReviewOutcome",
    "ReviewSchedule",
    "RoleCutOff",
    "RuleProposal",
    "StaffAssignment",
    "StaffRamUserLink",
    "TrustScope",
    "TrustedPerson",
    "VersionedModel",
    "narrowest_trust_scope",
    "role_in_account",
    "validate_region",
    "validate_role_name",
]
