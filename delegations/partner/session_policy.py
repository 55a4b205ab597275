"""Session policies: what one assigned person's credentials may do, narrowed from the role.

`session_policy_build` turns a form's choice into the minified document AssumeRole's Policy
parameter carries; the assignment services store it. Kept apart from the services so the
rules for a document read on their own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from cloud import policies
from delegations.models import StaffAssignment

PolicyKind = StaffAssignment.SessionPolicyKind

CUSTOM_POLICY_MAX_INPUT = 8192
MAX_ECS_INSTANCE_IDS = 20


def session_policy_build(
    *,
    kind: str,
    owner_account_uid: str,
    ecs_instance_ids: Iterable[str] | str = (),
    custom_policy: str = "",
) -> tuple[str, str, list[str]]:
    """(kind, minified document, instance ids) for an assignment; ValidationError on bad input
    (nothing is written). The document is what AssumeRole's Policy parameter carries."""
    if kind not in PolicyKind.values:
        raise ValidationError(
            {"session_policy_kind": _("Choose one of the session policy options.")}
        )
    if kind == PolicyKind.NONE:
        return "", "", []
    if kind == PolicyKind.READ_ONLY:
        document = policies.read_only_ecs_session_policy()
        return kind, policies.parse_session_policy(policies.policy_to_text(document)), []
    if kind == PolicyKind.ECS_INSTANCES:
        if isinstance(ecs_instance_ids, str):
            ids = [part for part in re.split(r"[\s,]+", ecs_instance_ids.strip()) if part]
        else:
            ids = [str(part).strip() for part in ecs_instance_ids if str(part).strip()]
        ids = sorted(set(ids))
        if not ids:
            raise ValidationError({"ecs_instance_ids": _("List at least one ECS instance id.")})
        if len(ids) > MAX_ECS_INSTANCE_IDS:
            raise ValidationError(
                {
                    "ecs_instance_ids": _("List at most %(n)s instance ids.")
                    % {"n": MAX_ECS_INSTANCE_IDS}
                }
            )
        try:
            document = policies.ecs_instances_session_policy(ids, account_uid=owner_account_uid)
        except policies.PolicyError as error:
            raise ValidationError({"ecs_instance_ids": str(error)}) from None
        return kind, policies.parse_session_policy(policies.policy_to_text(document)), ids
    text = custom_policy or ""
    if len(text) > CUSTOM_POLICY_MAX_INPUT:
        raise ValidationError(
            {
                "custom_policy": _(
                    "A session policy may be at most %(limit)s "
                    "characters once minified; this is far longer."
                )
                % {"limit": policies.MAX_SESSION_POLICY_LENGTH}
            }
        )
    try:
        return kind, policies.parse_session_policy(text), []
    except policies.PolicyError as error:
        raise ValidationError({"custom_policy": str(error)}) from None
