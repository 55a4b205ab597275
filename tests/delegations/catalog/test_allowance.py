"""The owner's allow-list of partner account UIDs: ASCII digits, not the owner's own, unique;
every change audited; removing one leaves granted access alone."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts.models import Organisation, User
from audit.models import AuditEvent
from delegations.catalog.allow_list import partner_allowance_add, partner_allowance_remove
from delegations.lifecycle.starting import delegation_request
from delegations.models import Delegation, PartnerAllowance
from tests.delegations.factories import CloudAccountFactory, DelegationFactory

pytestmark = pytest.mark.django_db


def add(owner: Organisation, by: User, uid: str, label: str = "") -> PartnerAllowance:
    return partner_allowance_add(owner=owner, added_by=by, partner_account_uid=uid, label=label)


def test_add_then_remove_with_audit(company_a: Organisation, owner_admin: User) -> None:
    allowance = add(company_a, owner_admin, "12345678", " Company B ")
    assert allowance.partner_account_uid == "12345678" and allowance.label == "Company B"
    assert list(PartnerAllowance.objects.filter(organisation=company_a)) == [allowance]
    partner_allowance_remove(allowance=allowance, removed_by=owner_admin)
    assert not PartnerAllowance.objects.filter(organisation=company_a).exists()
    partner_allowance_remove(allowance=allowance, removed_by=owner_admin)  # a double click
    events = AuditEvent.objects.filter(action__startswith="partner_allowance.").order_by("sequence")
    assert [(e.action, e.organisation_id) for e in events] == [
        ("partner_allowance.added", company_a.pk),
        ("partner_allowance.removed", company_a.pk),
    ]
    assert events[0].after == {"partner_account_uid": "12345678", "label": "Company B"}


@pytest.mark.parametrize(
    "uid",
    [
        "",
        " 12345678",
        "12345678 ",
        "1234-5678",
        "12a45678",
        "\uff11\uff12\uff13",  # full-width digits
        "\u0661\u0662\u0663",  # Arabic-Indic digits
        "1" * 33,
        "+12345678",
        "1e8",
    ],
)
def test_only_ascii_digit_uids(company_a: Organisation, owner_admin: User, uid: str) -> None:
    with pytest.raises(ValidationError) as refused:
        add(company_a, owner_admin, uid)
    assert "partner_account_uid" in refused.value.message_dict
    assert not PartnerAllowance.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="partner_allowance.").exists()


def test_not_the_owners_own_account(company_a: Organisation, owner_admin: User) -> None:
    with pytest.raises(ValidationError, match="your own account"):
        add(company_a, owner_admin, company_a.account_uid)
    CloudAccountFactory(organisation=company_a, account_uid="77778888")
    with pytest.raises(ValidationError, match="your own account"):
        add(company_a, owner_admin, "77778888")
    assert not PartnerAllowance.objects.exists()


def test_unique_per_owner_but_not_across_owners(
    company_a: Organisation, company_c: Organisation, owner_admin: User, foreign_owner_admin: User
) -> None:
    add(company_a, owner_admin, "12345678")
    with pytest.raises(ValidationError, match="already on the allow-list"):
        add(company_a, owner_admin, "12345678")
    add(company_c, foreign_owner_admin, "12345678")
    assert PartnerAllowance.objects.count() == 2


def test_label_length_and_partner_organisations(
    company_a: Organisation, company_b: Organisation, owner_admin: User, partner_admin: User
) -> None:
    with pytest.raises(ValidationError) as refused:
        add(company_a, owner_admin, "12345678", "x" * 201)
    assert "label" in refused.value.message_dict
    with pytest.raises(ValidationError, match="Only resource owner"):
        add(company_b, partner_admin, "11223344")
    assert not PartnerAllowance.objects.exists()


def test_the_allow_list_gates_new_requests_and_removal_keeps_granted_access(
    company_a: Organisation,
    company_b: Organisation,
    owner_admin: User,
    partner_admin: User,
    ecs_admin,
    link_a,
) -> None:
    def request() -> Delegation:
        return delegation_request(
            partner=company_b,
            requested_by=partner_admin,
            partner_link=link_a[0],
            catalog_role=ecs_admin,
            reason="Patch the fleet",
            ends_at=None,
        )

    # Off the allow-list, the owner's code is not valid for the partner (the same words as
    # a wrong code: see test_partner_link_codes.py).
    with pytest.raises(ValidationError, match="not valid for your organisation"):
        request()
    allowance = add(company_a, owner_admin, company_b.account_uid)
    active = DelegationFactory(
        catalog_role=ecs_admin, partner=company_b, status=Delegation.Status.ACTIVE
    )
    partner_allowance_remove(allowance=allowance, removed_by=owner_admin)
    assert Delegation.objects.get(pk=active.pk).status == Delegation.Status.ACTIVE
