"""Every event type the portal writes to the audit log, in one registry.

`audit_record` refuses an action that is not an `AuditAction`, so a new event type cannot
appear without being named here with its description. A member's value is the exact string
stored in `AuditEvent.action` and hashed into the chain: never rename one, or the events
already written stop matching it (the chain itself stays valid; the console would read them as
unknown).

Each member carries what the auditor's console needs to show it without knowing the action:
- `description`: what happened, in a sentence, for people reading the list of event types.
- `category`: how the console groups and colours it.
- `title`: the console's one-line title, a `str.format` template over the names in
  `TITLE_FIELDS`; None keeps the neutral "action — target" line.
- `access`: whether it grants or ends a person's access to a delegation, which the timeline
  and the access report follow.
"""

from __future__ import annotations

# `_` only marks a title for the catalogue (gettext_noop): the registry keeps English, and the
# auditor's console translates a title when it shows it.
from django.utils.translation import gettext_noop as _

from audit.action_info import ACTION_RE as ACTION_RE
from audit.action_info import TITLE_FIELDS as TITLE_FIELDS
from audit.action_info import Access as Access
from audit.action_info import ActionInfo as ActionInfo
from audit.action_info import Category as Category
from audit.fleet_actions import FLEET_INFO as _FL
from audit.rule_actions import RULE_ACTIONS
from audit.runbook_actions import RUNBOOK_INFO as _RB
from audit.verify_export import EXPORT_ACTION
from core.registry import InfoEnum

_LIFECYCLE = Category.LIFECYCLE
_OTHER = Category.OTHER
_A = Category.APPROVAL


def _rules(value: str) -> tuple[str, ActionInfo]:
    """An approval-rules event: its description lives in `audit.rule_actions`."""
    return value, RULE_ACTIONS[value]


class AuditAction(InfoEnum):
    """An event type; its value is the string stored in the ledger."""

    info: ActionInfo

    @classmethod
    def lookup(cls, action: object) -> AuditAction | None:
        """The member stored as `action`, or None for a string the portal never writes."""
        member = cls._value2member_map_.get(action) if isinstance(action, str) else None
        return member if isinstance(member, cls) else None

    # --- organisations, people, sign-in -----------------------------------------------------
    ORGANISATION_REGISTERED = (
        "organisation.registered",
        ActionInfo(_OTHER, "An organisation signed up, with its first administrator."),
    )
    ORGANISATION_SIGNUP_EXPIRED = (
        "organisation.signup_expired",
        ActionInfo(
            _OTHER,
            "A sign-up nobody confirmed in time was removed, with its founder's unconfirmed "
            "account, freeing its account UID.",
        ),
    )
    ORGANISATION_SWITCHED = (
        "organisation.switched",
        ActionInfo(_OTHER, "A person switched the organisation they act for."),
    )
    MEMBER_ADDED = (
        "member.added",
        ActionInfo(_OTHER, "A person became a member of an organisation."),
    )
    MEMBER_ROLE_CHANGED = (
        "member.role_changed",
        ActionInfo(_OTHER, "An administrator changed a member's role."),
    )
    MEMBER_REMOVED = (
        "member.removed",
        ActionInfo(_OTHER, "A person stopped being a member of an organisation."),
    )
    MEMBER_REMOVE_DENIED = (
        "member.remove_denied",
        ActionInfo(
            Category.DENIED,
            "Removing an admin was refused: the approval rules need them to reach a quorum.",
            title=_("{actor} tried to remove {target_label} and was refused"),
        ),
    )
    MEMBER_ROLE_CHANGE_DENIED = (
        "member.role_change_denied",
        ActionInfo(
            Category.DENIED,
            "Demoting an admin was refused: the approval rules need them to reach a quorum.",
            title=_("{actor} tried to change the role of {target_label} and was refused"),
        ),
    )
    MEMBER_JOIN_DENIED = (
        "member.join_denied",
        ActionInfo(
            Category.DENIED,
            "An owner admin joining a partner was refused: the approval rules need them to "
            "decide that partner's requests.",
            title=_("{actor} tried to add {target_label} as a member and was refused"),
        ),
    )
    INVITATION_SENT = (
        "invitation.sent",
        ActionInfo(_OTHER, "An administrator invited someone to join."),
    )
    INVITATION_RESENT = (
        "invitation.resent",
        ActionInfo(_OTHER, "An administrator sent an invitation again."),
    )
    INVITATION_CANCELLED = (
        "invitation.cancelled",
        ActionInfo(_OTHER, "An administrator cancelled an invitation."),
    )
    INVITATION_ACCEPTED = (
        "invitation.accepted",
        ActionInfo(_OTHER, "The invited person accepted and joined."),
    )
    AUTH_SIGN_IN_SUCCEEDED = (
        "auth.sign_in_succeeded",
        ActionInfo(_OTHER, "A person signed in."),
    )
    AUTH_SIGN_IN_FAILED = (
        "auth.sign_in_failed",
        ActionInfo(_OTHER, "A sign-in was refused (wrong password or unknown address)."),
    )
    AUTH_SESSION_ENDED = (
        "auth.session_ended",
        ActionInfo(_OTHER, "An operator ended one of a person's signed-in sessions."),
    )
    MFA_ENABLED = (
        "mfa.enabled",
        ActionInfo(_OTHER, "A person turned on two-factor authentication (authenticator app)."),
    )
    MFA_DISABLED = (
        "mfa.disabled",
        ActionInfo(_OTHER, "A person turned off two-factor authentication."),
    )
    MFA_AUTHENTICATOR_ADDED = (
        "mfa.authenticator_added",
        ActionInfo(_OTHER, "A person added a second factor other than the app (a security key)."),
    )
    MFA_AUTHENTICATOR_REMOVED = (
        "mfa.authenticator_removed",
        ActionInfo(_OTHER, "A person removed a second factor other than the app."),
    )
    MFA_RECOVERY_CODES_REGENERATED = (
        "mfa.recovery_codes_regenerated",
        ActionInfo(_OTHER, "A person replaced their recovery codes."),
    )
    MFA_RESET_BY_OPERATOR = (
        "mfa.reset_by_operator",
        ActionInfo(
            _OTHER,
            "An operator removed every second factor of a person who had lost them, and signed "
            "them out everywhere; the event holds the reason and what was removed.",
            title=_("{actor} reset the two-factor authentication of {target_label}"),
        ),
    )
    MFA_SECRET_REENCRYPTED = (
        "mfa.secret_reencrypted",
        ActionInfo(_OTHER, "An authenticator's secret was encrypted again under a new key."),
    )

    # --- the audit log itself ---------------------------------------------------------------
    AUDIT_VERIFICATION_STARTED = (
        "audit.verification_started",
        ActionInfo(_OTHER, "An auditor started a verification of the audit chain."),
    )
    AUDIT_VERIFICATION_FINISHED = (
        "audit.verification_finished",
        ActionInfo(_OTHER, "A verification of the audit chain finished, with its verdict."),
    )
    AUDIT_EXPORTED = (
        EXPORT_ACTION,
        ActionInfo(
            _OTHER,
            "A reader downloaded the verifiable export of the organisation's events; the "
            "event holds its filters, counts and the digests the export is checked against.",
            title=_("{actor} exported the audit events"),
        ),
    )

    # --- the owner's cloud account ----------------------------------------------------------
    CLOUD_ACCOUNT_CONNECTED = (
        "cloud_account.connected",
        ActionInfo(_OTHER, "An owner connected its Alibaba Cloud account (an AccessKey)."),
    )
    CLOUD_ACCOUNT_CHECK_FAILED = (
        "cloud_account.check_failed",
        ActionInfo(_OTHER, "An AccessKey offered for the account failed the portal's checks."),
    )
    CLOUD_ACCOUNT_REPLACED = (
        "cloud_account.replaced",
        ActionInfo(_OTHER, "An owner replaced the account's AccessKey."),
    )
    CLOUD_ACCOUNT_VERIFIED = (
        "cloud_account.verified",
        ActionInfo(_OTHER, "The account's AccessKey was checked again and works."),
    )
    CLOUD_ACCOUNT_DISCONNECTED = (
        "cloud_account.disconnected",
        ActionInfo(_OTHER, "An owner disconnected its cloud account."),
    )
    CLOUD_ACCOUNT_MADE_PRIMARY = (
        "cloud_account.made_primary",
        ActionInfo(_OTHER, "An owner made one of its accounts the primary (the default)."),
    )
    CLOUD_ACCOUNT_SECRET_REENCRYPTED = (
        "cloud_account.secret_reencrypted",
        ActionInfo(_OTHER, "The account's AccessKey secret was encrypted again under a new key."),
    )

    # --- catalogue and allow-list -----------------------------------------------------------
    CATALOG_ROLE_CREATED = (
        "catalog_role.created",
        ActionInfo(_OTHER, "An owner added a role to its catalogue."),
    )
    CATALOG_ROLE_UPDATED = (
        "catalog_role.updated",
        ActionInfo(_OTHER, "An owner changed a catalogue role."),
    )
    CATALOG_ROLE_ACCOUNTS_CHANGED = (
        "catalog_role.accounts_changed",
        ActionInfo(_OTHER, "An owner changed which of its cloud accounts a role is offered in."),
    )
    CATALOG_ROLE_DEACTIVATED = (
        "catalog_role.deactivated",
        ActionInfo(_OTHER, "An owner withdrew a catalogue role from new requests."),
    )
    CATALOG_ROLE_REACTIVATED = (
        "catalog_role.reactivated",
        ActionInfo(_OTHER, "An owner offered a withdrawn catalogue role again."),
    )
    PARTNER_ALLOWANCE_ADDED = (
        "partner_allowance.added",
        ActionInfo(_OTHER, "An owner allowed a partner to request a catalogue role."),
    )
    PARTNER_ALLOWANCE_REMOVED = (
        "partner_allowance.removed",
        ActionInfo(_OTHER, "An owner stopped allowing a partner to request a catalogue role."),
    )
    # Refused by the approval rules: its description lives in `audit.rule_actions`.
    PARTNER_ALLOWANCE_ADD_DENIED = _rules("partner_allowance.add_denied")
    PARTNER_LINK_CREATED = (
        "partner_link.created",
        ActionInfo(_OTHER, "An owner linked a partner organisation."),
    )
    PARTNER_LINK_REVOKED = (
        "partner_link.revoked",
        ActionInfo(_OTHER, "An owner unlinked a partner organisation."),
    )
    PARTNER_LINK_ACCEPTED = (
        "partner_link.accepted",
        ActionInfo(_OTHER, "A partner admin entered a partner link code and reached its owner."),
    )
    PARTNER_LINK_CODE_REFUSED = (
        "partner_link.code_refused",
        ActionInfo(
            _OTHER,
            "A partner admin entered a partner link code that is not valid for their "
            "organisation (the partner's record: it says nothing of whose code it was).",
        ),
    )
    PARTNER_LINK_USE_REFUSED = (
        "partner_link.use_refused",
        ActionInfo(
            _OTHER,
            "A partner link code was refused, and why (the owner's record; an unknown code is "
            "recorded for the operators only).",
        ),
    )
    PARTNER_LINK_USED_UP = (
        "partner_link.used_up",
        ActionInfo(
            _OTHER, "A single-use partner link code was used by a request and stopped working."
        ),
    )

    # --- a delegation's lifecycle -----------------------------------------------------------
    DELEGATION_REQUESTED = (
        "delegation.requested",
        ActionInfo(
            _LIFECYCLE,
            "A partner requested access to a role.",
            _("{actor} requested this access"),
        ),
    )
    DELEGATION_WITHDRAWN = (
        "delegation.withdrawn",
        ActionInfo(
            _LIFECYCLE,
            "The partner withdrew its request before it was decided.",
            _("{actor} withdrew the request before it was decided"),
        ),
    )
    DELEGATION_OFFERED = (
        "delegation.offered",
        ActionInfo(
            Category.APPROVAL,
            "An owner offered access to a partner, which approves it at once.",
            _("{actor} offered (and so approved) this access{with_mfa}"),
        ),
    )
    DELEGATION_APPROVED = (
        "delegation.approved",
        ActionInfo(
            Category.APPROVAL,
            "An owner approved a partner's request.",
            _("{actor} approved this access{with_mfa}"),
        ),
    )
    DELEGATION_FLEET_TURN = (
        "delegation.fleet_turn",
        ActionInfo(
            _LIFECYCLE,
            "A fleet's rate control started this account.",
            _("{actor} started this account"),
        ),
    )
    DELEGATION_APPROVE_DENIED = (
        "delegation.approve_denied",
        ActionInfo(
            Category.DENIED,
            "An approval was refused (e.g. without a recent two-factor sign-in).",
            _("{actor} tried to approve and was refused"),
        ),
    )
    DELEGATION_REJECTED = (
        "delegation.rejected",
        ActionInfo(_LIFECYCLE, "An owner rejected a request.", _("{actor} rejected the request")),
    )

    # --- fleet grants: one role in several owner accounts, decided once (`audit.fleet_actions`)
    FLEET_REQUESTED = ("fleet.requested", _FL["requested"])
    FLEET_OFFERED = ("fleet.offered", _FL["offered"])
    FLEET_APPROVED = ("fleet.approved", _FL["approved"])
    FLEET_APPROVAL_RECORDED = ("fleet.approval_recorded", _FL["approval_recorded"])
    FLEET_APPROVAL_WITHDRAWN = ("fleet.approval_withdrawn", _FL["approval_withdrawn"])
    FLEET_APPROVE_DENIED = ("fleet.approve_denied", _FL["approve_denied"])
    FLEET_REJECTED = ("fleet.rejected", _FL["rejected"])
    FLEET_STOPPED = ("fleet.stopped", _FL["stopped"])
    FLEET_RUN_FINISHED = ("fleet.run_finished", _FL["run_finished"])
    FLEET_CONTINUED = ("fleet.continued", _FL["continued"])
    FLEET_REVOKE_REQUESTED = ("fleet.revoke_requested", _FL["revoke_requested"])

    # --- approval rules: approver groups, quorum ---------------------------------------------
    APPROVER_GROUP_CREATED = _rules("approver_group.created")
    APPROVER_GROUP_UPDATED = _rules("approver_group.updated")
    APPROVER_GROUP_DELETED = _rules("approver_group.deleted")
    FOUR_EYES_CHANGED = _rules("approval_settings.four_eyes_changed")
    RULE_PROPOSED = _rules("rule_proposal.created")
    RULE_PROPOSAL_APPROVED = _rules("rule_proposal.approved")
    RULE_PROPOSAL_REJECTED = _rules("rule_proposal.rejected")
    RULE_PROPOSAL_DENIED = _rules("rule_proposal.denied")
    RULE_PROPOSAL_OUTDATED = _rules("rule_proposal.outdated")
    APPROVAL_RULE_CHANGED = _rules("approval_rule.changed")
    DELEGATION_APPROVAL_RECORDED = _rules("delegation.approval_recorded")
    DELEGATION_APPROVAL_WITHDRAWN = _rules("delegation.approval_withdrawn")
    DELEGATION_SCHEDULED_START = _rules("delegation.scheduled_start")
    DELEGATION_EXTENSION_REQUESTED = _rules("delegation.extension_requested")
    DELEGATION_EXTENSION_APPROVAL_RECORDED = _rules("delegation.extension_approval_recorded")
    DELEGATION_EXTENSION_APPROVAL_WITHDRAWN = _rules("delegation.extension_approval_withdrawn")
    DELEGATION_EXTENDED = _rules("delegation.extended")
    DELEGATION_EXTENSION_REJECTED = _rules("delegation.extension_rejected")
    DELEGATION_EXTENSION_DENIED = _rules("delegation.extension_denied")
    DELEGATION_AUTO_APPROVED = _rules("delegation.auto_approved")
    DELEGATION_REJECT_DENIED = _rules("delegation.reject_denied")
    # --- break-glass -------------------------------------------------------------------------
    BREAK_GLASS_ROLE_SET = _rules("break_glass.role_set")
    BREAK_GLASS_ROLE_SET_DENIED = _rules("break_glass.role_set_denied")
    BREAK_GLASS_ROLE_REMOVED = _rules("break_glass.role_removed")
    BREAK_GLASS_ROLE_REMOVE_DENIED = _rules("break_glass.role_remove_denied")
    BREAK_GLASS_ACTIVATED = _rules("delegation.break_glass_activated")
    BREAK_GLASS_ACTIVATION_DENIED = _rules("break_glass.activation_denied")
    BREAK_GLASS_CONFIRMED = _rules("break_glass.confirmed")
    BREAK_GLASS_REVOKED = _rules("break_glass.revoked_and_flagged")
    BREAK_GLASS_ESCALATED = _rules("break_glass.review_escalated")
    # --- access reviews across the boundary ----------------------------------------------------
    REVIEW_SCHEDULE_SET = _rules("access_review.schedule_set")
    REVIEW_CAMPAIGN_STARTED = _rules("access_review.started")
    REVIEW_DECIDED = _rules("access_review.decided")
    REVIEW_DENIED = _rules("access_review.denied")
    REVIEW_CAMPAIGN_CLOSED = _rules("access_review.closed")
    DELEGATION_SHORTENED = _rules("delegation.shortened")
    DELEGATION_REVOKE_REQUESTED = (
        "delegation.revoke_requested",
        ActionInfo(
            _LIFECYCLE,
            "Someone revoked an access; the worker then removes it in the cloud.",
            _("{actor} revoked this access"),
        ),
    )
    DELEGATION_RETRIED = (
        "delegation.retried",
        ActionInfo(
            _LIFECYCLE,
            "Someone asked the worker to try a failed delegation again.",
            _("{actor} asked the worker to try again"),
        ),
    )
    DELEGATION_RETRY_DENIED = (
        "delegation.retry_denied",
        ActionInfo(
            Category.DENIED,
            "A retry that would grant access again was refused (e.g. the role's policies now "
            "grant RAM administration without the opt-in).",
            _("{actor} tried to retry and was refused"),
        ),
    )
    DELEGATION_APPLYING = (
        "delegation.applying",
        ActionInfo(
            _LIFECYCLE,
            "The worker started putting an approved access in place in the cloud.",
            _("The worker started applying the access in the cloud"),
        ),
    )
    DELEGATION_WAITING_FOR_ROOM = (
        "delegation.waiting_for_room",
        ActionInfo(
            _LIFECYCLE,
            "An approved access waits: the role's trust policy is full (size limit).",
            _("Waiting for room in the role's full trust policy"),
        ),
    )
    DELEGATION_ACTIVATED = (
        "delegation.activated",
        ActionInfo(
            _LIFECYCLE,
            "The access is in place: verified in the role's trust policy.",
            _(
                "Active: the partner's principal is in the role's trust policy "
                "(verified in the cloud)"
            ),
        ),
    )
    DELEGATION_FAILED = (
        "delegation.failed",
        ActionInfo(
            Category.DENIED,
            "The worker could not apply or remove an access.",
            _("Failed{failed_phase}: {error_code}"),
        ),
    )
    DELEGATION_EXPIRING = (
        "delegation.expiring",
        ActionInfo(
            _LIFECYCLE,
            "An access reached its end date; the worker removes it.",
            _("The end date passed: the worker removes the access"),
        ),
    )
    DELEGATION_REVOKED = (
        "delegation.revoked",
        ActionInfo(
            _LIFECYCLE,
            "A revoked access is gone from the role's trust policy.",
            _(
                "Revoked: the partner's principal is gone from the trust policy "
                "(verified in the cloud)"
            ),
        ),
    )
    DELEGATION_EXPIRED = (
        "delegation.expired",
        ActionInfo(
            _LIFECYCLE,
            "An access ended at its end date.",
            _("Expired: the access ended at its end date"),
        ),
    )
    DELEGATION_CUT_OFF = (
        "delegation.cut_off",
        ActionInfo(_OTHER, "The owner cut a delegation off from issuing new credentials."),
    )
    DELEGATION_CUT_OFF_LIFTED = (
        "delegation.cut_off_lifted",
        ActionInfo(_OTHER, "The owner let a cut-off delegation issue credentials again."),
    )

    # --- the worker's cloud calls and drift -------------------------------------------------
    CLOUD_CALL_INTENT = (
        "cloud.call_intent",
        ActionInfo(
            Category.CLOUD,
            "The worker is about to change something in the cloud (written before the call).",
            _("About to call {cloud_action}"),
        ),
    )
    CLOUD_CALL_READ = (
        "cloud.call_read",
        ActionInfo(
            Category.CLOUD,
            "The worker read the cloud's state.",
            _("Read {cloud_action}: {cloud_outcome}"),
        ),
    )
    CLOUD_CALL_RESULT = (
        "cloud.call_result",
        ActionInfo(
            Category.CLOUD,
            "What a change in the cloud returned.",
            _("{cloud_action}: {cloud_outcome}"),
        ),
    )
    PARTNER_POLICY_FAILED = (
        "partner_policy.failed",
        ActionInfo(_OTHER, "The worker could not bring a partner user's policy up to date."),
    )
    DRIFT_DETECTED = (
        "drift.detected",
        ActionInfo(
            Category.DRIFT,
            "The cloud no longer matches what the portal put there.",
            _("Drift found: {target_label}"),
        ),
    )
    DRIFT_CLEARED = (
        "drift.cleared",
        ActionInfo(
            Category.DRIFT,
            "A drift is no longer seen in the cloud.",
            _("Drift no longer seen in the cloud: {target_label}"),
        ),
    )
    DRIFT_REPAIRED = (
        "drift.repaired",
        ActionInfo(
            Category.DRIFT,
            "An owner had the portal put its state back in the cloud.",
            _("Drift repaired: the portal's state is put back: {target_label}"),
        ),
    )
    DRIFT_ACCEPTED = (
        "drift.accepted",
        ActionInfo(
            Category.DRIFT,
            "An owner accepted the cloud's state as the new state.",
            _("Drift accepted: the portal adopts the cloud's state: {target_label}"),
        ),
    )

    # --- the partner's staff and their credentials ------------------------------------------
    STAFF_RAM_USER_LINKED = (
        "staff.ram_user_linked",
        ActionInfo(_OTHER, "A partner linked a staff member to a RAM user of its own account."),
    )
    STAFF_RAM_USER_UNLINKED = (
        "staff.ram_user_unlinked",
        ActionInfo(_OTHER, "A staff member's RAM user link was removed."),
    )
    STAFF_ASSIGNED = (
        "staff.assigned",
        ActionInfo(
            Category.STAFF,
            "A partner assigned a staff member to a delegation.",
            access=Access.ASSIGNED,
        ),
    )
    STAFF_SESSION_POLICY_CHANGED = (
        "staff.session_policy_changed",
        ActionInfo(_OTHER, "A partner changed what an assigned staff member's session may do."),
    )
    STAFF_UNASSIGNED = (
        "staff.unassigned",
        ActionInfo(
            Category.STAFF,
            "A staff member's assignment to a delegation ended.",
            access=Access.UNASSIGNED,
        ),
    )
    CREDENTIALS_ISSUE_STARTED = (
        "credentials.issue_started",
        ActionInfo(_OTHER, "A staff member asked for temporary credentials."),
    )
    CREDENTIALS_ISSUED = (
        "credentials.issued",
        ActionInfo(
            Category.CREDENTIALS,
            "Temporary credentials were issued to a staff member.",
            access=Access.CREDENTIAL_ISSUED,
        ),
    )
    CREDENTIALS_ISSUE_FAILED = (
        "credentials.issue_failed",
        ActionInfo(_OTHER, "The cloud refused to issue temporary credentials."),
    )
    CREDENTIALS_REFUSED = (
        "credentials.refused",
        ActionInfo(_OTHER, "The portal refused a request for credentials."),
    )
    CREDENTIALS_URI_CREATED = (
        "credentials.uri_created",
        ActionInfo(_OTHER, "A staff member created a credentials URI key for their tools."),
    )
    CREDENTIALS_URI_REVOKED = (
        "credentials.uri_revoked",
        ActionInfo(_OTHER, "A credentials URI key was revoked."),
    )
    CREDENTIALS_URI_UNKNOWN = (
        "credentials.uri_unknown",
        ActionInfo(_OTHER, "Someone presented a credentials URI key the portal does not know."),
    )

    # --- trust scope: whom a delegation's trust policy names --------------------------------
    TRUST_SCOPE_CHANGED = (
        "trust.scope_changed",
        ActionInfo(
            Category.APPROVAL,
            "An owner chose whom a delegation's trust policy names (whole partner account or "
            "named people), the cap on named people, or the ExternalId requirement.",
            title=_("{actor} changed whom the trust policy names for {target_label}{with_mfa}"),
        ),
    )
    TRUST_PERSON_PROPOSED = (
        "trust.person_proposed",
        ActionInfo(
            Category.STAFF,
            "A partner proposed a named person for a delegation.",
            title=_("{actor} proposed {target_label} as a named person"),
        ),
    )
    TRUST_PERSON_APPROVED = (
        "trust.person_approved",
        ActionInfo(
            Category.APPROVAL,
            "An owner approved a named person into a delegation's trust policy.",
            title=_("{actor} approved {target_label} into the trust policy{with_mfa}"),
        ),
    )
    TRUST_PERSON_REJECTED = (
        "trust.person_rejected",
        ActionInfo(
            Category.APPROVAL,
            "An owner refused a named person for a delegation.",
            title=_("{actor} refused {target_label} as a named person"),
        ),
    )
    TRUST_PERSON_DECISION_DENIED = (
        "trust.person_decision_denied",
        ActionInfo(
            Category.DENIED,
            "A decision on a named person was refused: the person may not decide the "
            "delegation (its approver groups, a member of the partner) or the grant checks "
            "failed.",
            title=_("{actor} tried to decide on {target_label} as a named person and was refused"),
        ),
    )
    TRUST_PERSON_REMOVED = (
        "trust.person_removed",
        ActionInfo(
            Category.STAFF,
            "A named person was taken out of a delegation's trust policy.",
            title=_("{actor} took {target_label} out of the trust policy"),
        ),
    )
    TRUST_EXTERNAL_ID_SHOWN = (
        "trust.external_id_shown",
        ActionInfo(_OTHER, "A partner admin was shown a delegation's ExternalId."),
    )

    # --- activity from ActionTrail (activity) -----------------------------------------------
    ACTIVITY_INGESTION_BLOCKED = (
        "activity.ingestion_blocked",
        ActionInfo(
            _OTHER,
            "ActionTrail refused the owner's key (a permission is missing): ingestion of the "
            "account's activity waits for a key that has it.",
        ),
    )
    ACTIVITY_ALERT_RAISED = (
        "activity.alert_raised",
        ActionInfo(
            _OTHER,
            "Partner activity under a delegation raised alerts (a burst of denied calls, use "
            "after the end, writes under a read-only role, sessions the portal never issued), "
            "with the owner's account whose ActionTrail recorded the calls.",
            title=_("Partner activity raised alerts: {target_label}"),
        ),
    )
    ACTIVITY_NARROWER_ROLE_PROPOSED = (
        "activity.narrower_role_proposed",
        ActionInfo(
            _OTHER,
            "An owner turned a delegation's right-sizing into a narrower catalogue role: a "
            "Custom policy with exactly the actions its sessions used.",
        ),
    )
    # --- runbooks through OOS (the runbooks app); what they say: _RUNBOOK -----------------
    RUNBOOK_CONSENT_GIVEN = ("runbook.consent_given", _RB["consent_given"])
    RUNBOOK_OOS_ROLE_READY = ("runbook.oos_role_ready", _RB["oos_role_ready"])
    RUNBOOK_OOS_ROLE_FAILED = ("runbook.oos_role_failed", _RB["oos_role_failed"])
    RUNBOOK_APPROVAL_RULE_SET = ("runbook.approval_rule_set", _RB["approval_rule_set"])
    RUNBOOK_RUN_STARTED = ("runbook.run_started", _RB["run_started"])
    RUNBOOK_RUN_APPROVED = ("runbook.run_approved", _RB["run_approved"])
    RUNBOOK_RUN_REJECTED = ("runbook.run_rejected", _RB["run_rejected"])
    RUNBOOK_RUN_SUBMITTED = ("runbook.run_submitted", _RB["run_submitted"])
    RUNBOOK_RUN_SUBMIT_FAILED = ("runbook.run_submit_failed", _RB["run_submit_failed"])
    RUNBOOK_RUN_CANCEL_REQUESTED = ("runbook.run_cancel_requested", _RB["run_cancel_requested"])
    RUNBOOK_TARGET_FINISHED = ("runbook.target_finished", _RB["target_finished"])
    RUNBOOK_RUN_FINISHED = ("runbook.run_finished", _RB["run_finished"])
    # --- notifications: chat channels and who hears what (deliveries keep their own log) ---
    NOTIFICATION_CHANNEL_CREATED = (
        "notification.channel_created",
        ActionInfo(_OTHER, "An administrator added a chat channel for notifications."),
    )
    NOTIFICATION_CHANNEL_CHANGED = (
        "notification.channel_changed",
        ActionInfo(_OTHER, "An administrator changed a notification chat channel."),
    )
    NOTIFICATION_CHANNEL_DELETED = (
        "notification.channel_deleted",
        ActionInfo(_OTHER, "An administrator deleted a notification chat channel."),
    )
    NOTIFICATION_CHANNEL_TESTED = (
        "notification.channel_tested",
        ActionInfo(_OTHER, "An administrator sent a test message to a chat channel."),
    )
    NOTIFICATION_ESCALATION_CHANGED = (
        "notification.escalation_changed",
        ActionInfo(_OTHER, "An administrator named who hears about requests left waiting."),
    )

    # --- The REST API: its tokens, service accounts and the device flow -------------------
    API_TOKEN_CREATED = (
        "api.token_created",
        ActionInfo(_OTHER, "A person or an admin created an API token (shown once)."),
    )
    API_TOKEN_REVOKED = (
        "api.token_revoked",
        ActionInfo(_OTHER, "An API token was revoked."),
    )
    API_SERVICE_ACCOUNT_CREATED = (
        "api.service_account_created",
        ActionInfo(_OTHER, "An organisation admin created a service account for automation."),
    )
    API_SERVICE_ACCOUNT_DISABLED = (
        "api.service_account_disabled",
        ActionInfo(_OTHER, "An organisation admin disabled a service account and its tokens."),
    )
    API_DEVICE_APPROVED = (
        "api.device_approved",
        ActionInfo(_OTHER, "A person confirmed a command-line sign-in (device flow)."),
    )
    API_DEVICE_DENIED = (
        "api.device_denied",
        ActionInfo(_OTHER, "A person refused a command-line sign-in (device flow)."),
    )
    API_DECISIONS_CHANGED = (
        "api.decisions_changed",
        ActionInfo(_OTHER, "An organisation admin allowed or stopped decisions through the API."),
    )
