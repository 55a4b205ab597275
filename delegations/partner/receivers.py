"""Receivers for the events accounts announces (`accounts.hooks`), connected in
`DelegationsConfig.ready()`. They forward to the partner services; no logic here."""

from typing import Any

from accounts.models import Membership, User
from delegations.partner.services import staff_member_removed


def on_member_removed(
    sender: type[Membership], *, membership: Membership, removed_by: User, **kwargs: Any
) -> None:
    staff_member_removed(membership=membership, removed_by=removed_by)
