"""Exports: streamed CSV and JSON of the filtered events and of the access report, parsed back
as an auditor's tools would; spreadsheet formulas neutralised in CSV."""

import csv
import datetime as dt
import io
import json

import pytest
from django.db import connection
from django.db.models.query import QuerySet
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext

from audit.models import AuditEvent
from auditor import exports
from auditor.exports import EVENT_COLUMNS, REPORT_COLUMNS, csv_safe
from tests.audit.conftest import ANY_ACTION, record
from tests.audit.history import History, history_fixture  # noqa: F401

pytestmark = pytest.mark.django_db


def download(response) -> str:
    assert response.status_code == 200, response.content[:500]
    assert isinstance(response, StreamingHttpResponse)
    return b"".join(response.streaming_content).decode("utf-8")


def parse_csv(text: str) -> list[dict]:
    assert text.startswith("\ufeff")
    return list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"))))


@pytest.mark.parametrize(
    "value, expected",
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("plain", "plain"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
    ],
)
def test_csv_cells_that_start_a_formula_are_neutralised(value, expected):
    assert csv_safe(value) == expected


def test_the_events_csv_is_an_attachment_with_every_visible_event_newest_first(history: History):
    response = history.client(history.auditor).get("/audit/events/export.csv")
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-')
    assert response["Content-Disposition"].endswith('.csv"')
    assert response["Content-Type"].startswith("text/csv")
    rows = parse_csv(download(response))
    assert list(rows[0].keys()) == list(EVENT_COLUMNS)
    expected = list(
        AuditEvent.objects.visible_to(history.owner.pk).values_list("sequence", flat=True)
    )
    assert [int(r["sequence"]) for r in rows] == expected
    create = next(
        r
        for r in rows
        if r["target_label"] == "CreateRole role/ecs-admin" and r["action"] == "cloud.call_result"
    )
    assert json.loads(create["metadata"])["cloud_action"] == "CreateRole"
    assert create["cloud_request_ids"] == json.loads(create["after"])["request_id"]
    event = AuditEvent.objects.get(sequence=int(create["sequence"]))
    assert (create["hash"], create["prev_hash"]) == (event.hash, event.prev_hash)
    assert not any("Cobalt" in r["actor_organisation"] for r in rows)


def test_the_events_json_keeps_values_exactly_and_says_what_was_exported(history: History):
    response = history.client(history.auditor).get(
        "/audit/events/export.json", {"delegation": history.delegation.pk}
    )
    assert response["Content-Disposition"].endswith('.json"')
    document = json.loads(download(response))
    assert document["export"]["filters"] == {"delegation": str(history.delegation.pk)}
    assert document["export"]["generated_by"] == history.auditor.email
    actions = [e["action"] for e in document["events"]]
    assert "delegation.revoked" in actions and "cloud.call_result" in actions
    offered = next(e for e in document["events"] if e["action"] == "delegation.offered")
    stored = AuditEvent.objects.get(sequence=offered["sequence"])
    assert offered["metadata"] == stored.metadata and offered["after"] == stored.after


def test_formula_looking_labels_are_neutralised_in_csv_but_exact_in_json(history: History):
    labels = ['=HYPERLINK("http://evil","click")', "+cmd|' /C calc'!A0", "-1+1", "@SUM(1)", "\t=1"]
    for label in labels:
        record(action="member.added", organisation=history.owner, target_label=label)
    client = history.client(history.auditor)
    rows = parse_csv(download(client.get("/audit/events/export.csv", {"action": "member.added"})))
    assert sorted(r["target_label"] for r in rows) == sorted("'" + label for label in labels)
    for row in rows:
        assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row.values())
    document = json.loads(
        download(client.get("/audit/events/export.json", {"action": "member.added"}))
    )
    assert sorted(e["target_label"] for e in document["events"]) == sorted(labels)


def test_exports_stream_from_an_iterator_in_chunks(history: History, monkeypatch):
    for number in range(25):
        record(action=ANY_ACTION, organisation=history.owner, target_label=f"row {number}")
    chunk_sizes = []
    real_iterator = QuerySet.iterator

    def spy(self, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return real_iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    monkeypatch.setattr(exports, "EXPORT_CHUNK_SIZE", 7)
    monkeypatch.setattr(exports, "_WRITE_SIZE", 100)
    client = history.client(history.auditor)
    with CaptureQueriesContext(connection) as before_reading:
        response = client.get("/audit/events/export.csv", {"action": ANY_ACTION})
    # Nothing is read until the response is consumed: the view returns a generator.
    assert not any(ANY_ACTION in str(q["sql"]) for q in before_reading.captured_queries)
    pieces = list(response.streaming_content)
    assert chunk_sizes == [7]
    assert len(pieces) > 5  # written out as it goes, not as one body
    assert len(parse_csv(b"".join(pieces).decode())) == 25


def test_a_bad_filter_is_a_400_page_not_a_download(history: History):
    response = history.client(history.auditor).get("/audit/events/export.csv", {"since": "x"})
    assert response.status_code == 400
    assert "Content-Disposition" not in response
    assert "Use a date like" in response.content.decode()


def test_the_partner_admins_export_holds_only_events_shared_with_the_partner(history: History):
    visible = set(
        AuditEvent.objects.visible_to(history.partner.pk).values_list("sequence", flat=True)
    )
    document = json.loads(
        download(history.client(history.partner_admin).get("/audit/events/export.json"))
    )
    assert {e["sequence"] for e in document["events"]} == visible
    # The export's own record is the partner's alone.
    recorded = AuditEvent.objects.get(sequence=document["attestation"]["sequence"])
    assert recorded.action == "audit.exported" and recorded.organisation_id == history.partner.pk
    assert set(recorded.scopes.values_list("organisation_id", flat=True)) == {history.partner.pk}


def test_exports_are_read_only_and_need_a_reader(history: History):
    for path in ("/audit/events/export.csv", "/audit/access/export.json"):
        assert history.client(history.partner_staff).get(path).status_code == 403
        assert history.client(history.auditor).post(path).status_code == 403
        assert history.client(history.owner_admin).post(path).status_code == 405


def test_the_access_report_downloads_as_csv_and_json(history: History):
    today = dt.datetime.now(dt.UTC).date()
    params = {
        "account": history.owner.account_uid,
        "since": (today - dt.timedelta(days=7)).isoformat(),
        "until": today.isoformat(),
    }
    client = history.client(history.auditor)
    csv_response = client.get("/audit/access/export.csv", params)
    assert csv_response["Content-Disposition"].startswith('attachment; filename="access-report-')
    rows = parse_csv(download(csv_response))
    assert list(rows[0].keys()) == list(REPORT_COLUMNS)
    [row] = rows
    assert row["kind"] == "account" and row["partner_account_uid"] == "12345678"
    assert row["approved_by"] == str(history.owner_admin) + f" <{history.owner_admin.email}>"
    assert row["approved_with_mfa"] == "yes"
    assert row["ended"].startswith("revoked by")
    # The last partner left, so the worker detached the role's policy and deleted it: its
    # credentials stopped working then, before the trust ended with the deletion.
    assert row["access_from"] < row["stopped_at"] < row["access_until"] == row["worst_case_until"]
    assert row["stopped_by"].endswith("then it was deleted") and row["still_able"] == "no"
    document = json.loads(download(client.get("/audit/access/export.json", params)))
    assert document["export"]["account_uid"] == history.owner.account_uid
    assert document["export"]["per_person_data"] is False
    assert document["rows"][0]["delegation_id"] == str(history.delegation.pk)
    assert document["rows"][0]["approved_with_mfa"] is True
    assert document["rows"][0]["still_able"] is False


def test_a_bad_report_request_is_not_a_download(history: History):
    response = history.client(history.auditor).get("/audit/access/export.csv", {"account": "1"})
    assert response.status_code == 400 and "Content-Disposition" not in response
