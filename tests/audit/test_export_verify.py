"""Verifiable exports: each organisation's own hash chain, written by `audit_record`, checked by
`audit/verify.py`, and carried by the JSON export so `audit.verify_export` can check a
download offline with nothing but the standard library."""

import json
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

import audit.verify_export
from audit.chain import GENESIS_HASH, org_link_hash
from audit.models import AuditEvent, AuditEventScope
from audit.verify import Problem, verify_chain
from audit.verify_export import ExportError, export_line, verify_export_text
from tests.audit import tampering
from tests.audit.conftest import ANY_ACTION, make_organisation, record
from tests.audit.history import (  # noqa: F401
    History,
    active_history_fixture,
    history_fixture,
)

pytestmark = pytest.mark.django_db


def download(response) -> str:
    assert response.status_code == 200, response.content[:500]
    return b"".join(response.streaming_content).decode("utf-8")


def org_chain(organisation) -> list[tuple[int, str, str]]:
    return list(
        AuditEventScope.objects.filter(organisation=organisation)
        .order_by("event_id")
        .values_list("event_id", "org_prev_hash", "org_hash")
    )


# --- the organisation's chain in the ledger ----------------------------------------------------


def test_each_organisation_gets_a_gap_free_chain_of_its_own_events(owner_org, partner_org):
    shared = record(action=ANY_ACTION, organisation=owner_org, related_organisations=[partner_org])
    own = record(action=ANY_ACTION, organisation=owner_org)
    theirs = record(action=ANY_ACTION, organisation=partner_org)
    owner_links = org_chain(owner_org)
    assert [s for s, _, _ in owner_links] == [shared.sequence, own.sequence]
    assert owner_links[0][1] == GENESIS_HASH
    assert owner_links[0][2] == org_link_hash(GENESIS_HASH, shared.hash)
    assert owner_links[1] == (
        own.sequence,
        owner_links[0][2],
        org_link_hash(owner_links[0][2], own.hash),
    )
    partner_links = org_chain(partner_org)
    assert [s for s, _, _ in partner_links] == [shared.sequence, theirs.sequence]
    assert partner_links[1][1] == partner_links[0][2]
    assert verify_chain().ok


def test_recording_takes_one_statement_more_for_the_organisation_chains(
    owner_org, partner_org, django_assert_num_queries
):
    from django.db import transaction

    from audit.services import audit_record

    record(action=ANY_ACTION, organisation=owner_org)
    # PostgreSQL: one call of `audit_append()` (the lock, the organisations' chain ends, the
    # event, the scopes with their links, the head; issue 19 item 5). Elsewhere: the lock,
    # the organisations' chain ends (one statement for both), the event, its scopes, the head.
    statements = 1 if connection.vendor == "postgresql" else 5
    with transaction.atomic(), django_assert_num_queries(statements):
        event = audit_record(
            action=ANY_ACTION, organisation=owner_org, related_organisations=[partner_org]
        )
    # Either way the same links: each organisation's chain goes on from its previous event.
    owner_links = org_chain(owner_org)
    assert owner_links[-1][0] == event.sequence and owner_links[-1][1] == owner_links[-2][2]
    assert [s for s, _, _ in org_chain(partner_org)] == [event.sequence]
    assert org_chain(partner_org)[0][1] == GENESIS_HASH
    assert verify_chain().ok


def _tamper_scope(sequence: int, organisation, column: str, value: str) -> None:
    organisation_id = AuditEventScope._meta.get_field("organisation").get_db_prep_value(
        organisation.pk, connection
    )
    tampering.execute(
        (
            f"UPDATE audit_auditeventscope SET {column} = %s "  # noqa: S608 (fixed columns)
            "WHERE event_id = %s AND organisation_id = %s",
            [value, sequence, organisation_id],
        )
    )


@pytest.mark.parametrize(
    "column, problem",
    [("org_hash", Problem.ORG_HASH_MISMATCH), ("org_prev_hash", Problem.ORG_LINK_BROKEN)],
)
def test_the_chain_verifier_checks_every_organisation_link(owner_org, column, problem):
    events = [record(action=ANY_ACTION, organisation=owner_org) for _ in range(4)]
    _tamper_scope(events[2].sequence, owner_org, column, "f" * 64)
    result = verify_chain()
    assert (result.ok, result.problem, result.first_bad_sequence) == (
        False,
        problem,
        events[2].sequence,
    )


def test_the_migration_backfills_the_chains_in_sequence_order(owner_org, partner_org):
    for number in range(7):
        related = [partner_org] if number % 2 else []
        record(action=ANY_ACTION, organisation=owner_org, related_organisations=related)
    record(action=ANY_ACTION, organisation=partner_org)
    written = {org: org_chain(org) for org in (owner_org, partner_org)}
    tampering.execute(("UPDATE audit_auditeventscope SET org_prev_hash = '', org_hash = ''", []))
    assert not verify_chain().ok

    migration = import_module_0004()
    state = MigrationExecutor(connection).loader.project_state(("audit", "0004_organisation_chain"))
    # What RunPython hands the function: the historical models and the connection.
    migration.backfill(state.apps, SimpleNamespace(connection=connection))

    assert {org: org_chain(org) for org in (owner_org, partner_org)} == written
    assert verify_chain().ok
    with pytest.raises(Exception, match="append-only"):  # the triggers are back
        tampering_free_update()


def import_module_0004():
    import importlib

    return importlib.import_module("audit.migrations.0004_organisation_chain")


def tampering_free_update() -> None:
    with connection.cursor() as cursor:
        cursor.execute("UPDATE audit_auditeventscope SET org_hash = org_hash")


# --- the export --------------------------------------------------------------------------------


@pytest.fixture
def exported(history: History) -> str:
    # Events of other tenants sit between the owner's: the global chain has gaps here.
    other = make_organisation()
    record(action=ANY_ACTION, organisation=other)
    record(action=ANY_ACTION, organisation=history.owner, target_label="after a foreign event")
    visible = set(
        AuditEventScope.objects.filter(organisation=history.owner).values_list(
            "event_id", flat=True
        )
    )
    text = download(history.client(history.auditor).get("/audit/events/export.json"))
    sequences = [e["sequence"] for e in json.loads(text)["events"]]
    assert sorted(sequences, reverse=True) == sequences and set(sequences) == visible
    assert max(visible) - min(visible) + 1 > len(visible)  # gaps in the global chain
    return text


def event_lines(text: str) -> list[int]:
    """Indexes (0-based) of the lines holding an event."""
    return [i for i, line in enumerate(text.split("\n")) if line.startswith('{"action"')]


def test_a_clean_export_verifies(exported: str, history: History):
    summary = verify_export_text(exported)
    header = json.loads(exported)["export"]
    assert summary.organisation_id == str(history.owner.pk) == header["organisation_id"]
    assert summary.events == len(json.loads(exported)["events"]) and summary.omitted == 0
    links = AuditEventScope.objects.filter(organisation=history.owner).order_by("-event_id")
    recorded, newest = links[0], links[1]
    assert (summary.newest_sequence, summary.newest_org_hash) == (newest.event_id, newest.org_hash)
    assert header["chain"]["org_head_hash"] == newest.org_hash
    # The export's own record comes after it in the chain, and is what to compare.
    assert recorded.event.action == "audit.exported"
    assert (summary.recorded_sequence, summary.recorded_org_hash) == (
        recorded.event_id,
        recorded.org_hash,
    )
    assert recorded.org_hash in summary.describe()


def test_a_filtered_export_links_the_events_it_leaves_out(active_history: History):
    history = active_history
    record(action=ANY_ACTION, organisation=history.owner, target_label="not this delegation")
    history.end()
    client = history.client(history.auditor)
    text = download(client.get("/audit/events/export.json", {"delegation": history.delegation.pk}))
    events = json.loads(text)["events"]
    full = [e for e in events if not e.get("omitted")]
    left_out = [e for e in events if e.get("omitted")]
    assert full and left_out  # the owner's other events sit among the delegation's
    assert set(left_out[0]) == {"sequence", "omitted", "hash", "org_prev_hash", "org_hash"}
    summary = verify_export_text(text)
    assert (summary.events, summary.omitted) == (len(full), len(left_out))
    stored = AuditEvent.objects.get(sequence=full[0]["sequence"])
    assert full[0]["metadata"] == stored.metadata and full[0]["hash"] == stored.hash


def test_a_filtered_export_says_how_many_events_it_could_not_check(active_history: History):
    """Review finding: the summary read as if every event had been checked."""
    history = active_history
    record(action=ANY_ACTION, organisation=history.owner, target_label="not this delegation")
    client = history.client(history.auditor)
    text = download(client.get("/audit/events/export.json", {"delegation": history.delegation.pk}))
    left_out = [e for e in json.loads(text)["events"] if e.get("omitted")]
    summary = verify_export_text(text)
    assert summary.filters == {"delegation": str(history.delegation.pk)}
    described = summary.describe()
    assert f"{len(left_out)} events left out by the export's filters" in described
    assert "could not be checked" in described
    assert f"delegation={history.delegation.pk}" in described


def _blank(text: str, index: int) -> tuple[str, int]:
    """The export with the event on line `index` (0-based) turned into an `omitted` line."""
    lines = text.split("\n")
    raw = lines[index]
    event = json.loads(raw.removesuffix(","))
    hidden = {
        "sequence": event["sequence"],
        "omitted": True,
        "hash": event["hash"],
        "org_prev_hash": event["org_prev_hash"],
        "org_hash": event["org_hash"],
    }
    lines[index] = export_line(hidden) + ("," if raw.endswith(",") else "")
    return "\n".join(lines), event["sequence"]


def test_blanking_an_event_of_an_unfiltered_export_is_detected(exported: str):
    """Review finding: an unfiltered export omits nothing, so an `omitted` line in one is an
    event whose content was blanked out (its hashes kept, so the chain still links)."""
    assert json.loads(exported)["export"]["filters"] == {}
    for index in event_lines(exported)[:3]:
        tampered, sequence = _blank(exported, index)
        error = _failure(tampered)
        assert error.line == index + 1
        assert f"event {sequence} is left out" in error.message
    # A header without the filters at all is an edited header.
    header, rest = tampered.split("\n", 1)
    assert _failure(header.replace('"filters": {}, ', "") + "\n" + rest).line == 1


def test_a_header_edited_to_name_filters_cannot_excuse_blanked_events(exported: str):
    """Review finding: `filters` in the header excused `omitted` lines, and the header was
    anyone's to edit. Naming filters in an unfiltered export made blanked events pass."""
    index = event_lines(exported)[1]
    tampered, _sequence = _blank(exported, index)
    header, rest = tampered.split("\n", 1)
    forged = header.replace('"filters": {}', '"filters": {"action": "delegation."}', 1)
    assert forged != header
    error = _failure(forged + "\n" + rest)
    assert error.line == 1
    assert "header" in error.message


def _filtered_export(history: History) -> str:
    """An export of the delegation's events, with one of the owner's other events among them."""
    record(action=ANY_ACTION, organisation=history.owner, target_label="not this delegation")
    history.end()
    client = history.client(history.auditor)
    return download(client.get("/audit/events/export.json", {"delegation": history.delegation.pk}))


def test_blanking_an_event_of_a_filtered_export_is_detected(active_history: History):
    """The filters excuse the events they left out, never one they kept: the export's record
    holds the digest of every line written."""
    text = _filtered_export(active_history)
    tampered, _sequence = _blank(text, event_lines(text)[0])
    error = _failure(tampered)
    assert error.line == len(tampered.rstrip("\n").split("\n"))
    assert "blanked out" in error.message


def test_swapping_a_kept_event_for_one_the_filters_left_out_is_detected(
    active_history: History,
):
    """Even with the content of an event the filters left out (from another export), a
    filtered export cannot be made to show it and hide one the filters kept."""
    text = _filtered_export(active_history)
    everything = download(
        active_history.client(active_history.auditor).get("/audit/events/export.json")
    )
    full_lines = {
        json.loads(line.removesuffix(","))["sequence"]: line.removesuffix(",")
        for line in everything.split("\n")[1:-2]
    }
    lines = text.split("\n")
    omitted = next(i for i, line in enumerate(lines) if '"omitted": true' in line)
    sequence = json.loads(lines[omitted].removesuffix(","))["sequence"]
    lines[omitted] = full_lines[sequence] + ("," if lines[omitted].endswith(",") else "")
    swapped, _hidden = _blank("\n".join(lines), event_lines(text)[0])
    assert "blanked out, or swapped" in _failure(swapped).message


def test_editing_the_exports_own_record_is_detected(exported: str):
    lines = exported.rstrip("\n").split("\n")
    closing = lines[-1]
    for edited in (
        # Its filters, to agree with a forged header: its hash no longer matches.
        closing.replace('"filters": {}', '"filters": {"action": "delegation."}', 1),
        # Another action: it is no record of an export.
        closing.replace('"action": "audit.exported"', '"action": "member.added"', 1),
        # Gone: a file without it ends early.
        "]}",
    ):
        assert edited != closing
        assert _failure("\n".join([*lines[:-1], edited]) + "\n").line == len(lines)
    # A header claiming the format before attestations is refused, not read without one.
    header = lines[0].replace('"format_version": 2', '"format_version": 1', 1)
    error = _failure("\n".join([header, *lines[1:]]))
    assert error.line == 1 and "format 1 carries no attestation" in error.message


def test_the_export_is_recorded_in_the_organisations_chain_with_what_it_holds(
    active_history: History,
):
    history = active_history
    text = _filtered_export(history)
    document = json.loads(text)
    summary = verify_export_text(text)
    recorded = AuditEvent.objects.get(action="audit.exported")
    assert recorded.sequence == document["attestation"]["sequence"] == summary.recorded_sequence
    assert recorded.actor_id == history.auditor.pk
    assert recorded.organisation_id == history.owner.pk
    assert recorded.source == "web" and recorded.request_id
    assert recorded.metadata["filters"] == {"delegation": str(history.delegation.pk)}
    assert (recorded.metadata["events"], recorded.metadata["omitted"]) == (
        summary.events,
        summary.omitted,
    )
    link = AuditEventScope.objects.get(event=recorded, organisation=history.owner)
    assert summary.recorded_org_hash == link.org_hash
    assert verify_chain().ok


def test_an_export_with_nothing_in_it_verifies(history: History):
    client = history.client(history.auditor)
    text = download(client.get("/audit/events/export.json", {"action": "no.such."}))
    assert json.loads(text)["events"] == []
    assert verify_export_text(text).events == 0


def _failure(text: str) -> ExportError:
    with pytest.raises(ExportError) as caught:
        verify_export_text(text)
    return caught.value


def test_editing_one_byte_of_any_event_is_detected(exported: str):
    lines = exported.split("\n")
    for index in event_lines(exported):
        line = lines[index]
        # One byte in the middle of the line, one in its hashes, one in its spacing.
        for position in (len(line) // 2, line.index('"org_hash"') + 13, line.index(", ") + 1):
            edited = (
                line[:position] + ("0" if line[position] != "0" else "1") + line[position + 1 :]
            )
            tampered = "\n".join([*lines[:index], edited, *lines[index + 1 :]])
            assert _failure(tampered).line == index + 1, (index, position)


def test_deleting_a_line_is_detected(exported: str):
    lines = exported.split("\n")
    for index in event_lines(exported)[:-1]:
        tampered = "\n".join([*lines[:index], *lines[index + 1 :]])
        assert _failure(tampered).line == index + 1
    # The last event: its separator moves to keep the JSON valid; the chain still tells.
    last = event_lines(exported)[-1]
    fixed = [*lines[: last - 1], lines[last - 1].removesuffix(","), *lines[last + 1 :]]
    assert "removed from the end" in _failure("\n".join(fixed)).message
    json.loads("\n".join(fixed))  # still valid JSON: only the chain can tell


def test_reordering_two_lines_is_detected(exported: str):
    lines = exported.split("\n")
    first, second = event_lines(exported)[3:5]
    lines[first], lines[second] = lines[second], lines[first]
    assert _failure("\n".join(lines)).line == first + 1


def test_truncating_the_file_is_detected(exported: str):
    for keep in (len(exported) // 3, len(exported) - 4, len(exported) - 1 - len('"]}')):
        error = _failure(exported[:keep])
        assert "truncated" in error.message or "cut" in error.message or error.line > 1


def test_an_export_of_another_organisation_passed_off_as_ours_is_detected(
    exported: str, history: History
):
    header, rest = exported.split("\n", 1)
    forged = header.replace(str(history.owner.pk), str(history.partner.pk))
    assert "not one of the organisation's events" in _failure(forged + "\n" + rest).message


# --- the verifier needs nothing but Python -------------------------------------------------------


def test_the_verifier_runs_isolated_with_only_the_standard_library(exported: str, tmp_path: Path):
    source = Path(audit.verify_export.__file__)
    assert not [
        line
        for line in source.read_text().splitlines()
        if line.startswith(("import ", "from "))
        and line.split()[1].split(".")[0]
        not in {"__future__", "hashlib", "json", "sys", "collections", "dataclasses", "typing"}
    ]
    alone = tmp_path / "verify_export.py"
    shutil.copy(source, alone)
    good = tmp_path / "export.json"
    good.write_text(exported, encoding="utf-8")
    # -I: no environment, no site-packages, no current directory on the path.
    result = subprocess.run(
        [sys.executable, "-I", str(alone), str(good)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("OK: ")

    lines = exported.split("\n")
    index = event_lines(exported)[2]
    lines[index] = lines[index].replace('"outcome": "success"', '"outcome": "failure"', 1)
    bad = tmp_path / "tampered.json"
    bad.write_text("\n".join(lines), encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-I", str(alone), str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert f"FAILED at line {index + 1}:" in result.stdout


def test_the_module_runs_with_python_m(exported: str, tmp_path: Path):
    path = tmp_path / "export.json"
    path.write_text(exported, encoding="utf-8")
    root = Path(audit.verify_export.__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "audit.verify_export", str(path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_event_page_shows_the_viewers_own_chain_link_to_compare_an_export_with(
    history: History,
):
    shared = AuditEvent.objects.filter(
        action="delegation.offered", organisation=history.owner
    ).get()
    for organisation, reader in (
        (history.owner, history.auditor),
        (history.partner, history.partner_admin),
    ):
        link = AuditEventScope.objects.get(event=shared, organisation=organisation)
        body = history.client(reader).get(f"/audit/events/{shared.sequence}/").content.decode()
        assert link.org_hash in body and link.org_prev_hash in body
    other = AuditEventScope.objects.get(event=shared, organisation=history.partner)
    owner_body = history.client(history.auditor).get(f"/audit/events/{shared.sequence}/")
    assert other.org_hash not in owner_body.content.decode()
