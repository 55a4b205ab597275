"""Partner link codes: shown once, stored only as a hash, typed loosely, and bound: a code is
valid only for a partner on its owner's allow-list (and, when the owner says so, for one
account and one request) until it expires; every other case gets the same refusal after the
same work, and every attempt is audited without the code (issue 18, item 11)."""

import datetime as dt
from collections.abc import Callable

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Organisation, User, hash_token
from audit.models import AuditEvent
from delegations.catalog.partner_links import (
    DEFAULT_EXPIRY_DAYS,
    REFUSAL,
    PartnerLinkRefused,
    partner_link_create,
    partner_link_for_partner,
    partner_link_redeem,
    partner_link_revoke,
)
from delegations.models import CatalogRole, Delegation, PartnerLink
from tests.delegations.factories import PartnerAllowanceFactory

pytestmark = pytest.mark.django_db


def refused(code: str, partner: Organisation, user: User) -> str:
    with pytest.raises(PartnerLinkRefused) as refusal:
        partner_link_redeem(code=code, partner=partner, user=user)
    return str(refusal.value)


def all_audit_text() -> str:
    return " ".join(
        f"{e.before} {e.after} {e.metadata} {e.target_label}" for e in AuditEvent.objects.all()
    )


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


def test_a_code_expires_after_fourteen_days_unless_the_owner_says_otherwise(
    company_a: Organisation, owner_admin: User
) -> None:
    link, _ = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    assert link.expires_at is not None
    expected = timezone.now() + dt.timedelta(days=DEFAULT_EXPIRY_DAYS)
    assert abs((link.expires_at - expected).total_seconds()) < 60
    for bad in (timezone.now(), timezone.now() + dt.timedelta(days=365)):
        with pytest.raises(ValidationError) as error:
            partner_link_create(owner=company_a, created_by=owner_admin, label="", expires_at=bad)
        assert "expires_at" in error.value.message_dict


def test_a_code_can_only_be_bound_to_an_allow_listed_account(
    company_a: Organisation, company_b: Organisation, owner_admin: User, allow_b: None
) -> None:
    for uid, words in (("12ab", "digits"), ("99999999", "allow-list")):
        with pytest.raises(ValidationError, match=words):
            partner_link_create(
                owner=company_a, created_by=owner_admin, label="", partner_account_uid=uid
            )
    link, _ = partner_link_create(
        owner=company_a,
        created_by=owner_admin,
        label="",
        partner_account_uid=company_b.account_uid,
        single_use=True,
    )
    assert link.partner_account_uid == company_b.account_uid and link.single_use
    created = AuditEvent.objects.get(action="partner_link.created").after
    assert created["partner_account_uid"] == company_b.account_uid and created["single_use"]


def test_a_code_is_accepted_however_it_is_typed(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_admin: User,
    allow_b: None,
) -> None:
    link, code = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    for typed in (code, code.lower(), code.replace("-", " "), f"  {code.replace('-', '')}  "):
        assert partner_link_redeem(code=typed, partner=company_b, user=partner_admin) == link
    accepted = AuditEvent.objects.filter(action="partner_link.accepted")
    assert accepted.count() == 4
    assert {s.organisation_id for s in accepted[0].scopes.all()} == {company_a.pk, company_b.pk}


def test_wrong_codes_get_the_one_refusal(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_admin: User,
    allow_b: None,
) -> None:
    _link, code = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    for wrong in ("", "-", code[:-1], "x" * 10_000, "\uff11\uff12\uff13"):
        assert refused(wrong, company_b, partner_admin) == REFUSAL


def test_a_partner_off_the_allow_list_learns_only_that_the_code_is_not_valid(
    company_a: Organisation,
    company_d: Organisation,
    owner_admin: User,
    partner_admin_d: User,
    allow_b: None,
) -> None:
    _link, code = partner_link_create(owner=company_a, created_by=owner_admin, label="For B")
    assert refused(code, company_d, partner_admin_d) == REFUSAL
    assert refused("WRONG-CODE", company_d, partner_admin_d) == REFUSAL
    # The partner's own record of both attempts is the same: nothing of whose code it was.
    mine = AuditEvent.objects.filter(action="partner_link.code_refused").order_by("sequence")
    assert [e.organisation_id for e in mine] == [company_d.pk, company_d.pk]
    assert all(e.target_id == "" and e.outcome == "denied" for e in mine)
    assert mine[0].metadata.keys() == mine[1].metadata.keys() == {"code_length"}
    # The owner hears why its code was refused; an unknown code is the operators' alone.
    known, unknown = AuditEvent.objects.filter(action="partner_link.use_refused").order_by(
        "sequence"
    )
    assert known.organisation_id == company_a.pk
    assert known.metadata["reason"] == "not_allow_listed"
    assert known.metadata["partner_account_uid"] == company_d.account_uid
    assert unknown.organisation_id is None and unknown.metadata["reason"] == "unknown_code"
    assert code.replace("-", "") not in all_audit_text()


def test_a_wrong_code_and_a_refused_real_one_cost_the_same_work(
    company_a: Organisation,
    company_d: Organisation,
    owner_admin: User,
    partner_admin_d: User,
) -> None:
    _link, code = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    reads, events = [], []
    for attempt in (code, "WRONG-CODE-WRONG-CODE"):
        before = AuditEvent.objects.count()
        with CaptureQueriesContext(connection) as queries:
            refused(attempt, company_d, partner_admin_d)
        reads.append(
            sum(
                q["sql"].lstrip().upper().startswith("SELECT") and '"audit_' not in q["sql"]
                for q in queries
            )
        )
        events.append(AuditEvent.objects.count() - before)
    # The same reads (the allow-list is asked even for a code naming no link) and the same
    # events; only the owner's event of a real code has a scope row to write, so the ledger's
    # own reads (each scope's chain link) are left out of the count.
    assert reads[0] == reads[1] and events == [2, 2]


def test_a_bound_code_works_only_for_its_account(
    company_a: Organisation,
    company_b: Organisation,
    company_d: Organisation,
    owner_admin: User,
    partner_admin: User,
    partner_admin_d: User,
    allow_b: None,
) -> None:
    PartnerAllowanceFactory(organisation=company_a, partner_account_uid=company_d.account_uid)
    link, code = partner_link_create(
        owner=company_a, created_by=owner_admin, label="", partner_account_uid=company_b.account_uid
    )
    assert refused(code, company_d, partner_admin_d) == REFUSAL
    assert (
        AuditEvent.objects.get(action="partner_link.use_refused").metadata["reason"]
        == "bound_to_another_account"
    )
    assert partner_link_redeem(code=code, partner=company_b, user=partner_admin) == link


def test_revoked_and_expired_codes_stop_working(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_admin: User,
    allow_b: None,
) -> None:
    link, code = partner_link_create(
        owner=company_a,
        created_by=owner_admin,
        label="",
        expires_at=timezone.now() + dt.timedelta(days=1),
    )
    partner_link_revoke(link=link, revoked_by=owner_admin)
    partner_link_revoke(link=link, revoked_by=owner_admin)
    assert AuditEvent.objects.filter(action="partner_link.revoked").count() == 1
    assert refused(code, company_b, partner_admin) == REFUSAL
    expiring, expiring_code = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    PartnerLink.objects.filter(pk=expiring.pk).update(expires_at=timezone.now())
    assert refused(expiring_code, company_b, partner_admin) == REFUSAL
    assert partner_link_for_partner(link_id=expiring.pk, partner=company_b) is None
    reasons = AuditEvent.objects.filter(action="partner_link.use_refused").order_by("sequence")
    assert [e.metadata["reason"] for e in reasons] == ["revoked", "expired"]


def test_a_single_use_code_is_used_up_by_the_first_request(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_admin: User,
    ecs_admin: CatalogRole,
    make_request: Callable[..., Delegation],
) -> None:
    link, code = partner_link_create(
        owner=company_a, created_by=owner_admin, label="", single_use=True
    )
    redeemed = partner_link_redeem(code=code, partner=company_b, user=partner_admin)
    assert partner_link_redeem(code=code, partner=company_b, user=partner_admin) == redeemed
    make_request(partner_link=redeemed)
    link.refresh_from_db()
    assert link.used_at is not None and link.used_by == company_b and not link.is_usable
    used = AuditEvent.objects.get(action="partner_link.used_up")
    assert used.organisation_id == company_a.pk and used.after == {"used": True}
    assert refused(code, company_b, partner_admin) == REFUSAL
    assert partner_link_for_partner(link_id=link.pk, partner=company_b) is None
    with pytest.raises(ValidationError, match="not valid for your organisation"):
        make_request(partner_link=redeemed, reason="A second request through the same code")
    assert Delegation.objects.filter(partner_link=link).count() == 1


def test_a_failed_request_does_not_use_up_a_single_use_code(
    company_a: Organisation,
    owner_admin: User,
    make_request: Callable[..., Delegation],
) -> None:
    link, _code = partner_link_create(
        owner=company_a, created_by=owner_admin, label="", single_use=True
    )
    with pytest.raises(ValidationError):
        make_request(partner_link=link, reason="")
    link.refresh_from_db()
    assert link.used_at is None and link.is_usable


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
    link, _ = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    with pytest.raises(PermissionDenied):
        partner_link_revoke(link=link, revoked_by=auditor)


def test_a_request_through_a_link_locks_the_link_row_not_the_owners(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_admin: User,
    ecs_admin: CatalogRole,
    make_request: Callable[..., Delegation],
) -> None:
    """A plain FOR UPDATE on the link joined to its organisation also locked the owner's
    Organisation row until the request committed; a worker committing audit rows for the
    owner (deferred foreign keys key-share that row) while holding the audit chain the request
    then waited for deadlocked with it."""
    if connection.vendor != "postgresql":
        pytest.skip("row locks are PostgreSQL's (SQLite locks the whole database)")
    _link, code = partner_link_create(owner=company_a, created_by=owner_admin, label="")
    redeemed = partner_link_redeem(code=code, partner=company_b, user=partner_admin)
    with CaptureQueriesContext(connection) as queries:
        make_request(partner_link=redeemed)
    locks = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"] and "partnerlink" in q["sql"]]
    assert locks
    assert all('FOR UPDATE OF "delegations_partnerlink"' in sql for sql in locks), locks
