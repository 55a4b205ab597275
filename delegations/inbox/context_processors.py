"""The inbox in every page's context, computed only when a template reads it. Tolerates
requests without a user or a membership (error pages, sign-in, middleware that never ran)."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from delegations.inbox.selectors import InboxItem, inbox_for


def inbox(request: HttpRequest) -> dict[str, Any]:
    membership = getattr(request, "membership", None)
    user = getattr(request, "user", None)
    if membership is None or user is None or not user.is_authenticated:
        return {"inbox": []}

    def items() -> list[InboxItem]:
        return inbox_for(membership=membership)

    return {"inbox": SimpleLazyObject(items)}
