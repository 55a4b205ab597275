"""Streamed CSV and JSON downloads of audit events and of the access report.

Rows are produced from `.iterator(chunk_size=...)` and written out as they come, so exporting
a million events holds one chunk in memory, never the result. CSV cells that a spreadsheet
would run as a formula are neutralised; JSON keeps every value exactly as recorded.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.http import StreamingHttpResponse

from audit.models import AuditEvent
from audit.verify_export import (
    EXPORT_FORMAT,
    EXPORT_VERSION,
    closing_line,
    export_line,
    header_digest,
    opening_line,
    record_of,
)
from auditor.presentation import cloud_request_ids
from auditor.reports import AccessReport, ReportRow
from auditor.selectors import ExportChain

EXPORT_CHUNK_SIZE = 2000
# Rows are gathered into writes of about this many characters: one network write per row
# would be slow, one per export would hold it all in memory.
_WRITE_SIZE = 64 * 1024
# Spreadsheets treat a cell starting with these as a formula (CSV injection); tab and
# carriage return are how some of them smuggle one past a naive check.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")

EVENT_COLUMNS = (
    "sequence",
    "occurred_at",
    "action",
    "outcome",
    "actor",
    "actor_id",
    "actor_organisation",
    "target_type",
    "target_id",
    "target_label",
    "before",
    "after",
    "metadata",
    "source",
    "source_ip",
    "request_id",
    "cloud_request_ids",
    "prev_hash",
    "hash",
)

REPORT_COLUMNS = (
    "kind",
    "who",
    "detail",
    "partner",
    "partner_account_uid",
    "account_uid",
    "role",
    "delegation_id",
    "approved_by",
    "approved_at",
    "approved_with_mfa",
    "access_from",
    "access_until",
    "residual_until",
    "worst_case_until",
    "ended",
    "still_able",
    "stopped_at",
    "stopped_by",
    "credentials_issued",
    "notes",
    "used_calls",
    "used_first",
    "used_last",
)


def csv_safe(value: Any) -> str:
    """The cell's text, with a leading `'` when it would start a spreadsheet formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def _time(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_record(event: AuditEvent) -> dict[str, Any]:
    """One event as exported: every recorded field (hashes included, so the export can be
    matched against the chain), plus the cloud request ids its data names."""
    return {
        "sequence": event.sequence,
        "occurred_at": _time(event.occurred_at),
        "action": event.action,
        "outcome": event.outcome,
        "actor": event.actor_label,
        "actor_id": event.actor_id,
        "actor_organisation": event.actor_organisation_label,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "before": event.before,
        "after": event.after,
        "metadata": event.metadata,
        "source": event.source,
        "source_ip": event.source_ip,
        "request_id": event.request_id,
        "cloud_request_ids": cloud_request_ids(event.after, event.metadata),
        "prev_hash": event.prev_hash,
        "hash": event.hash,
    }


def chained_event_record(
    event: AuditEvent, scope_organisation_ids: list[Any], *, org_prev_hash: str, org_hash: str
) -> dict[str, Any]:
    """One event as the verifiable JSON export writes it: exactly the fields its hash covers
    (so `audit.verify_export` can recompute it), its global link and its link in the
    exporting organisation's chain."""
    record = record_of(event.chain_payload(scope_organisation_ids))
    record.update(
        prev_hash=event.prev_hash, hash=event.hash, org_prev_hash=org_prev_hash, org_hash=org_hash
    )
    return record


@dataclass(frozen=True)
class WrittenExport:
    """What a verifiable export wrote before its closing line, for the event that records it:
    the digests `audit.verify_export` checks the file against, and what it holds."""

    filters: Mapping[str, Any]
    header_sha256: str
    export_sha256: str
    events: int
    omitted: int


# Records the export (`written=`) in the organisation's chain and answers that event as the
# closing line carries it (`chained_event_record`).
Attest = Callable[..., Mapping[str, Any]]


def chain_lines(about: Mapping[str, Any], chain: ExportChain, *, attest: Attest) -> Iterator[str]:
    """The verifiable JSON export (see `audit.verify_export`): a header with the
    organisation's chain at both ends of the export, then one line per link of the chain
    between them, newest first: the matching events in full, the others `omitted` (sequence
    and hashes only), so deleting, reordering or editing any line is detectable offline.

    Once the last line is written, `attest` records the export in the organisation's chain
    with the digests of the header and of everything written, and the closing line carries
    that event: the header (filters included) is then as tamper-evident as the events. It is
    recorded only when the whole file was produced; a download cut short records nothing."""
    header = {
        **about,
        "format": EXPORT_FORMAT,
        "format_version": EXPORT_VERSION,
        "chain": {
            "org_head_sequence": chain.org_head[0] if chain.org_head else None,
            "org_head_hash": chain.org_head[1] if chain.org_head else None,
            "newest_sequence": chain.newest[0] if chain.newest else None,
            "newest_org_hash": chain.newest[1] if chain.newest else None,
            "oldest_sequence": chain.oldest[0] if chain.oldest else None,
            "oldest_org_prev_hash": chain.oldest[1] if chain.oldest else None,
        },
    }

    def records() -> Iterator[dict[str, Any]]:
        events = iter(chain.events)
        pending = next(events, None)
        for sequence, event_hash, org_prev_hash, org_hash in chain.links:
            if pending is not None and pending[0].sequence == sequence:
                event, scopes = pending
                yield chained_event_record(
                    event, scopes, org_prev_hash=org_prev_hash, org_hash=org_hash
                )
                pending = next(events, None)
            else:
                yield {
                    "sequence": sequence,
                    "omitted": True,
                    "hash": event_hash,
                    "org_prev_hash": org_prev_hash,
                    "org_hash": org_hash,
                }

    def lines() -> Iterator[str]:
        written = hashlib.sha256()
        header_text = json.dumps(header, ensure_ascii=False)
        counts = {"events": 0, "omitted": 0}
        for piece in _events_text(header_text, records(), counts):
            written.update(piece.encode("utf-8"))
            yield piece
        attestation = attest(
            written=WrittenExport(
                filters=header.get("filters") or {},
                # The header as the verifier reads it back, whatever Python types built it.
                header_sha256=header_digest(json.loads(header_text)),
                export_sha256=written.hexdigest(),
                events=counts["events"],
                omitted=counts["omitted"],
            )
        )
        yield closing_line(attestation) + "\n"

    return _batched(lines())


def _events_text(
    header_text: str, records: Iterable[Mapping[str, Any]], counts: dict[str, int]
) -> Iterator[str]:
    """Everything before the closing line, counting the full and the omitted events."""
    yield opening_line(header_text) + "\n"
    separator = ""
    for record in records:
        counts["omitted" if record.get("omitted") else "events"] += 1
        yield separator + export_line(record)
        separator = ",\n"
    if separator:
        yield "\n"


def report_record(row: ReportRow) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "who": row.who,
        "detail": row.detail,
        "partner": row.partner_name,
        "partner_account_uid": row.partner_account_uid,
        "account_uid": row.account_uid,
        "role": row.role_name,
        "delegation_id": row.delegation_id,
        "approved_by": row.approved_by,
        "approved_at": _time(row.approved_at),
        "approved_with_mfa": row.approved_with_mfa,
        "access_from": _time(row.access_from),
        "access_until": _time(row.access_until),
        "residual_until": _time(row.residual_until),
        "worst_case_until": _time(row.worst_case_until),
        "ended": row.ended_how,
        "still_able": row.still_able,
        "stopped_at": _time(row.stopped_at),
        "stopped_by": row.stopped_by,
        "credentials_issued": row.credentials,
        "notes": list(row.notes),
        "used_calls": row.used_calls,
        "used_first": _time(row.used_first),
        "used_last": _time(row.used_last),
    }


def _cell(value: Any) -> str:
    if isinstance(value, dict | list):
        if value and all(isinstance(v, str) for v in value) and isinstance(value, list):
            return " ".join(value)
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return "" if value is None else str(value)


class _Line:
    """A file-like object whose write returns what was written (for csv.writer)."""

    def write(self, value: str) -> str:
        return value


def _batched(pieces: Iterable[str]) -> Iterator[str]:
    buffer: list[str] = []
    size = 0
    for piece in pieces:
        buffer.append(piece)
        size += len(piece)
        if size >= _WRITE_SIZE:
            yield "".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield "".join(buffer)


def csv_lines(columns: Sequence[str], records: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    """A UTF-8 CSV (with a byte-order mark, so spreadsheets read non-ASCII names right)."""
    writer = csv.writer(_Line())

    def lines() -> Iterator[str]:
        yield "\ufeff" + writer.writerow(columns)
        for record in records:
            yield writer.writerow([csv_safe(_cell(record.get(c))) for c in columns])

    return _batched(lines())


def json_lines(
    about: Mapping[str, Any], key: str, records: Iterable[Mapping[str, Any]]
) -> Iterator[str]:
    """`{"export": {...about...}, "<key>": [record, ...]}`, one record per line."""

    def lines() -> Iterator[str]:
        yield '{"export": ' + json.dumps(about, ensure_ascii=False) + f', "{key}": [\n'
        separator = ""
        for record in records:
            yield separator + json.dumps(record, ensure_ascii=False, sort_keys=True)
            separator = ",\n"
        yield "\n]}\n"

    return _batched(lines())


_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def download(chunks: Iterator[str], *, filename: str, kind: str) -> StreamingHttpResponse:
    content_type = "text/csv; charset=utf-8" if kind == "csv" else "application/json"
    response = StreamingHttpResponse(chunks, content_type=content_type)
    safe_name = _FILENAME_UNSAFE.sub("-", filename).strip("-") or "export"
    response["Content-Disposition"] = f'attachment; filename="{safe_name}.{kind}"'
    response["Cache-Control"] = "no-store"
    return response


def events_export_csv(events: Any, *, filename: str) -> StreamingHttpResponse:
    """Stream a queryset of events (iterated in chunks) as CSV."""
    records = (event_record(e) for e in events.iterator(chunk_size=EXPORT_CHUNK_SIZE))
    return download(csv_lines(EVENT_COLUMNS, records), filename=filename, kind="csv")


def events_export_json(
    chain: ExportChain, *, about: Mapping[str, Any], filename: str, attest: Attest
) -> StreamingHttpResponse:
    """Stream the verifiable JSON export of an organisation's chain (see `chain_lines`)."""
    return download(chain_lines(about, chain, attest=attest), filename=filename, kind="json")


def report_export(
    report: AccessReport, *, kind: str, about: Mapping[str, Any], filename: str
) -> StreamingHttpResponse:
    records = (report_record(row) for row in report.rows)
    chunks = (
        csv_lines(REPORT_COLUMNS, records) if kind == "csv" else json_lines(about, "rows", records)
    )
    return download(chunks, filename=filename, kind=kind)
