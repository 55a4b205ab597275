"""What the registry (`audit.actions`) says of the runbook events (issue 12), by their name
after "runbook.": category, description, title."""

from __future__ import annotations

from audit.action_info import ActionInfo, Category

_APPROVAL, _CLOUD, _LIFECYCLE = Category.APPROVAL, Category.CLOUD, Category.LIFECYCLE

_RUNBOOK = {
    "consent_given": (_APPROVAL, "A partner admin allowed runbooks.", "{actor} allowed runbooks"),
    "oos_role_ready": (_CLOUD, "OOSServiceRole is set up.", "OOSServiceRole ready"),
    "oos_role_failed": (_CLOUD, "OOSServiceRole set-up failed.", "OOSServiceRole: {error_code}"),
    "approval_rule_set": (_APPROVAL, "Approval per run changed.", "{actor} set run approval"),
    "run_started": (_LIFECYCLE, "A partner started a run.", "{actor} started {target_label}"),
    "run_approved": (_APPROVAL, "An owner approved a run.", "{actor} approved it{with_mfa}"),
    "run_rejected": (_APPROVAL, "An owner rejected a run.", "{actor} rejected {target_label}"),
    "run_submitted": (_LIFECYCLE, "OOS started a run.", "{target_label} started in OOS"),
    "run_submit_failed": (_CLOUD, "OOS refused to start a run.", "OOS refused: {error_code}"),
    "run_cancel_requested": (_LIFECYCLE, "A run was stopped.", "{actor} stopped {target_label}"),
    "target_finished": (_LIFECYCLE, "One account and region ended.", "{target_label} ended"),
    "run_finished": (_LIFECYCLE, "A run's OOS execution ended.", "{target_label} ended"),
}
RUNBOOK_INFO = {key: ActionInfo(c, text, title=title) for key, (c, text, title) in _RUNBOOK.items()}
