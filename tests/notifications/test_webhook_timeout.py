"""A chat or webhook post waits on its receiver no longer than PORTAL_WEBHOOK_TIMEOUT_SECONDS
at a time, which the settings keep well within the claim it is sent under (and refuse
otherwise), as EMAIL_TIMEOUT."""

from __future__ import annotations

import pytest
from django.conf import settings

from tests.notifications.test_mail_timeout import settings_with


@pytest.mark.parametrize("webhook_timeout", ["31", "0", "-1"])
def test_settings_refuse_a_webhook_timeout_a_post_could_outlast_a_claim_with(
    webhook_timeout: str,
) -> None:
    refused = settings_with("PORTAL_WEBHOOK_TIMEOUT_SECONDS", webhook_timeout)
    assert refused.returncode != 0
    assert "ImproperlyConfigured: PORTAL_WEBHOOK_TIMEOUT_SECONDS must be" in refused.stderr


def test_settings_take_a_webhook_timeout_well_within_the_claim() -> None:
    taken = settings_with("PORTAL_WEBHOOK_TIMEOUT_SECONDS", "20")
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.strip() == "20.0"


def test_the_receiver_is_given_up_on_well_within_a_claim() -> None:
    timeout = settings.PORTAL_WEBHOOK_TIMEOUT_SECONDS
    assert 0 < timeout * 4 <= settings.PORTAL_NOTIFICATION_CLAIM_SECONDS
