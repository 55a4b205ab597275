"""`make run`'s chat notifications without the internet: each demo organisation gets one
generic webhook channel posting to the portal's own local webhook inbox (`/dev/webhooks/`)."""

from django.urls import reverse
from django.utils.crypto import salted_hmac

from accounts.models import Organisation
from demo.people import first_admin
from notifications.devhooks import receive_url
from notifications.events import channel_event_choices
from notifications.models import Channel
from notifications.services import absolute_url, channel_create
from notifications.webhook_urls import local_targets_allowed

CHANNEL_NAME = "Local webhook inbox"


def demo_webhook_channels_seed(*, organisations: list[Organisation]) -> list[str]:
    """Add the channel where it is missing (only where the portal may post to loopback)."""
    if not local_targets_allowed():
        return []
    for organisation in organisations:
        if Channel.objects.filter(organisation=organisation, name=CHANNEL_NAME).exists():
            continue
        admin = first_admin(organisation)
        if admin is None:
            continue
        channel_create(
            organisation=organisation,
            created_by=admin,
            kind=Channel.Kind.WEBHOOK,
            name=CHANNEL_NAME,
            url=receive_url(),
            # Signed like a real receiver would want it; derived, so nothing to store or show.
            secret=salted_hmac("demo.webhook_channel", organisation.slug).hexdigest()[:32],
            events=[value for value, _label in channel_event_choices()],
        )
    return [f"Chat notifications (local webhook inbox): {absolute_url(reverse('dev_webhooks'))}"]
