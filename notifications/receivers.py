"""Receivers for the events accounts announces (`accounts.hooks`), connected in
`NotificationsConfig.ready()`. They forward to a service; no logic here."""

from typing import Any

from accounts.models import Membership, User
from notifications.people import member_removed_notify


def on_member_removed(
    sender: type[Membership], *, membership: Membership, removed_by: User, **kwargs: Any
) -> None:
    member_removed_notify(membership=membership, removed_by=removed_by)
