"""SE-02 / SE-04: issued STS secrets, security tokens and credentials-URI keys appear exactly
where they are revealed once, and nowhere else: not in logs, other pages, cookies, sessions,
any database table, the cache, the broker's messages or outbox rows, or audit events.

The run goes through the whole partner side with the Django test client: link, assign, the
worker's policy runs, My access, Get credentials (the one reveal), a credentials URI (its one
reveal) fetched twice (each JSON answer is the reveal of those credentials), the owner's
issuances page, unassign, a refused fetch, the audit history.
"""

from __future__ import annotations

import json
import logging
import re
from html import unescape

import pytest
from django.contrib.messages.storage.cookie import CookieStorage
from django.contrib.sessions.backends.db import SessionStore
from django.core.cache import cache
from django.db import connection
from django.test import RequestFactory
from django.urls import reverse

from delegations.models import CredentialIssuance
from delegations.outbox import outbox_publish as real_outbox_publish
from delegations.partner import services
from delegations.partner.log_redaction import REDACTED, RedactCredentialsUriKeys
from delegations.worker.tasks import run_outbox_message
from tests.fixtures.partner import PartnerWorld


def _every_table() -> str:
    """Every row of every table, as text."""
    dump = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - names from the schema
            dump.extend(f"{table}: {row!r}" for row in cursor.fetchall())
    return "\n".join(dump)


def _sessions() -> str:
    from django.contrib.sessions.models import Session

    return "\n".join(
        repr(SessionStore(session_key=s.session_key).load()) for s in Session.objects.all()
    )


def _cookies(responses) -> str:
    storage = CookieStorage(RequestFactory().get("/"))
    found = []
    for response in responses:
        for name, morsel in response.cookies.items():
            found.append(f"{name}={morsel.value}")
            if name == storage.cookie_name and morsel.value:
                found.append(repr(storage._decode(morsel.value)))
    return "\n".join(found)


def test_secrets_appear_only_in_their_one_reveal(
    partner_world: PartnerWorld, login, caplog, monkeypatch
) -> None:
    caplog.set_level(logging.DEBUG)
    world = partner_world
    delegation = world.active_delegation()
    admin = login(world.partner_admin)
    alice = login(world.alice)
    owner = login(world.owner_admin)
    pages = []  # every response that is not a reveal
    reveals = []

    def get(client, url):
        response = client.get(url)
        pages.append(response)
        return response

    pages.append(
        admin.post(
            reverse("delegations:staff_link"), {"user": world.alice.pk, "ram_user_name": "Alice"}
        )
    )
    pages.append(
        admin.post(
            reverse("delegations:staff_assign", args=[delegation.pk]), {"user": world.alice.pk}
        )
    )
    world.drain()
    get(alice, reverse("delegations:my_access"))
    get(alice, reverse("delegations:credentials_get", args=[delegation.pk]))

    reveal = alice.post(
        reverse("delegations:credentials_get", args=[delegation.pk]), {"duration_seconds": "900"}
    )
    assert reveal.status_code == 200
    reveals.append(reveal)
    html = unescape(reveal.content.decode())
    secret = re.search(r'data-testid="access-key-secret">([^<]+)<', html).group(1)
    token = re.search(r'data-testid="security-token">([^<]+)<', html).group(1)
    assert html.count(secret) >= 6 and html.count(token) >= 6  # values and the five formats

    made = alice.post(
        reverse("delegations:uri_keys", args=[delegation.pk]), {"label": "cli", "valid_days": "1"}
    )
    reveals.append(made)
    raw_key = re.search(r"credentials-uri/(pcu_[A-Za-z0-9_\-]+)", made.content.decode()).group(1)
    uri_secrets = []
    for _ in range(2):
        fetched = alice.get(reverse("delegations:credentials_uri", args=[raw_key]))
        assert fetched.status_code == 200
        reveals.append(fetched)
        body = json.loads(fetched.content)
        uri_secrets += [body["AccessKeySecret"], body["SecurityToken"]]
    get(alice, reverse("delegations:uri_keys", args=[delegation.pk]))
    get(alice, reverse("delegations:my_access"))
    get(owner, reverse("delegations:issuances", args=[delegation.pk]))
    get(owner, reverse("delegations:detail", args=[delegation.pk]))
    get(admin, reverse("delegations:delegation_staff", args=[delegation.pk]))
    get(admin, reverse("delegations:staff"))
    get(admin, reverse("delegations:detail", args=[delegation.pk]))

    assignment = CredentialIssuance.objects.first().assignment
    services.staff_unassign(assignment=assignment, unassigned_by=world.partner_admin)
    refused = alice.get(reverse("delegations:credentials_uri", args=[raw_key]))
    assert refused.status_code == 403
    pages.append(refused)

    # The broker: publish every outbox row for real and keep the serialised messages.
    published = []

    def capture(*, args=(), kwargs=None, connection=None, **options):
        # The connection is the transport the message goes through, not part of it.
        published.append(json.dumps({"args": list(args), "kwargs": kwargs or {}, **options}))

    monkeypatch.setattr(run_outbox_message, "apply_async", capture)
    from delegations.models import OutboxMessage

    for message in OutboxMessage.objects.all():
        real_outbox_publish(message_id=message.pk)
    assert published
    world.drain()

    sinks = {
        "logs": "\n".join(r.getMessage() + repr(r.args) for r in caplog.records) + caplog.text,
        "pages": "\n".join(unescape(p.content.decode(errors="replace")) for p in pages),
        "headers": "\n".join(repr(dict(p.items())) for p in [*pages, *reveals]),
        "cookies": _cookies([*pages, *reveals]),
        "sessions": _sessions(),
        "database": _every_table(),
        "cache": repr(list(getattr(cache, "_cache", {}).keys())),
        "broker": "\n".join(published),
    }
    assert CredentialIssuance.objects.count() == 3
    for name, text in sinks.items():
        for value in [secret, token, raw_key, *uri_secrets]:
            assert value not in text, f"a secret leaked into {name}"
    # The broker's own AccessKey secret is in the database only as ciphertext.
    assert world.sim.broker_key[1] not in sinks["database"]  # type: ignore[attr-defined]
    # Sanity: the sinks are real (the non-secret AccessKey ids are there).
    for issuance in CredentialIssuance.objects.all():
        assert issuance.access_key_id in sinks["database"]
        assert issuance.access_key_id in sinks["pages"]


def test_request_logs_never_repeat_a_credentials_uri_key() -> None:
    record = logging.LogRecord(
        "django.server",
        logging.INFO,
        __file__,
        1,
        '"%s" %s %s',
        ("GET /delegations/credentials-uri/pcu_AbC-d_e123 HTTP/1.1", "200", "311"),
        None,
    )
    assert RedactCredentialsUriKeys().filter(record)
    assert "pcu_AbC" not in record.getMessage()
    assert REDACTED in record.getMessage()


@pytest.mark.parametrize("key", ["secret_key", "security_token", "AccessKeySecret", "uri_token"])
def test_the_audit_log_refuses_secret_looking_keys(key: str) -> None:
    from audit.services import AuditSecretError, to_audit_json

    with pytest.raises(AuditSecretError):
        to_audit_json({key: "x"})
