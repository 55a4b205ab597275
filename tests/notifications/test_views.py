"""The notification pages: admins manage channels (bad input is a form error and saves
nothing; foreign ids are 404; non-admins 403), everyone sets their email preferences, and
channel changes are audited without their secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.urls import reverse

from accounts.models import Organisation, User
from audit.models import AuditEvent
from notifications import services
from notifications.models import Channel, Delivery, Preference

pytestmark = pytest.mark.django_db

URL = "http://127.0.0.1:9/hook?key=SLACKKEY0123456789"


@pytest.fixture(autouse=True)
def _embedded(settings: Any) -> None:
    settings.PORTAL_EMBEDDED = True


def _form(**overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "kind": "slack",
        "name": "Ops room",
        "url": URL,
        "secret": "",
        "events": ["delegation.requested", "delegation.failed"],
    }
    data.update(overrides)
    return data


def test_an_admin_adds_a_channel_and_it_is_audited_without_its_secrets(
    login: Any, owner_admin: User, company_a: Organisation
) -> None:
    client = login(owner_admin)
    response = client.post(
        reverse("notifications:channel_add"), _form(secret="SECsigning-secret-1")
    )
    channel = Channel.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("notifications:channel", args=[channel.pk])
    assert channel.organisation == company_a and channel.has_secret
    assert "SLACKKEY" not in channel.url_ciphertext and "SLACKKEY" not in channel.url_hint
    page = client.get(response["Location"]).content.decode()
    assert "SLACKKEY" not in page and "SECsigning-secret-1" not in page
    event = AuditEvent.objects.get(action="notification.channel_created")
    dumped = json.dumps([event.before, event.after, event.metadata])
    assert "SLACKKEY" not in dumped and "SECsigning" not in dumped


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"url": "not a url"}, "url"),
        ({"url": "https://" + "a" * 2100}, "url"),
        ({"url": "ftp://example.com/x"}, "url"),
        ({"secret": "bad secret with spaces"}, "secret"),
        ({"name": ""}, "name"),
        ({"kind": "telegram"}, "kind"),
        ({"events": ["no.such.event"]}, "events"),
    ],
)
def test_bad_input_is_a_form_error_and_nothing_is_saved(
    login: Any, owner_admin: User, overrides: dict[str, object], field: str
) -> None:
    response = login(owner_admin).post(reverse("notifications:channel_add"), _form(**overrides))
    assert response.status_code == 400
    assert field in response.context["form"].errors
    assert not Channel.objects.exists()
    assert not AuditEvent.objects.filter(action="notification.channel_created").exists()


def test_private_addresses_are_refused_in_production(
    settings: Any, login: Any, owner_admin: User
) -> None:
    settings.PORTAL_EMBEDDED = False
    settings.DEBUG = False
    response = login(owner_admin).post(
        reverse("notifications:channel_add"), _form(url="https://127.0.0.1/hook"), secure=True
    )
    assert response.status_code == 400
    assert "private" in str(response.context["form"].errors["url"])
    assert not Channel.objects.exists()


@pytest.fixture
def channel(company_a: Organisation, owner_admin: User) -> Channel:
    return services.channel_create(
        organisation=company_a,
        created_by=owner_admin,
        kind="webhook",
        name="Hook",
        url=URL,
        events=["delegation.requested"],
    )


def test_edit_test_and_delete_are_audited(login: Any, owner_admin: User, channel: Channel) -> None:
    client = login(owner_admin)
    page = reverse("notifications:channel", args=[channel.pk])
    response = client.post(
        page, {"name": "Renamed", "events": ["delegation.failed"], "is_active": "on"}
    )
    assert response.status_code == 302
    channel.refresh_from_db()
    assert channel.name == "Renamed" and channel.events == ["delegation.failed"]
    assert client.post(reverse("notifications:channel_test", args=[channel.pk])).status_code == 302
    test_delivery = Delivery.objects.get(channel=channel, event="channel.test")
    assert test_delivery.status == "pending"
    assert "Test message" in client.get(page).content.decode()
    assert (
        client.post(reverse("notifications:channel_delete", args=[channel.pk])).status_code == 302
    )
    assert not Channel.objects.exists()
    assert list(
        AuditEvent.objects.filter(action__startswith="notification.")
        .order_by("sequence")
        .values_list("action", flat=True)
    ) == [
        "notification.channel_created",
        "notification.channel_changed",
        "notification.channel_tested",
        "notification.channel_deleted",
    ]


def test_another_organisation_s_channel_is_404_and_non_admins_are_refused(
    login: Any, foreign_owner_admin: User, auditor: User, channel: Channel
) -> None:
    foreign = login(foreign_owner_admin)
    for name in ("channel", "channel_test", "channel_delete"):
        assert foreign.post(reverse(f"notifications:{name}", args=[channel.pk])).status_code == 404
    assert foreign.get(reverse("notifications:channel", args=[channel.pk])).status_code == 404
    reader = login(auditor)
    assert reader.get(reverse("notifications:channel_add")).status_code == 403
    assert (
        reader.post(reverse("notifications:channel_delete", args=[channel.pk])).status_code == 403
    )
    assert Channel.objects.filter(pk=channel.pk).exists()


def test_everyone_chooses_their_emails_but_cannot_mute_security_notices(
    login: Any, partner_staff: User
) -> None:
    client = login(partner_staff)
    page = client.get(reverse("notifications:index")).content.decode()
    assert "Email to you" in page and "Credentials issued to you" not in page
    response = client.post(reverse("notifications:preferences"), {"email": ["delegation.revoked"]})
    assert response.status_code == 302
    muted = Preference.objects.get(user=partner_staff).email_muted
    assert "delegation.revoked" not in muted and "delegation.approved" in muted
    assert "credentials.issued" not in muted
    refused = client.post(reverse("notifications:preferences"), {"email": ["credentials.issued"]})
    assert refused.status_code == 400


def test_the_escalation_contact_is_a_member_of_the_owner(
    login: Any, owner_admin: User, auditor: User, foreign_owner_admin: User, company_a: Organisation
) -> None:
    client = login(owner_admin)
    url = reverse("notifications:escalation")
    assert client.post(url, {"contact": foreign_owner_admin.pk}).status_code == 400
    assert client.post(url, {"contact": auditor.pk}).status_code == 302
    assert AuditEvent.objects.filter(action="notification.escalation_changed").count() == 1


def test_a_failed_delivery_can_be_retried_by_an_admin(
    login: Any, owner_admin: User, channel: Channel, company_a: Organisation
) -> None:
    delivery = Delivery.objects.create(
        idempotency_key="x",
        event="delegation.requested",
        organisation=company_a,
        channel=channel,
        content={"title": "T"},
        status="failed",
        last_error="HTTP 500",
    )
    client = login(owner_admin)
    url = reverse("notifications:delivery_retry", args=[channel.pk])
    assert client.post(url, {"delivery": delivery.pk}).status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert client.post(url, {"delivery": "nope"}).status_code == 404


def test_the_dev_webhook_inbox_shows_what_arrived_and_refuses_strangers(
    client: Any, settings: Any
) -> None:
    from notifications import devhooks

    assert (
        client.post(
            "/dev/webhooks/receive/wrong-token/", data="{}", content_type="application/json"
        ).status_code
        == 403
    )
    ok = client.post(
        f"/dev/webhooks/receive/{devhooks.receive_token()}/",
        data=json.dumps({"title": "Company B requests ecs-admin"}),
        content_type="application/json",
        headers={"X-Portal-Event": "delegation.requested"},
    )
    assert ok.status_code == 200
    page = client.get(reverse("dev_webhooks")).content.decode()
    assert "Company B requests ecs-admin" in page
    settings.PORTAL_EMBEDDED = False
    settings.DEBUG = False
    assert client.get(reverse("dev_webhooks"), secure=True).status_code == 404


def test_the_dev_webhook_inbox_page_never_shows_its_receiving_token(client: Any) -> None:
    from notifications import devhooks

    page = client.get(reverse("dev_webhooks")).content.decode()
    assert "/dev/webhooks/receive/" in page and devhooks.receive_token() not in page
