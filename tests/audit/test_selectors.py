import pytest

from audit.selectors import MAX_PAGE_SIZE, audit_events_for_organisation, audit_events_visible_to
from tests.audit.conftest import make_organisation, record, write_events

pytestmark = pytest.mark.django_db


def test_pages_walk_newest_first_by_keyset(owner_org):
    write_events(7, organisation=owner_org)
    seen, cursor = [], None
    while True:
        page = audit_events_for_organisation(
            organisation=owner_org, before_sequence=cursor, limit=3
        )
        seen.append([event.sequence for event in page.events])
        cursor = page.next_before_sequence
        if cursor is None:
            break
    assert seen == [[7, 6, 5], [4, 3, 2], [1]]


def test_an_exact_last_page_has_no_next_cursor(owner_org):
    write_events(3, organisation=owner_org)
    page = audit_events_for_organisation(organisation=owner_org, limit=3)
    assert [event.sequence for event in page.events] == [3, 2, 1]
    assert page.next_before_sequence is None


def test_related_organisations_see_the_event_and_outsiders_do_not(owner_org, partner_org):
    outsider = make_organisation()
    shared = record(
        action="delegation.approved", organisation=owner_org, related_organisations=[partner_org]
    )
    owner_only = record(action="member.added", organisation=owner_org)
    partner_only = record(action="member.added", organisation=partner_org)
    person = record(action="auth.sign_in_succeeded", related_organisations=[owner_org, partner_org])

    def sequences(organisation):
        page = audit_events_for_organisation(organisation=organisation)
        return [event.sequence for event in page.events]

    assert sequences(owner_org) == [person.sequence, owner_only.sequence, shared.sequence]
    assert sequences(partner_org) == [person.sequence, partner_only.sequence, shared.sequence]
    assert sequences(outsider) == []
    assert audit_events_visible_to(organisation=outsider).count() == 0


def test_filters_by_action_and_target(owner_org):
    record(action="member.added", organisation=owner_org, target_type="x.y", target_id="1")
    record(action="member.removed", organisation=owner_org, target_type="x.y", target_id="2")
    record(action="mfa.enabled", organisation=owner_org, target_type="x.z", target_id="1")

    def actions(**filters):
        page = audit_events_for_organisation(organisation=owner_org, **filters)
        return [event.action for event in page.events]

    assert actions(actions=["member.removed", "mfa.enabled"]) == ["mfa.enabled", "member.removed"]
    assert actions(action_prefix="member.") == ["member.removed", "member.added"]
    assert actions(target_type="x.y", target_id=1) == ["member.added"]


def test_the_page_size_is_bounded(owner_org):
    write_events(3, organisation=owner_org)
    assert len(audit_events_for_organisation(organisation=owner_org, limit=0).events) == 1
    assert len(audit_events_for_organisation(organisation=owner_org, limit=10**9).events) == 3
    assert MAX_PAGE_SIZE == 200


def test_a_page_costs_one_query_whatever_its_size(owner_org, django_assert_num_queries):
    write_events(30, organisation=owner_org)
    for limit in (5, 25):
        with django_assert_num_queries(1):
            page = audit_events_for_organisation(organisation=owner_org, limit=limit)
            assert all(event.actor_label == "" for event in page.events)
