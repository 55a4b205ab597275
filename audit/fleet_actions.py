"""What the registry (`audit.actions`) says of the fleet-grant events (one role in several
owner accounts, decided once), by their name after "fleet.": category, description, title."""

from __future__ import annotations

from django.utils.translation import gettext_noop as _

from audit.action_info import ActionInfo, Category

_APPROVAL, _DENIED, _LIFECYCLE = Category.APPROVAL, Category.DENIED, Category.LIFECYCLE

_FLEET = {
    "requested": (
        _LIFECYCLE,
        "A partner asked for a role in several accounts.",
        _("{actor} requested the fleet"),
    ),
    "offered": (
        _APPROVAL,
        "An owner offered a role in several accounts.",
        _("{actor} offered it{with_mfa}"),
    ),
    "approved": (
        _APPROVAL,
        "An owner approved every account of a fleet.",
        _("{actor} approved{with_mfa}"),
    ),
    "approval_recorded": (
        _APPROVAL,
        "An approver approved every account of a fleet whose quorum needs more approvals; the "
        "fleet waits for them.",
        _("{actor} approved, more needed"),
    ),
    "approval_withdrawn": (
        _APPROVAL,
        "An approver took back their own approval of every account of a fleet still waiting "
        "for its quorum; it needs another approval again.",
        _("{actor} withdrew their approval of the fleet"),
    ),
    "approve_denied": (_DENIED, "A decision on a fleet was refused.", _("{actor} was refused")),
    "rejected": (_LIFECYCLE, "An owner rejected a fleet grant.", _("{actor} rejected the fleet")),
    "stopped": (
        _LIFECYCLE,
        "More accounts failed than MaxErrors; the rest waits.",
        _("{actor} stopped the fleet"),
    ),
    "run_finished": (
        _LIFECYCLE,
        "A fleet's run ended, with each account's outcome.",
        _("{actor} finished the run"),
    ),
    "continued": (
        _LIFECYCLE,
        "An owner started the accounts a stopped fleet had not.",
        _("{actor} continued"),
    ),
    "revoke_requested": (
        _LIFECYCLE,
        "An owner revoked a fleet grant in every account.",
        _("{actor} revoked the fleet"),
    ),
}
FLEET_INFO = {key: ActionInfo(c, text, title=title) for key, (c, text, title) in _FLEET.items()}
