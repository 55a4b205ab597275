"""The event browser: filters, keyset pages with a constant number of queries, bad input,
escaping, roles and tenancy."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Membership
from audit.models import AuditEvent
from tests.audit.conftest import ANY_ACTION, record
from tests.audit.history import History, history_fixture  # noqa: F401
from tests.personas import make_member

pytestmark = pytest.mark.django_db

URL = "/audit/"


def sequences(response) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-sequence="(\d+)">', response.content.decode())]


def visible_to(history: History, organisation) -> list[int]:
    """The rows the history shows: every visible event, a cloud call's intent folded into
    its result's row."""
    answered = set(
        AuditEvent.objects.filter(action="cloud.call_result").values_list(
            "target_type", "target_id"
        )
    )
    return [
        sequence
        for sequence, action, target in AuditEvent.objects.visible_to(organisation.pk)
        .order_by("-sequence")
        .values_list("sequence", "action", "target_id")
        if not (action == "cloud.call_intent" and ("delegations.cloudcall", target) in answered)
    ]


# --- what the auditor sees -------------------------------------------------------------------


def test_the_auditor_sees_every_event_of_the_organisation_newest_first(history: History):
    response = history.client(history.auditor).get(URL)
    assert response.status_code == 200
    expected = visible_to(history, history.owner)
    assert sequences(response) == expected[:50]
    body = response.content.decode()
    assert "Cobalt Foreign" not in body and "Foreign secret reason" not in body


def test_each_event_shows_actor_action_target_diff_and_ids(history: History):
    body = history.client(history.auditor).get(URL).content.decode()
    offered = AuditEvent.objects.get(action="delegation.offered", organisation=history.owner)
    create = AuditEvent.objects.filter(
        action="cloud.call_result", metadata__cloud_action="CreateRole"
    ).get()
    assert "offered (and so approved) this access with two-factor authentication" in body
    assert offered.request_id or offered.source  # origin is recorded
    assert create.after["request_id"] in body  # the cloud request id
    assert "+ principal acs:ram::12345678:root" in body  # the trust policy diff
    assert "status: active → revoking" in body  # before → after
    assert "ecs-admin for Company B" in body


def test_the_cloud_request_ids_and_portal_request_id_are_shown(history: History):
    with_ip = record(
        action="member.role_changed",
        organisation=history.owner,
        target_label="bob",
        metadata={"request_id": "CLOUD-REQ-9"},
    )
    assert with_ip.request_id == ""
    body = history.client(history.auditor).get(URL).content.decode()
    row = body.split(f'data-sequence="{with_ip.sequence}"')[1].split("</tr>")[0]
    assert "CLOUD-REQ-9" in row


def test_web_events_show_source_ip_and_request_id(login, company_a, owner_admin, auditor):
    client = login(owner_admin)
    client.post(
        "/organisation/members/invite/",
        {"email": "new@a.example", "role": "auditor"},
        REMOTE_ADDR="203.0.113.9",
    )
    event = AuditEvent.objects.get(action="invitation.sent")
    assert event.source_ip == "203.0.113.9"
    body = login(auditor).get(URL).content.decode()
    assert "203.0.113.9" in body and event.request_id in body


# --- filters ---------------------------------------------------------------------------------


def test_filters_by_delegation_include_its_cloud_calls(history: History):
    response = history.client(history.auditor).get(URL, {"delegation": history.delegation.pk})
    assert response.status_code == 200
    shown = AuditEvent.objects.filter(sequence__in=sequences(response))
    assert {e.target_type for e in shown} == {"delegations.delegation", "delegations.cloudcall"}
    assert {e.target_id for e in shown if e.target_type == "delegations.delegation"} == {
        str(history.delegation.pk)
    }
    assert shown.filter(action="delegation.revoked").exists()
    assert not shown.filter(action="cloud_account.connected").exists()


def test_filters_by_role_by_partner_and_by_person(history: History):
    client = history.client(history.auditor)
    by_role = sequences(client.get(URL, {"role": history.delegation.catalog_role_id}))
    by_delegation = sequences(client.get(URL, {"delegation": history.delegation.pk}))
    assert set(by_delegation) <= set(by_role)
    by_partner = AuditEvent.objects.filter(
        sequence__in=sequences(client.get(URL, {"partner": history.partner.pk}))
    )
    assert by_partner.exists()
    assert all(e.scopes.filter(organisation=history.partner).exists() for e in by_partner)
    by_person = AuditEvent.objects.filter(
        sequence__in=sequences(client.get(URL, {"person": history.owner_admin.pk}))
    )
    assert by_person.exists() and {e.actor_id for e in by_person} == {history.owner_admin.pk}


def test_filters_by_action_prefix_outcome_and_time(history: History):
    client = history.client(history.auditor)
    delegation_events = AuditEvent.objects.filter(
        sequence__in=sequences(client.get(URL, {"action": "delegation."}))
    )
    assert delegation_events.exists()
    assert all(e.action.startswith("delegation.") for e in delegation_events)
    assert sequences(client.get(URL, {"outcome": "denied"})) == []
    denied = record(
        action="delegation.approve_denied", organisation=history.owner, outcome="denied"
    )
    assert sequences(client.get(URL, {"outcome": "denied"})) == [denied.sequence]

    events = list(AuditEvent.objects.visible_to(history.owner.pk).order_by("sequence"))
    middle = events[len(events) // 2]
    since = middle.occurred_at.strftime("%Y-%m-%d %H:%M:%S")
    shown = sequences(client.get(URL, {"since": since}))
    assert shown and all(
        AuditEvent.objects.get(sequence=s).occurred_at >= middle.occurred_at.replace(microsecond=0)
        for s in shown
    )
    assert sequences(client.get(URL, {"until": "2000-01-01"})) == []
    assert sequences(client.get(URL, {"since": "2999-01-01"})) == []


def test_text_search_matches_labels_and_treats_like_wildcards_literally(history: History):
    literal = record(action=ANY_ACTION, organisation=history.owner, target_label="100% sure_x")
    record(action=ANY_ACTION, organisation=history.owner, target_label="1000 sure")
    client = history.client(history.auditor)
    assert sequences(client.get(URL, {"q": "100%"})) == [literal.sequence]
    assert sequences(client.get(URL, {"q": "e_x"})) == [literal.sequence]
    assert sequences(client.get(URL, {"q": "%"})) == [literal.sequence]
    assert sequences(client.get(URL, {"q": "' OR 1=1 --"})) == []
    company_b = sequences(client.get(URL, {"q": "company b"}))
    assert company_b and len(company_b) < len(visible_to(history, history.owner))


# --- keyset pages ----------------------------------------------------------------------------


def test_pages_walk_by_keyset_both_ways_without_offset(owner_admin, auditor, company_a, login):
    for number in range(120):
        record(action=ANY_ACTION, organisation=company_a, target_label=f"thing {number}")
    client = login(auditor)
    expected = list(AuditEvent.objects.visible_to(company_a.pk).values_list("sequence", flat=True))
    with CaptureQueriesContext(connection) as queries:
        first = client.get(URL)
    assert not any("OFFSET" in q["sql"].upper() for q in queries.captured_queries)
    seen = sequences(first)
    older = re.search(r'before=(\d+)" rel="next"', first.content.decode()).group(1)
    second = client.get(URL, {"before": older})
    third_cursor = re.search(r'before=(\d+)" rel="next"', second.content.decode()).group(1)
    third = client.get(URL, {"before": third_cursor})
    seen += sequences(second) + sequences(third)
    assert seen == expected
    assert 'rel="next"' not in third.content.decode()
    newer = re.search(r'after=(\d+)" rel="prev"', third.content.decode()).group(1)
    assert sequences(client.get(URL, {"after": newer})) == sequences(second)


def _count_queries(client: Client, params: dict) -> int:
    client.get(URL, params)  # the first request of a session also records the session
    with CaptureQueriesContext(connection) as queries:
        response = client.get(URL, params)
    assert response.status_code == 200
    return len(queries.captured_queries)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"action": "organisation."},
        {"outcome": "success", "q": "thing"},
        {"since": "2000-01-01", "until": "2999-01-01"},
        {"person": "PERSON"},
        {"partner": "PARTNER"},
    ],
)
def test_a_page_takes_the_same_queries_whatever_the_page_or_table_size(
    params, company_a, company_b, auditor, owner_admin, login, django_assert_num_queries
):
    from tests.delegations.factories import DelegationFactory

    DelegationFactory(owner=company_a, partner=company_b)
    params = {
        k: str(owner_admin.pk) if v == "PERSON" else str(company_b.pk) if v == "PARTNER" else v
        for k, v in params.items()
    }

    def grow(count: int) -> None:
        for number in range(count):
            record(
                action=ANY_ACTION,
                actor=owner_admin,
                organisation=company_a,
                related_organisations=[company_b],
                target_label=f"thing {number}",
            )

    client = login(auditor)
    grow(60)
    small = _count_queries(client, params)
    grow(240)
    deep = AuditEvent.objects.order_by("sequence").values_list("sequence", flat=True)[150]
    with django_assert_num_queries(small):
        assert client.get(URL, params).status_code == 200
    with django_assert_num_queries(small):
        assert client.get(URL, {**params, "before": deep}).status_code == 200
    with django_assert_num_queries(small):
        assert client.get(URL, {**params, "after": deep}).status_code == 200


def test_a_delegation_filter_takes_the_same_queries_for_any_history_size(
    history: History, django_assert_num_queries
):
    client = history.client(history.auditor)
    params = {"delegation": history.delegation.pk}
    baseline = _count_queries(client, params)
    for _ in range(3):
        history.world.reconcile(force=True)
    with django_assert_num_queries(baseline):
        client.get(URL, params)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, message",
    [
        ({"since": "yesterday"}, "Use a date like"),
        ({"since": "2026-13-45"}, "Use a date like"),
        ({"until": "99999-01-01"}, "Use a date like"),
        ({"since": "2026-03-02", "until": "2026-03-01"}, "The end must be after the beginning"),
        ({"outcome": "maybe"}, "Select a valid choice"),
        ({"partner": "not-a-uuid"}, "Select a valid choice"),
        ({"delegation": "00000000-0000-0000-0000-000000000000"}, "Select a valid choice"),
        ({"person": "1; DROP TABLE audit_auditevent"}, "Select a valid choice"),
        ({"action": "delegation.%"}, "Actions are lowercase words"),
        ({"action": "'; DELETE FROM audit_auditevent; --"}, "Actions are lowercase words"),
        ({"before": "99999999999999999999999999"}, "This page link is not valid"),
        ({"before": "-5"}, "This page link is not valid"),
        ({"after": "abc"}, "This page link is not valid"),
        ({"before": "5", "after": "3"}, "This page link is not valid"),
        ({"q": "x" * 10_000_000}, "longer than 500 characters"),
    ],
)
def test_bad_filters_get_a_clear_message_and_400(history: History, params, message):
    count = AuditEvent.objects.count()
    response = history.client(history.auditor).get(URL, params)
    assert response.status_code == 400
    body = response.content.decode()
    assert message in body
    assert len(body) < 200_000  # a huge value is not echoed back
    assert 'data-sequence="' not in body
    assert AuditEvent.objects.count() == count


def test_another_organisations_delegation_is_an_unknown_choice(history: History):
    response = history.client(history.auditor).get(
        URL, {"delegation": history.foreign_delegation.pk}
    )
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert "foreign-ops" not in response.content.decode()


def test_too_many_query_parameters_answer_400(history: History):
    client = history.client(history.auditor)
    response = client.get(URL + "?" + "&".join(f"p{i}=1" for i in range(500)))
    assert response.status_code == 400


def test_unknown_parameters_are_ignored(history: History):
    response = history.client(history.auditor).get(URL, {"page": "7", "sort": "x"})
    assert response.status_code == 200


# --- escaping --------------------------------------------------------------------------------


def test_labels_with_html_bidi_and_zero_width_characters_display_safely(history: History):
    record(
        action="member.added",
        organisation=history.owner,
        actor_label="Mallory\u202e<img src=x onerror=alert(1)>",
        target_label="ad\u200bmin\u2066@a.example",
        metadata={"note": "<script>alert('x')</script>"},
    )
    body = history.client(history.auditor).get(URL).content.decode()
    for raw in ("\u202e", "\u200b", "\u2066", "<img src=x", "<script>alert"):
        assert raw not in body
    assert "[U+202E]" in body and "[U+200B]" in body and "[U+2066]" in body
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


def test_names_in_the_filter_choices_cannot_hide_controls_either(history: History):
    from accounts.models import Organisation

    Organisation.objects.filter(pk=history.partner.pk).update(name="Company\u202e B\u200b")
    for path in (URL, f"/audit/delegations/{history.delegation.pk}/", "/audit/access/"):
        body = history.client(history.auditor).get(path).content.decode()
        assert "\u202e" not in body and "\u200b" not in body, path
    body = history.client(history.auditor).get(URL).content.decode()
    assert "Company[U+202E] B[U+200B]</option>" in body


# --- roles and methods -----------------------------------------------------------------------


def test_owner_admins_see_the_same_history(history: History):
    auditor_view = sequences(history.client(history.auditor).get(URL))
    assert sequences(history.client(history.owner_admin).get(URL)) == auditor_view


def test_a_partner_admin_sees_only_events_shared_with_the_partner(history: History):
    response = history.client(history.partner_admin).get(URL)
    assert response.status_code == 200
    shown = sequences(response)
    assert shown == visible_to(history, history.partner)[:50]
    assert not AuditEvent.objects.filter(sequence__in=shown, action="cloud_account.connected")
    assert AuditEvent.objects.filter(sequence__in=shown, action="delegation.offered").exists()


def test_partner_staff_and_outsiders_are_refused(history: History, client):
    assert history.client(history.partner_staff).get(URL).status_code == 403
    assert client.get(URL).status_code == 302  # anonymous: sign in first


def test_unsafe_methods_are_refused(history: History):
    assert history.client(history.owner_admin).post(URL).status_code == 405
    assert history.client(history.auditor).post(URL).status_code == 403
    assert history.client(history.auditor).delete(URL).status_code == 403


# --- one event -------------------------------------------------------------------------------


def test_the_event_page_shows_every_field(history: History):
    event = AuditEvent.objects.filter(
        action="cloud.call_result", metadata__cloud_action="CreateRole"
    ).get()
    response = history.client(history.auditor).get(f"/audit/events/{event.sequence}/")
    assert response.status_code == 200
    body = response.content.decode()
    assert event.hash in body and event.prev_hash in body
    assert event.after["request_id"] in body


def test_another_organisations_event_is_404_like_a_missing_one(history: History):
    foreign = AuditEvent.objects.filter(organisation=history.foreign_owner).first()
    client = history.client(history.auditor)
    assert client.get(f"/audit/events/{foreign.sequence}/").status_code == 404
    assert client.get("/audit/events/99999999/").status_code == 404
    assert client.get(f"/audit/events/{2**64}/").status_code == 404
    partner_admin = history.client(history.partner_admin)
    owner_only = AuditEvent.objects.get(action="cloud_account.connected")
    assert partner_admin.get(f"/audit/events/{owner_only.sequence}/").status_code == 404


def test_a_new_auditor_of_another_owner_sees_nothing_of_ours(history: History):
    other_auditor = make_member(
        history.foreign_owner, Membership.Role.AUDITOR, email="auditor@cobalt.example"
    )
    shown = sequences(history.client(other_auditor).get(URL))
    assert set(shown) == set(visible_to(history, history.foreign_owner)[:50])
    assert "Company B" not in history.client(other_auditor).get(URL).content.decode()
