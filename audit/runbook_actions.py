"""What the registry (`audit.actions`) says of the runbook events, by their name
after "runbook.": category, description, title."""

from __future__ import annotations

from django.utils.translation import gettext_noop as _

from audit.action_info import ActionInfo, Category

_APPROVAL, _CLOUD, _LIFECYCLE = Category.APPROVAL, Category.CLOUD, Category.LIFECYCLE

_RUNBOOK = {
    "consent_given": (
        _APPROVAL,
        "A partner admin allowed runbooks.",
        _("{actor} allowed runbooks"),
    ),
    "oos_role_ready": (_CLOUD, "OOSServiceRole is set up.", _("OOSServiceRole ready")),
    "oos_role_failed": (_CLOUD, "OOSServiceRole set-up failed.", _("OOSServiceRole: {error_code}")),
    "approval_rule_set": (_APPROVAL, "Approval per run changed.", _("{actor} set run approval")),
    "run_started": (_LIFECYCLE, "A partner started a run.", _("{actor} started {target_label}")),
    "run_approved": (_APPROVAL, "An owner approved a run.", _("{actor} approved it{with_mfa}")),
    "run_rejected": (_APPROVAL, "An owner rejected a run.", _("{actor} rejected {target_label}")),
    "run_submitted": (_LIFECYCLE, "OOS started a run.", _("{target_label} started in OOS")),
    "run_submit_failed": (_CLOUD, "OOS refused to start a run.", _("OOS refused: {error_code}")),
    "run_cancel_requested": (_LIFECYCLE, "A run was stopped.", _("{actor} stopped {target_label}")),
    "target_finished": (_LIFECYCLE, "One account and region ended.", _("{target_label} ended")),
    "run_finished": (_LIFECYCLE, "A run's OOS execution ended.", _("{target_label} ended")),
}
RUNBOOK_INFO = {key: ActionInfo(c, text, title=title) for key, (c, text, title) in _RUNBOOK.items()}
