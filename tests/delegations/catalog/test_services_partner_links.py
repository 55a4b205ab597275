"""Partner links: the code is shown once, stored only as a hash, and typed loosely."""

import datetime as dt

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.models import Organisation, User, hash_token
from audit.models import AuditEvent
from delegations.catalog.partner_links import partner_link_create, partner_link_revoke
from delegations.lifecycle import selectors

pytestmark = pytest.mark.django_db


def test_create_returns_a_readable_code_and_stores_its_hash(
    company_a: Organisation, owner_admin: User
) -> None:
    link, code = partner_link_create(owner=company_a, created_by=owner_admin, label="B")
    groups = code.split("-")
    assert len(groups) == 4 and all(len(g) == 5 for g in groups)
    assert not set(code.replace("-", "")) & set("01OIL")
    assert link.code_hash == hash_token(code.replace("-", ""))
    assert link.code_hint == code[-4:]
    event = AuditEvent.objects.get(action="partner_link.created")
    assert code.replace("-", "") not in str(event.after) + str(event.metadata)


def test_a_code_is_found_however_it_is_typed(company_a: Organisation, owner_admin: User) -> None:
    link, code = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    for typed in (code, code.lower(), code.replace("-", " "), f"  {code.replace('-', '')}  "):
        assert selectors.partner_link_get_by_code(code=typed) == link
    for wrong in ("", "-", code[:-1], "x" * 10_000, "\uff11\uff12\uff13"):
        assert selectors.partner_link_get_by_code(code=wrong) is None


def test_revoked_and_expired_codes_stop_working(company_a: Organisation, owner_admin: User) -> None:
    link, code = partner_link_create(
        owner=company_a,
        created_by=owner_admin,
        label="",
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    partner_link_revoke(link=link, revoked_by=owner_admin)
    partner_link_revoke(link=link, revoked_by=owner_admin)
    assert AuditEvent.objects.filter(action="partner_link.revoked").count() == 1
    assert selectors.partner_link_get_by_code(code=code) is None


def test_only_owner_admins_create_and_revoke(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    auditor: User,
    partner_admin: User,
) -> None:
    with pytest.raises(PermissionDenied):
        partner_link_create(owner=company_a, created_by=auditor, label="")
    with pytest.raises(ValidationError):
        partner_link_create(owner=company_b, created_by=partner_admin, label="")
    with pytest.raises(ValidationError):
        partner_link_create(
            owner=company_a, created_by=owner_admin, label="", expires_at=timezone.now()
        )
    link, _ = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    with pytest.raises(PermissionDenied):
        partner_link_revoke(link=link, revoked_by=auditor)
