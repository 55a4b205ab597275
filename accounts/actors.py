"""Who acts when it is not a person: a service account of the API (a person-less identity of
an organisation, for CI pipelines).

The services that a service account may call (filing and withdrawing a request, never a
decision) take `User | ServiceActor`; everything else keeps taking a `User`, so a decision by
a service account cannot even be written. The audit log names it "service account <name>",
and the API's audit origin (`source = api:token:<prefix>`) names the token it used.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.utils.translation import gettext as _

if TYPE_CHECKING:
    from accounts.models import Organisation, User


@dataclass(frozen=True)
class ServiceActor:
    """A service account acting for its own organisation: `account_id` is its row in the API's
    tables (kept in audit metadata), `name` what people called it."""

    account_id: uuid.UUID
    name: str
    organisation: Organisation

    @property
    def label(self) -> str:
        # Not translated: the audit log keeps one wording whatever language the caller reads.
        return f"service account {self.name}"

    def __str__(self) -> str:
        return self.label


def actor_user(actor: User | ServiceActor | None) -> User | None:
    """The person behind `actor`, or None for a service account (or nobody)."""
    return None if actor is None or isinstance(actor, ServiceActor) else actor


def service_label(actor: User | ServiceActor | None) -> str | None:
    """How records name a service account (no person row to point at); None for a person,
    whose row the records point at instead."""
    return actor.label if isinstance(actor, ServiceActor) else None


def require_service_actor_of(*, actor: ServiceActor, organisation: Organisation) -> None:
    """A service account acts for its own organisation only."""
    if actor.organisation.pk != organisation.pk:
        raise PermissionDenied(
            _("A service account acts for its own organisation only (%(org)s).")
            % {"org": actor.organisation}
        )
