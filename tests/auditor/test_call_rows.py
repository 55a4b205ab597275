"""One row per cloud call: the worker writes an intent and a result for each mutating call; the
history and the timeline show the call once (intent time, result time, request id, outcome)
while the ledger and the exports keep both events. Keyset pages never split or repeat a call."""

import json
import re

import pytest
from django.db import transaction

from audit.actions import AuditAction
from audit.models import AuditEvent
from audit.services import audit_record
from auditor import views
from tests.audit.conftest import ANY_ACTION, record
from tests.audit.history import History, history_fixture  # noqa: F401

pytestmark = pytest.mark.django_db

URL = "/audit/"


def rows(response) -> list[int]:
    return [int(s) for s in re.findall(r'<tr data-sequence="(\d+)">', response.content.decode())]


def walk(client, params: dict) -> list[int]:
    """Every row of every page, following "Older →" to the end."""
    response = client.get(URL, params)
    seen = rows(response)
    while match := re.search(r'before=(\d+)" rel="next"', response.content.decode()):
        response = client.get(URL, {**params, "before": match.group(1)})
        seen += rows(response)
    return seen


def call(organisation, number: int, *, answered: bool = True, between: int = 0) -> tuple:
    """An intent, `between` other events, then (if `answered`) the result of call `number`."""
    common = {
        "organisation": organisation,
        "target_type": "delegations.cloudcall",
        "target_id": f"call-{number}",
        "target_label": f"UpdateRole role/r{number}",
    }
    with transaction.atomic():
        intent = audit_record(
            action=AuditAction.CLOUD_CALL_INTENT,
            metadata={"cloud_action": "UpdateRole", "target": f"role/r{number}"},
            after={"outcome": "pending", "request_id": ""},
            **common,
        )
    others = [
        record(action=ANY_ACTION, organisation=organisation, target_label=f"other {number}.{i}")
        for i in range(between)
    ]
    result = None
    if answered:
        with transaction.atomic():
            result = audit_record(
                action=AuditAction.CLOUD_CALL_RESULT,
                metadata={"cloud_action": "UpdateRole", "target": f"role/r{number}"},
                after={"outcome": "ok", "request_id": f"REQ-{number}"},
                **common,
            )
    return intent, others, result


def test_every_call_is_one_row_whatever_the_page_boundaries(history: History, monkeypatch):
    owner = history.owner
    calls = [call(owner, n, between=n % 3) for n in range(9)]
    pending_intent, _, _ = call(owner, 99, answered=False)
    client = history.client(history.auditor)
    answered = {
        (e.target_type, e.target_id) for e in AuditEvent.objects.filter(action="cloud.call_result")
    }
    expected = [
        sequence
        for sequence, action, target in AuditEvent.objects.visible_to(owner.pk)
        .order_by("-sequence")
        .values_list("sequence", "action", "target_id")
        if not (action == "cloud.call_intent" and ("delegations.cloudcall", target) in answered)
    ]
    for size in (1, 2, 3, 4, 7):  # boundaries land between intents and results
        monkeypatch.setattr(views, "PAGE_SIZE", size)
        seen = walk(client, {})
        assert seen == expected, size
        assert len(seen) == len(set(seen))
    shown = set(expected)
    for intent, others, result in calls:
        assert intent.sequence not in shown and result.sequence in shown
        assert all(o.sequence in shown for o in others)
    assert pending_intent.sequence in shown  # no answer yet: the intent is the row
    assert AuditEvent.objects.filter(action="cloud.call_intent").count() >= 10  # ledger keeps


def test_a_call_row_shows_intent_time_result_time_request_id_and_outcome(history: History):
    intent, _, result = call(history.owner, 1, between=2)
    body = history.client(history.auditor).get(URL).content.decode()
    row = body.split(f'<tr data-sequence="{result.sequence}">')[1].split("</tr>")[0]
    assert f"{intent.occurred_at:%Y-%m-%d %H:%M:%S.%f}" in row
    assert f"{result.occurred_at:%Y-%m-%d %H:%M:%S.%f}" in row
    assert f'href="/audit/events/{intent.sequence}/"' in row
    assert "REQ-1" in row and "<b>outcome</b> ok" in row
    assert f'<tr data-sequence="{intent.sequence}">' not in body


def test_filtering_for_intents_shows_them_and_filtering_for_results_folds_them(
    history: History,
):
    intent, _, result = call(history.owner, 1)
    client = history.client(history.auditor)
    only_intents = rows(client.get(URL, {"action": "cloud.call_intent"}))
    assert intent.sequence in only_intents and result.sequence not in only_intents
    cloud = rows(client.get(URL, {"action": "cloud."}))
    assert result.sequence in cloud and intent.sequence not in cloud


def test_a_delegation_filter_and_the_timeline_page_without_splitting_calls(
    history: History, monkeypatch
):
    client = history.client(history.auditor)
    params = {"delegation": str(history.delegation.pk)}
    monkeypatch.setattr(views, "PAGE_SIZE", 2)
    seen = walk(client, params)
    assert len(seen) == len(set(seen))
    results = AuditEvent.objects.filter(
        action="cloud.call_result", organisation=history.owner
    ).values_list("sequence", "target_id")
    intents = dict(
        AuditEvent.objects.filter(action="cloud.call_intent").values_list("target_id", "sequence")
    )
    for sequence, target in results:
        assert sequence in seen and intents.get(target) not in seen

    monkeypatch.setattr(views, "TIMELINE_PAGE_SIZE", 3)
    url = f"/audit/delegations/{history.delegation.pk}/"
    response = client.get(url)
    timeline = re.findall(r'data-sequence="(\d+)"', response.content.decode())
    while match := re.search(r'\?after=(\d+)" data-testid="later"', response.content.decode()):
        response = client.get(url, {"after": match.group(1)})
        timeline += re.findall(r'data-sequence="(\d+)"', response.content.decode())
    timeline_rows = [int(s) for s in timeline]
    assert len(timeline_rows) == len(set(timeline_rows))
    assert sorted(timeline_rows) == sorted(seen)  # the same story, one row per call
    # A cursor that is no sequence (a non-ASCII digit, a number past bigint) is a 400 page.
    for bad in ("²", "x1", str(2**63)):
        assert client.get(url, {"after": bad}).status_code == 400


def test_exports_keep_both_events_of_a_call(history: History):
    intent, _, result = call(history.owner, 1)
    client = history.client(history.auditor)
    document = json.loads(b"".join(client.get("/audit/events/export.json").streaming_content))
    exported = {e["sequence"] for e in document["events"]}
    assert {intent.sequence, result.sequence} <= exported
    csv_text = b"".join(client.get("/audit/events/export.csv").streaming_content).decode()
    assert f"\n{intent.sequence}," in csv_text and f"\n{result.sequence}," in csv_text
