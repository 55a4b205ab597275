"""The Overview starts with what waits for this person, counted in the navigation; each item
links to the page that acts on it; the empty state says so; pages without a user still
render."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from delegations.inbox.context_processors import inbox
from delegations.models import Delegation
from tests.delegations.factories import DelegationFactory

pytestmark = pytest.mark.django_db


def test_the_owner_s_overview_starts_with_the_request_to_decide(
    login: Any, owner_admin: User, requested: Delegation
) -> None:
    page = login(owner_admin).get(reverse("accounts:home")).content.decode()
    assert 'data-testid="inbox-count"' in page
    assert "Decide: ecs-admin · Company B" in page
    assert reverse("delegations:detail", args=[requested.pk]) in page
    assert page.index("Waiting for you") < page.index("Organisation</h2>")


def test_a_failed_apply_is_an_item_to_retry(
    login: Any, owner_admin: User, requested: Delegation
) -> None:
    Delegation.objects.filter(pk=requested.pk).update(status="failed", last_error_code="Throttling")
    page = login(owner_admin).get(reverse("accounts:home")).content.decode()
    assert "Failed to apply: ecs-admin · Company B" in page and "Throttling" in page


def test_the_partner_admin_is_asked_to_assign_people_to_ready_access(
    login: Any, partner_admin: User, ecs_admin: Any, company_b: Any
) -> None:
    delegation = DelegationFactory(
        catalog_role=ecs_admin, partner=company_b, status="active", activated_at=timezone.now()
    )
    page = login(partner_admin).get(reverse("accounts:home")).content.decode()
    assert "Assign people: ecs-admin" in page
    assert reverse("delegations:delegation_staff", args=[delegation.pk]) in page


def test_the_empty_state_says_nothing_waits(login: Any, owner_admin: User) -> None:
    page = login(owner_admin).get(reverse("accounts:home")).content.decode()
    assert "Nothing waits for you" in page
    assert 'data-testid="inbox-count"' not in page


def test_other_organisations_requests_never_show(
    login: Any, foreign_owner_admin: User, requested: Delegation
) -> None:
    page = login(foreign_owner_admin).get(reverse("accounts:home")).content.decode()
    assert "ecs-admin" not in page and "Nothing waits for you" in page


def test_the_context_processor_tolerates_requests_without_a_user() -> None:
    request = RequestFactory().get("/")
    assert inbox(request) == {"inbox": []}


def test_an_error_page_answers_without_counting_the_inbox(
    login: Any, owner_admin: User, requested: Delegation
) -> None:
    """A refusal or a missing page is drawn without the reads behind the navigation's count
    (a crawler probing pages it may not see costs the inbox nothing)."""
    client = login(owner_admin)
    assert 'data-testid="inbox-count"' in client.get(reverse("accounts:home")).content.decode()
    missing = client.get("/no/such/page/")
    assert missing.status_code == 404
    assert 'data-testid="inbox-count"' not in missing.content.decode()
