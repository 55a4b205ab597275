"""The trust page: owners choose the scope and decide on people, partners propose, the
ExternalId is shown only to the partner admin (audited, not cached), foreign ids are 404."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.urls import reverse

from accounts.models import Membership
from audit.models import AuditEvent
from delegations.lifecycle.named_people import trusted_person_decide
from delegations.models import Delegation, TrustedPerson, TrustScope
from delegations.trust import services as trust_services
from tests.delegations.partner.test_partner_views import with_mfa
from tests.factories import OrganisationFactory
from tests.fixtures.partner import PartnerWorld
from tests.personas import make_member


@pytest.fixture
def active(partner_world: PartnerWorld) -> Delegation:
    return partner_world.active_delegation()


def _scope(client, delegation, **data):
    payload = {"trust_scope": "named_owner", "named_people_cap": "3"} | data
    return client.post(reverse("delegations:trust_scope", args=[delegation.pk]), payload)


def test_owner_picks_owner_approved_partner_proposes_owner_approves(
    partner_world: PartnerWorld, active: Delegation, login
) -> None:
    world = partner_world
    owner = with_mfa(login(world.owner_admin), world.owner_admin)
    page = owner.get(reverse("delegations:trust", args=[active.pk]))
    assert page.status_code == 200
    assert "Whole partner account" in page.content.decode()

    response = _scope(owner, active, require_external_id="on", external_id="chosen-by-me")
    assert response.status_code == 302, response.content.decode()[:2000]
    active.refresh_from_db()
    assert active.trust_scope == TrustScope.NAMED_OWNER_APPROVED
    assert active.external_id_ciphertext and "chosen-by-me" not in active.external_id_ciphertext

    partner = login(world.partner_admin)
    response = partner.post(
        reverse("delegations:trust_propose", args=[active.pk]), {"ram_user_name": "Mallory"}
    )
    assert response.status_code == 400
    assert "no RAM user called Mallory" in response.content.decode()
    response = partner.post(
        reverse("delegations:trust_propose", args=[active.pk]), {"ram_user_name": "Alice"}
    )
    assert response.status_code == 302
    person = TrustedPerson.objects.get()
    # The partner may not approve its own people, nor change the scope.
    assert partner.post(
        reverse("delegations:trust_person_approve", args=[person.pk])
    ).status_code in (302, 403)
    person.refresh_from_db()
    assert person.status == TrustedPerson.Status.PENDING
    assert _scope(partner, active, trust_scope="account").status_code == 403

    response = owner.post(reverse("delegations:trust_person_approve", args=[person.pk]))
    assert response.status_code == 302
    person.refresh_from_db()
    assert person.status == TrustedPerson.Status.APPROVED
    world.drain()
    page = partner.get(reverse("delegations:trust", args=[active.pk])).content.decode()
    assert 'data-state="in_policy"' in page

    # The ExternalId: only the partner admin sees it, on a page that is never cached.
    assert owner.post(reverse("delegations:trust_external_id", args=[active.pk])).status_code == 403
    shown = partner.post(reverse("delegations:trust_external_id", args=[active.pk]))
    assert shown.status_code == 200
    assert "no-store" in shown["Cache-Control"]
    assert 'data-testid="external-id"' in shown.content.decode()
    assert AuditEvent.objects.filter(action="trust.external_id_shown").count() == 1
    # Shown once: a second time is refused (the owner issues a new one).
    again = partner.post(reverse("delegations:trust_external_id", args=[active.pk]), follow=True)
    assert 'data-testid="external-id"' not in again.content.decode()
    assert "shown only once" in again.content.decode()
    assert AuditEvent.objects.filter(action="trust.external_id_shown").count() == 1


def test_bad_scope_input_is_a_form_error_and_changes_nothing(
    partner_world: PartnerWorld, active: Delegation, login
) -> None:
    owner = with_mfa(login(partner_world.owner_admin), partner_world.owner_admin)
    for payload in (
        {"trust_scope": "everyone"},
        {"named_people_cap": "0"},
        {"named_people_cap": "many"},
    ):
        assert _scope(owner, active, **payload).status_code == 400
    active.refresh_from_db()
    assert active.trust_scope == TrustScope.PARTNER_ACCOUNT


def test_foreign_delegations_and_people_are_404(
    partner_world: PartnerWorld, active: Delegation, login
) -> None:
    other = OrganisationFactory(name="Delta", slug="delta", kind="partner", account_uid="99887766")
    stranger = make_member(other, Membership.Role.ADMIN, email="admin@delta.example")
    person = TrustedPerson.objects.create(delegation=active, ram_user_name="Alice")
    client = login(stranger)
    assert client.get(reverse("delegations:trust", args=[active.pk])).status_code == 404
    assert _scope(client, active).status_code == 404
    for name in ("trust_person_approve", "trust_person_reject", "trust_person_remove"):
        assert client.post(reverse(f"delegations:{name}", args=[person.pk])).status_code == 404


def test_the_access_report_lists_named_people_one_by_one(
    partner_world: PartnerWorld, active: Delegation, login
) -> None:
    world = partner_world
    services_scope = _scope(
        with_mfa(login(world.owner_admin), world.owner_admin), active, named_people_cap="2"
    )
    assert services_scope.status_code == 302
    # Alice enters the trust policy through the worker (the report reads its recorded writes).
    alice = trust_services.trusted_person_propose(
        delegation=active, proposed_by=world.partner_admin, ram_user_name="Alice"
    )
    trusted_person_decide(person=alice, decided_by=world.owner_admin, approve=True, with_mfa=True)
    world.drain()
    TrustedPerson.objects.create(
        delegation=active, ram_user_name="AAA", status=TrustedPerson.Status.REJECTED
    )
    today = dt.datetime.now(dt.UTC).date()
    auditor = make_member(world.owner, Membership.Role.AUDITOR, email="auditor@company-a.example")
    page = login(auditor).get(
        reverse("audit:access_report"),
        {
            "account": "11223344",
            "since": (today - dt.timedelta(days=7)).isoformat(),
            "until": today.isoformat(),
        },
    )
    assert page.status_code == 200, page.content.decode()[:3000]
    html = page.content.decode()
    section = html.split('data-testid="named-people"', 1)[1]
    assert "could act:" in section
    could, refused = section.split("not:", 1)
    assert "Alice" in could and "AAA" not in could
    assert "AAA" in refused and "refused" in refused


def test_the_auditor_timeline_shows_the_scope_and_people_changes(
    partner_world: PartnerWorld, active: Delegation, login
) -> None:
    world = partner_world
    owner = with_mfa(login(world.owner_admin), world.owner_admin)
    assert _scope(owner, active).status_code == 302
    partner = login(world.partner_admin)
    partner.post(reverse("delegations:trust_propose", args=[active.pk]), {"ram_user_name": "Bob"})
    person = TrustedPerson.objects.get()
    owner.post(
        reverse("delegations:trust_person_reject", args=[person.pk]), {"reason": "Not on contract"}
    )
    auditor = make_member(world.owner, Membership.Role.AUDITOR, email="auditor@company-a.example")
    page = login(auditor).get(reverse("audit:timeline", args=[active.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    assert "changed whom the trust policy names" in html
    assert "proposed Bob as a named person" in html
    assert "refused Bob as a named person" in html


def test_the_broker_switch_is_by_use_unless_the_owner_says_yes_or_no(
    partner_world: PartnerWorld, active: Delegation, login
) -> None:
    world = partner_world
    owner = with_mfa(login(world.owner_admin), world.owner_admin)
    page = owner.get(reverse("delegations:trust", args=[active.pk])).content.decode()
    assert re.search(r'name="trust_broker" value="use"[^>]*checked', page)
    # Never used through the portal: by use (or left out) means no broker; the owner's yes/no.
    for choice, trusted in [
        ("yes", True),
        ("no", False),
        ("", False),
        ("yes", True),
        ("use", False),
    ]:
        assert _scope(owner, active, trust_broker=choice).status_code == 302
        active.refresh_from_db()
        assert active.named_scope_trusts_broker is trusted, choice
    page = owner.get(reverse("delegations:trust", args=[active.pk])).content.decode()
    assert 'data-testid="broker-not-trusted"' in page and 'data-testid="broker-rule"' in page
    assert _scope(owner, active, trust_broker="maybe").status_code == 400


def test_the_trust_page_names_the_role_it_changes(
    partner_world: PartnerWorld, active: Delegation, login
) -> None:
    """A fleet's role has one name in each of the owner's accounts: the page whose scope and
    people change one account's trust policy says which account's role that is."""
    world = partner_world
    for person in (world.owner_admin, world.partner_admin):
        html = login(person).get(reverse("delegations:trust", args=[active.pk])).content.decode()
        head = html[html.index('<div class="page-head">') : html.index('data-testid="trust-scope"')]
        assert active.managed_role.role_arn in head
