"""`pap extend` against a live portal: a partner admin asks for more time on a time-bound
delegation by owner/role or id; the extension waits for the owner, audited as pap's token;
a bad time or an earlier end is one clear line with a distinct exit status."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from api.services import api_token_create, token_prefix_of
from audit.models import AuditEvent
from delegations.models import Delegation, DelegationExtension
from tests.cli.conftest import Pap

pytestmark = pytest.mark.django_db(transaction=True)

USAGE, NO_ACCESS = 2, 4


@pytest.fixture
def time_bound(pap: Pap) -> Delegation:
    """The partner admin signed in to pap; B's open-ended access replaced by one that ends in
    four hours."""
    world = pap.world
    world.revoke(pap.delegation)
    world.drain()
    delegation = world.active_delegation(ends_at=timezone.now() + dt.timedelta(hours=4))
    token = api_token_create(
        user=world.partner_admin, name="t", scopes=["read", "request"], expires_in_days=1
    ).raw
    pap.sign_in(token=token)
    pap.token = token
    return delegation


def test_extend_asks_the_owner_for_more_time(pap: Pap, time_bound: Delegation) -> None:
    assert time_bound.ends_at is not None
    until = (time_bound.ends_at + dt.timedelta(days=1)).astimezone(dt.UTC)
    result = pap.run(
        "extend",
        f"company-a/{pap.world.role_name}",
        "--until",
        until.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "--reason",
        "Cut-over moved to tomorrow",
    )
    assert result.returncode == 0, result.stderr
    extension = DelegationExtension.objects.get()
    assert extension.delegation_id == time_bound.pk
    assert extension.status == DelegationExtension.Status.REQUESTED
    assert extension.new_ends_at == until.replace(microsecond=0)
    assert extension.reason == "Cut-over moved to tomorrow"
    assert f"/delegations/{time_bound.pk}/" in result.stdout
    event = AuditEvent.objects.get(action="delegation.extension_requested")
    assert event.source == f"api:token:{token_prefix_of(pap.token)}"
    # Nothing moved until the owner decides.
    assert Delegation.objects.get(pk=time_bound.pk).ends_at == time_bound.ends_at


def test_extend_refusals_are_one_clear_line(pap: Pap, time_bound: Delegation) -> None:
    assert time_bound.ends_at is not None
    bad = pap.run("extend", str(time_bound.pk), "--until", "next week", "--reason", "x")
    assert bad.returncode == USAGE and bad.stderr.startswith("pap: ")
    assert "ISO time" in bad.stderr

    earlier = (time_bound.ends_at - dt.timedelta(hours=1)).isoformat()
    refused = pap.run("extend", str(time_bound.pk), "--until", earlier, "--reason", "x")
    assert refused.returncode == 1
    assert refused.stderr.startswith("pap: ") and "Traceback" not in refused.stderr
    assert "new_ends_at" in refused.stderr

    unknown = pap.run("extend", "no-such-role", "--until", earlier, "--reason", "x")
    assert unknown.returncode == NO_ACCESS and "no-such-role" in unknown.stderr
    assert not DelegationExtension.objects.exists()
