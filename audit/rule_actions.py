"""What the auditor's console knows about the approval-rules events: approver
groups, quorum, four eyes, scheduled and extended access, auto-approval, break-glass and access
reviews. `audit.actions.AuditAction` names each of them (its value is the ledger's string);
their descriptions and titles live here, by value, so the registry stays one list.
"""

from __future__ import annotations

from django.utils.translation import gettext_noop as _

from audit.action_info import ActionInfo, Category

_LIFECYCLE = Category.LIFECYCLE
_OTHER = Category.OTHER

RULE_ACTIONS: dict[str, ActionInfo] = {
    "approver_group.created": ActionInfo(_OTHER, "An owner admin created an approver group."),
    "approver_group.updated": ActionInfo(
        _OTHER, "An owner admin changed an approver group's members or scope."
    ),
    "approver_group.deleted": ActionInfo(_OTHER, "An owner admin deleted an approver group."),
    "approval_settings.four_eyes_changed": ActionInfo(
        _OTHER, "Four eyes on approval-rule changes was turned on or off."
    ),
    "rule_proposal.created": ActionInfo(
        _OTHER, "An owner admin proposed a change of approval rules (four eyes)."
    ),
    "rule_proposal.approved": ActionInfo(
        Category.APPROVAL,
        "A second owner admin approved a proposed change of approval rules; it took effect.",
        _("{actor} approved a proposed change of approval rules"),
    ),
    "rule_proposal.rejected": ActionInfo(
        _OTHER, "A proposed change of approval rules was rejected."
    ),
    "rule_proposal.outdated": ActionInfo(
        Category.DENIED,
        "A rule proposal was refused when approved: its rule changed or went after it was "
        "written, so its diff no longer said what it would change. It must be proposed again.",
        _("{actor} tried to approve an outdated rule proposal"),
    ),
    "rule_proposal.denied": ActionInfo(
        Category.DENIED,
        "A decision on a rule proposal was refused (e.g. its own author approving it).",
        _("{actor} tried to decide a rule proposal and was refused"),
    ),
    "approval_rule.changed": ActionInfo(
        _OTHER, "An owner admin changed how many approvals a catalogue role needs."
    ),
    "partner_allowance.add_denied": ActionInfo(
        Category.DENIED,
        "Putting a partner on the allow-list was refused: some of the owner's admins belong to "
        "it, and without them a role's quorum could not be reached for its requests.",
        _("{actor} tried to put {target_label} on the allow-list and was refused"),
    ),
    "delegation.approval_recorded": ActionInfo(
        Category.APPROVAL,
        "An approver approved a request that needs more approvals before it is granted.",
        _("{actor} gave one of the approvals this access needs{with_mfa}"),
    ),
    "delegation.approval_withdrawn": ActionInfo(
        Category.APPROVAL,
        "An approver took back their own approval of a request still waiting for its quorum; "
        "it needs another approval again.",
        _("{actor} withdrew their approval of this access"),
    ),
    "delegation.scheduled_start": ActionInfo(
        _LIFECYCLE,
        "A scheduled grant's start arrived: the portal began applying it.",
        _("The scheduled start arrived; the access is being applied"),
    ),
    "delegation.extension_requested": ActionInfo(
        _LIFECYCLE,
        "A partner asked to move a delegation's end later.",
        _("{actor} asked for more time"),
    ),
    "delegation.extension_approval_recorded": ActionInfo(
        Category.APPROVAL,
        "An approver approved an extension that needs more approvals.",
        _("{actor} gave one of the approvals the extension needs{with_mfa}"),
    ),
    "delegation.extension_approval_withdrawn": ActionInfo(
        Category.APPROVAL,
        "An approver took back their own approval of an extension still waiting for its "
        "quorum; it needs another approval again.",
        _("{actor} withdrew their approval of the extension"),
    ),
    "delegation.extended": ActionInfo(
        Category.APPROVAL,
        "An extension was approved: the delegation's end moved later, without a gap.",
        _("{actor} approved more time{with_mfa}"),
    ),
    "delegation.extension_rejected": ActionInfo(
        _LIFECYCLE,
        "An extension was rejected (or lapsed): access ends as planned.",
        _("{actor} turned down the extension"),
    ),
    "delegation.extension_denied": ActionInfo(
        Category.DENIED,
        "A decision on an extension was refused (outside the approver group, twice…).",
        _("{actor} tried to decide an extension and was refused"),
    ),
    "delegation.auto_approved": ActionInfo(
        Category.APPROVAL,
        "A request was approved automatically by the catalogue role's auto-approval rule "
        "(the event names the rule and its version).",
        _("Approved automatically by the role's rule"),
    ),
    "delegation.reject_denied": ActionInfo(
        Category.DENIED,
        "A rejection was refused (e.g. by someone outside the approver group).",
        _("{actor} tried to reject and was refused"),
    ),
    "break_glass.role_set": ActionInfo(
        _OTHER, "An owner admin marked or changed a partner's emergency role."
    ),
    "break_glass.role_set_denied": ActionInfo(
        Category.DENIED,
        "Marking an emergency role was refused: it needs what approving the role for that "
        "partner needs (an owner admin outside the partner, in the approver groups attached).",
        _("{actor} tried to mark an emergency role and was refused"),
    ),
    "break_glass.role_removed": ActionInfo(
        _OTHER, "An owner admin stopped offering an emergency role to a partner."
    ),
    "break_glass.role_remove_denied": ActionInfo(
        Category.DENIED,
        "No longer offering an emergency role was refused: it needs what marking it needs.",
        _("{actor} tried to stop offering an emergency role and was refused"),
    ),
    "delegation.break_glass_activated": ActionInfo(
        Category.APPROVAL,
        "A partner's named person activated an emergency role themselves, with a written "
        "reason; the access applies at once and waits for an owner admin's review.",
        _("{actor} activated break-glass access{with_mfa}"),
    ),
    "break_glass.activation_denied": ActionInfo(
        Category.DENIED,
        "A break-glass activation was refused (a person not named, the role withdrawn, an "
        "activation already live…).",
        _("{actor} tried to activate break-glass access and was refused"),
    ),
    "break_glass.confirmed": ActionInfo(
        Category.APPROVAL,
        "An owner admin reviewed a break-glass activation and confirmed it was justified.",
        _("{actor} confirmed the break-glass activation"),
    ),
    "break_glass.revoked_and_flagged": ActionInfo(
        _LIFECYCLE,
        "An owner admin reviewed a break-glass activation, revoked the access and flagged it.",
        _("{actor} revoked and flagged the break-glass activation"),
    ),
    "break_glass.review_escalated": ActionInfo(
        _OTHER, "Break-glass access nobody reviewed in time was escalated."
    ),
    "access_review.schedule_set": ActionInfo(
        _OTHER, "An owner admin scheduled access reviews or changed the schedule."
    ),
    "access_review.started": ActionInfo(
        _OTHER,
        "An access review started: each granted delegation (active, or approved for a later "
        "start) was put to its approvers and each partner's admins were asked to confirm "
        "their assigned staff.",
    ),
    "access_review.decided": ActionInfo(
        Category.APPROVAL,
        "A reviewer answered an access review question (keep, shorten, revoke, unassign).",
        _("{actor} answered the access review"),
    ),
    "access_review.denied": ActionInfo(
        Category.DENIED,
        "An access review answer was refused (not an approver of that access, another "
        "organisation's question…).",
        _("{actor} tried to answer an access review and was refused"),
    ),
    "access_review.closed": ActionInfo(
        _OTHER, "An access review's deadline passed: its default outcome applied."
    ),
    "delegation.shortened": ActionInfo(
        _LIFECYCLE,
        "An owner's approver moved a delegation's end earlier (an access review's answer).",
        _("{actor} shortened the access"),
    ),
}
