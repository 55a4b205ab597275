"""The vocabulary of the event registry (`audit.actions`): categories, access kinds, the names a
title may use, and what each event type carries. Kept apart so the registry itself is only the
list of event types."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    LIFECYCLE = "lifecycle"
    APPROVAL = "approval"
    CLOUD = "cloud"
    DRIFT = "drift"
    STAFF = "staff"
    CREDENTIALS = "credentials"
    DENIED = "denied"
    OTHER = "other"


class Access(StrEnum):
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    CREDENTIAL_ISSUED = "credential_issued"


# The names a `title` may use; the console fills every one of them for every event.
TITLE_FIELDS = frozenset(
    {
        "actor",  # the actor's label, or "The portal"
        "target_label",
        "with_mfa",  # " with two-factor authentication" when the approval said so, else ""
        "failed_phase",  # " while <phase>" when the event names one, else ""
        "error_code",  # the error code, or "cloud error"
        "cloud_action",  # the cloud API called, e.g. "UpdateRole"
        "cloud_outcome",  # what the cloud call returned ("ok", "error"…), else the outcome
    }
)

# Stored in a 100-character column and read by prefix in the event filter ("delegation.").
ACTION_RE = re.compile(r"\A[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)+\Z")


@dataclass(frozen=True)
class ActionInfo:
    category: Category
    description: str
    title: str | None = None
    access: Access | None = None
