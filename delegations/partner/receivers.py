"""Receivers for the events accounts announces (`accounts.hooks`), connected in
`DelegationsConfig.ready()`. They forward to services; no logic here."""

from typing import Any

from accounts.models import Invitation, Membership, Organisation, User
from delegations.approvals.services import (
    owner_admin_leaving_validate,
    partner_member_joining_validate,
)
from delegations.partner.services import staff_member_removed
from notifications.people import member_invited_notify, member_removed_notify


def on_member_removed(
    sender: type[Membership], *, membership: Membership, removed_by: User, **kwargs: Any
) -> None:
    staff_member_removed(membership=membership, removed_by=removed_by)
    # accounts cannot call notifications (it sits below): the one receiver tells them too.
    member_removed_notify(membership=membership, removed_by=removed_by)


def on_admin_leaving(
    sender: type[Membership], *, membership: Membership, changed_by: User, **kwargs: Any
) -> None:
    owner_admin_leaving_validate(owner=membership.organisation, user=membership.user)


def on_member_joining(
    sender: type[Organisation],
    *,
    organisation: Organisation,
    user: User,
    added_by: User | None,
    **kwargs: Any,
) -> None:
    partner_member_joining_validate(partner=organisation, user=user)


def on_member_invited(
    sender: type[Invitation], *, invitation: Invitation, invited_by: User, **kwargs: Any
) -> None:
    member_invited_notify(invitation=invitation, invited_by=invited_by)
