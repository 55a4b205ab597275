"""What the API does when accounts announces an event (`accounts.hooks`).

Connected by `ApiConfig.ready()`. This module is imported while apps load, so it reaches the
token model through the app registry rather than importing `api.models`."""

from typing import Any

from django.apps import apps
from django.utils import timezone


def on_member_removed(sender: Any, *, membership: Any, removed_by: Any, **kwargs: Any) -> None:
    """A removed member's tokens limited to that organisation end with the membership (the
    token check refuses them anyway; this makes the token list say so). Inside the removal's
    transaction: it rolls back with it."""
    api_token = apps.get_model("api", "ApiToken")
    api_token.objects.filter(
        user_id=membership.user_id,
        organisation_id=membership.organisation_id,
        revoked_at__isnull=True,
    ).update(revoked_at=timezone.now())
