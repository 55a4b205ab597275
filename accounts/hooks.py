"""Events accounts announces so the apps built on it can act, without accounts importing them.

accounts sits below delegations in the floor plan, yet removing a member has consequences
there (a partner's staff member loses their assignments). So accounts sends the event and the
app above connects a receiver in its `AppConfig.ready()`.

Receivers run synchronously inside the sender's transaction (`Signal.send`, not
`send_robust`): one that raises rolls the whole change back, audit events included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.dispatch import Signal

if TYPE_CHECKING:
    from accounts.models import Membership, Organisation, User

# Sent by `accounts.services.membership_remove` after it locked the membership and before it
# writes its own audit event and deletes the row. Keyword arguments: `membership` (the locked
# `Membership`, its user still attached) and `removed_by` (the acting `User`).
member_removed = Signal()

# Sent by `accounts.invitations.invitation_create` once the invitation row and its audit event
# are written, inside the same transaction. Keyword arguments: `invitation` (the new
# `Invitation`) and `invited_by` (the acting `User`).
member_invited = Signal()

# Sent by `accounts.services.membership_remove` and `membership_change_role` when an admin is
# about to be removed or to stop being an admin, under the organisation's row lock, before
# anything is written. Keyword arguments: `membership` (the locked `Membership`, still an
# admin) and `changed_by` (the acting `User`). A receiver refuses the change by raising
# `ValidationError` (an approver the approval rules cannot do without); accounts rolls the
# change back, audits the refusal and raises `AdminStillNeeded`.
admin_leaving = Signal()


class AdminStillNeeded(ValidationError):
    """An admin's removal or demotion that an app above accounts refused."""


def admin_leaving_announce(*, membership: Membership, changed_by: User) -> None:
    """Let the apps above refuse the removal or demotion of `membership`, an admin's."""
    try:
        admin_leaving.send(sender=type(membership), membership=membership, changed_by=changed_by)
    except ValidationError as refusal:
        raise AdminStillNeeded(refusal.messages) from refusal


# Sent by `accounts.services.membership_create` and `organisation_register`, and by
# `accounts.invitations` when an invitation is accepted, when a person is about to join an
# organisation, under the organisation's row lock, before anything is written. Keyword
# arguments: `organisation` (the locked `Organisation`), `user` (the `User` joining) and
# `added_by` (the acting `User`, the person themselves when they accept; None for the system).
# A receiver refuses the join by raising `ValidationError` (an owner admin the approval rules
# cannot spare as a decider of that partner's requests); accounts rolls the change back,
# audits the refusal and raises `JoinRefused`.
member_joining = Signal()


class JoinRefused(ValidationError):
    """A person's joining an organisation that an app above accounts refused."""


def member_joining_announce(
    *, organisation: Organisation, user: User, added_by: User | None
) -> None:
    """Let the apps above refuse `user` joining `organisation`."""
    try:
        member_joining.send(
            sender=type(organisation), organisation=organisation, user=user, added_by=added_by
        )
    except ValidationError as refusal:
        raise JoinRefused(refusal.messages) from refusal
