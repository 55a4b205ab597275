"""Check an organisation's audit export offline, with nothing but Python's standard library.

    python -m audit.verify_export audit-events-company-a-20260301T090000Z.json
    python -I verify_export.py FILE      # this file alone, copied anywhere

An export (the History page's JSON download) is one JSON document written one event per line,
newest first: a header line, one line per event, and a closing line. Every event line carries
the event's recorded fields, its link in the portal's global chain (`prev_hash`, `hash`) and
its link in the organisation's own chain (`org_prev_hash`, `org_hash`). The organisation's
chain runs through every event the organisation may see and nothing else, so an export of one
organisation is a contiguous stretch of it even though the global chain has gaps there (the
events of other organisations).

The closing line carries the export's own record: once the last line is written the portal
records an `audit.exported` event in the organisation's chain whose metadata holds the SHA-256
of the header (`header_sha256`, canonical JSON) and of every byte written before the closing
line (`export_sha256`), and writes that event in full as the `attestation`. So the header, its
filters included, and every line are bound to one event of the chain.

The verifier recomputes, for every line:

- the event's hash: SHA-256(prev_hash ‖ canonical JSON of its fields), exactly as the portal
  wrote it (an edited field, however small, changes it);
- its organisation link: org_hash = SHA-256(org_prev_hash ‖ hash);
- that it links to its neighbour: each line's `org_prev_hash` is the next (older) line's
  `org_hash`, so a deleted, inserted or reordered line breaks the chain;
- that the line is byte for byte how the portal writes it (so even spacing is covered);

and, with the header, that the newest line is the organisation's chain at the header's
`newest_sequence` and the oldest links to the header's `oldest_org_prev_hash` (a truncated
file fails here).

Events a filter left out appear as short `omitted` lines (sequence and hashes only), so a
filtered export still proves that no event between its events is missing: each omitted line
holds its place in the chain. Their content is not in the file, so it cannot be checked, and
the summary says how many events that is and which filters the header names. An export
without filters (the header's `filters` empty) leaves nothing out: an `omitted` line there is
an event whose content was blanked out, and fails the check.

The attestation is checked like an event (its hash from its fields, its organisation link,
that it is the organisation's) and its two digests against the file: a header edited (say to
name filters that would excuse blanked events), an event blanked out, or one swapped for
another the filters left out, all fail. What no file can prove on its own is that the
attestation is the portal's and not a whole export forged with hashes of its own: that takes
one comparison with the portal, the attestation's `org_hash` with the "Organisation chain" of
its event's page (the summary prints the event's number and that hash). The chain is
append-only, so the value never changes once written. No secret of the portal's is involved,
so anyone can run every check: a header signed with a key of the portal's (an HMAC) would
prove the same only to whoever holds that key, never offline.

Exit status: 0 when the export verifies, 1 when it does not (the first bad line is named),
2 when the file cannot be read. This module imports only the standard library: `audit.chain`
takes the hash arithmetic from here, so the portal and this check cannot drift apart.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The link before the first event of a chain (global or an organisation's): 64 zeros.
GENESIS_HASH = "0" * 64
HASH_VERSION = 1
EXPORT_FORMAT = "partner-access-portal/audit-events"
# 2: the closing line carries the export's attestation (version 1 had none).
EXPORT_VERSION = 2
# The action of the event that records an export (`audit.actions.AuditAction.AUDIT_EXPORTED`).
EXPORT_ACTION = "audit.exported"


def canonical_json(payload: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the same bytes for the same content everywhere."""
    return json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def link_hash(prev_hash: str, payload: Mapping[str, Any]) -> str:
    """SHA-256(prev_hash ‖ canonical JSON of the event), hex."""
    digest = hashlib.sha256()
    digest.update(prev_hash.encode("ascii"))
    digest.update(canonical_json(payload))
    return digest.hexdigest()


def org_link_hash(org_prev_hash: str, event_hash: str) -> str:
    """An organisation's chain link: SHA-256(org_prev_hash ‖ the event's hash), hex."""
    return hashlib.sha256((org_prev_hash + event_hash).encode("ascii")).hexdigest()


def export_line(record: Mapping[str, Any]) -> str:
    """One exported record exactly as the portal writes it (and as this check expects)."""
    return json.dumps(record, ensure_ascii=False, sort_keys=True)


def header_digest(header: Mapping[str, Any]) -> str:
    """What the attestation's `header_sha256` holds: SHA-256 of the header's canonical JSON
    (without the attestation, which comes after it)."""
    return hashlib.sha256(canonical_json(header)).hexdigest()


def opening_line(header_text: str) -> str:
    """The export's first line: the header as written (JSON) and the start of the events."""
    return _HEADER_PREFIX + header_text + _HEADER_SUFFIX


def closing_line(attestation: Mapping[str, Any]) -> str:
    """The export's last line: the end of the events and the attestation event in full."""
    return _CLOSING_PREFIX + export_line(attestation) + "}"


# Exported field → the hashed payload's field, for the fields whose names differ.
PAYLOAD_NAMES = {
    "hash_version": "v",
    "actor": "actor_label",
    "actor_organisation": "actor_organisation_label",
}
PAYLOAD_FIELDS = (
    "hash_version",
    "sequence",
    "occurred_at",
    "action",
    "outcome",
    "actor_id",
    "actor",
    "actor_organisation_id",
    "actor_organisation",
    "organisation_id",
    "scopes",
    "target_type",
    "target_id",
    "target_label",
    "before",
    "after",
    "metadata",
    "source",
    "source_ip",
    "request_id",
)
LINK_FIELDS = ("prev_hash", "hash", "org_prev_hash", "org_hash")
OMITTED_FIELDS = frozenset({"sequence", "omitted", "hash", "org_prev_hash", "org_hash"})


def payload_of(record: Mapping[str, Any]) -> dict[str, Any]:
    """The content an exported event's hash covers, under the chain's own field names."""
    return {PAYLOAD_NAMES.get(name, name): record[name] for name in PAYLOAD_FIELDS}


def record_of(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The exported fields of an event's hashed payload (the inverse of `payload_of`)."""
    return {name: payload[PAYLOAD_NAMES.get(name, name)] for name in PAYLOAD_FIELDS}


class ExportError(Exception):
    """The export does not verify; `line` is the 1-based line of the file at fault."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


@dataclass(frozen=True)
class ExportSummary:
    organisation_id: str
    organisation: str
    events: int
    omitted: int
    newest_sequence: int | None
    oldest_sequence: int | None
    newest_org_hash: str
    # The event that records this export (the attestation) and its organisation link: the one
    # value to compare with the portal.
    recorded_sequence: int
    recorded_org_hash: str
    # The header's filters: empty for an export of everything, which may omit nothing.
    filters: dict[str, Any] = field(default_factory=dict)

    def compare(self) -> str:
        return (
            f"This export is recorded as event {self.recorded_sequence}: compare its "
            f"organisation chain hash {self.recorded_org_hash} with that event's page in the "
            "portal (History, Organisation chain). If they match, the header, filters included, "
            "and every line are the portal's."
        )

    def describe(self) -> str:
        if self.newest_sequence is None:
            return (
                f"OK: an empty export for {self.organisation} ({self.organisation_id}). "
                + self.compare()
            )
        if self.filters:
            named = ", ".join(f"{name}={value}" for name, value in sorted(self.filters.items()))
            checked = (
                f"{self.events} events checked; {self.omitted} events left out by the export's "
                f"filters ({named}) could not be checked: their place in the chain is proven, "
                "their content is not in the file"
            )
        else:
            checked = f"{self.events} events checked, every event of the chain between them"
        return (
            f"OK: {checked}. Organisation {self.organisation} ({self.organisation_id}), "
            f"sequences {self.oldest_sequence} to {self.newest_sequence}; organisation chain at "
            f"{self.newest_sequence}: {self.newest_org_hash}. " + self.compare()
        )


_HEADER_PREFIX = '{"export": '
_HEADER_SUFFIX = ', "events": ['
_CLOSING_PREFIX = '], "attestation": '


def _is_hash(value: Any) -> bool:
    return (
        isinstance(value, str)
        and len(value) == 64
        and all(character in "0123456789abcdef" for character in value)
    )


def _header(first: str) -> dict[str, Any]:
    if not (first.startswith(_HEADER_PREFIX) and first.endswith(_HEADER_SUFFIX)):
        raise ExportError(1, "this is not an audit events export (its first line is not one)")
    try:
        header = json.loads(first[len(_HEADER_PREFIX) : -len(_HEADER_SUFFIX)])
    except ValueError:
        raise ExportError(1, "the header is not valid JSON") from None
    chain = header.get("chain") if isinstance(header, dict) else None
    if not isinstance(chain, dict) or header.get("format") != EXPORT_FORMAT:
        raise ExportError(1, "the header names no organisation chain: not a verifiable export")
    if header.get("format_version") == 1:
        raise ExportError(
            1,
            "an export of format 1 carries no attestation, so nothing proves its header: "
            "export again (the chain never changes, so the same events come out)",
        )
    if header.get("format_version") != EXPORT_VERSION:
        raise ExportError(1, f"unknown export version {header.get('format_version')!r}")
    if not isinstance(header.get("filters", {}), dict):
        raise ExportError(1, "the header's filters are not readable")
    return header


def _record(number: int, text: str) -> dict[str, Any]:
    try:
        record = json.loads(text)
    except ValueError:
        raise ExportError(number, "not a JSON record (the line was cut or edited)") from None
    if not isinstance(record, dict):
        raise ExportError(number, "not a JSON record")
    if export_line(record) != text:
        raise ExportError(number, "the line is not as the portal wrote it (it was edited)")
    return record


def _check_event(number: int, record: dict[str, Any], organisation_id: str) -> None:
    if record.get("omitted") is True:
        if set(record) != OMITTED_FIELDS:
            raise ExportError(number, "an omitted event carries unexpected fields")
    else:
        missing = [name for name in (*PAYLOAD_FIELDS, *LINK_FIELDS) if name not in record]
        if missing:
            raise ExportError(number, f"fields missing: {', '.join(missing)}")
        if record["hash_version"] != HASH_VERSION:
            raise ExportError(number, f"unknown hash version {record['hash_version']!r}")
        if not _is_hash(record["prev_hash"]):
            raise ExportError(number, "prev_hash is not a SHA-256 hex digest")
        try:
            computed = link_hash(record["prev_hash"], payload_of(record))
        except (TypeError, ValueError):
            raise ExportError(number, "the event's fields cannot be hashed") from None
        if computed != record["hash"]:
            raise ExportError(
                number,
                f"event {record['sequence']}'s content does not match its hash (it was edited)",
            )
        scopes = record["scopes"]
        if not isinstance(scopes, list) or organisation_id not in scopes:
            raise ExportError(
                number, f"event {record['sequence']} is not one of the organisation's events"
            )
    for name in ("hash", "org_prev_hash", "org_hash"):
        if not _is_hash(record[name]):
            raise ExportError(number, f"{name} is not a SHA-256 hex digest")
    if org_link_hash(record["org_prev_hash"], record["hash"]) != record["org_hash"]:
        raise ExportError(
            number, f"event {record['sequence']}'s organisation link does not match its hash"
        )


def _attestation(number: int, line: str, organisation_id: str) -> dict[str, Any]:
    """The closing line's record of the export, checked as an event of the organisation."""
    if not (line.startswith(_CLOSING_PREFIX) and line.endswith("}")):
        raise ExportError(number, "the file ends early: it was truncated")
    record = _record(number, line[len(_CLOSING_PREFIX) : -1])
    if record.get("omitted") is True or record.get("action") != EXPORT_ACTION:
        raise ExportError(number, "the closing line holds no record of the export")
    _check_event(number, record, organisation_id)
    metadata = record["metadata"]
    if not (
        isinstance(metadata, dict)
        and _is_hash(metadata.get("header_sha256"))
        and _is_hash(metadata.get("export_sha256"))
    ):
        raise ExportError(number, "the export's record holds no digests of the file")
    return record


def verify_export_text(text: str) -> ExportSummary:
    """Verify a whole export; raises ExportError naming the first bad line."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the file's final newline
    if not lines:
        raise ExportError(1, "the file is empty")
    header = _header(lines[0])
    chain = header["chain"]
    organisation_id = str(header.get("organisation_id") or "")
    if not organisation_id:
        raise ExportError(1, "the header names no organisation")
    if len(lines) < 2:
        raise ExportError(2, "the file ends early: it was truncated")
    attestation = _attestation(len(lines), lines[-1], organisation_id)
    digests = attestation["metadata"]
    recorded = attestation["sequence"]
    if header_digest(header) != digests["header_sha256"]:
        raise ExportError(
            1,
            f"the header is not the one the portal recorded exporting (event {recorded}): it "
            "was edited (its filters, perhaps, to excuse events left out)",
        )
    # An export of everything leaves nothing out: there an omitted line is a blanked event.
    filters: dict[str, Any] = header.get("filters") or {}
    expected_hash = chain.get("newest_org_hash")
    expected_sequence = chain.get("newest_sequence")
    events = omitted = 0
    last_sequence: int | None = None
    body = lines[1:-1]
    for offset, raw in enumerate(body):
        number = offset + 2
        last = offset == len(body) - 1
        if last == raw.endswith(","):
            raise ExportError(number, "the line's separator is wrong: lines were moved or cut")
        record = _record(number, raw if last else raw[:-1])
        sequence = record.get("sequence")
        if not isinstance(sequence, int) or isinstance(sequence, bool) or sequence < 1:
            raise ExportError(number, "the line has no sequence number")
        if last_sequence is not None and sequence >= last_sequence:
            raise ExportError(number, f"event {sequence} is out of order (newest first)")
        if last_sequence is None and sequence != expected_sequence:
            raise ExportError(
                number,
                f"the newest event is {sequence}, the header says {expected_sequence}: "
                "lines were removed from the top",
            )
        if record.get("omitted") is True and not filters:
            raise ExportError(
                number,
                f"event {sequence} is left out, but the export has no filters: its content "
                "was removed and cannot be checked",
            )
        _check_event(number, record, organisation_id)
        if record["org_hash"] != expected_hash:
            raise ExportError(
                number,
                f"event {sequence} does not link to the line above it: a line was deleted, "
                "inserted or moved here",
            )
        expected_hash = record["org_prev_hash"]
        last_sequence = sequence
        if record.get("omitted") is True:
            omitted += 1
        else:
            events += 1
    if last_sequence is None:
        if expected_sequence is not None:
            raise ExportError(2, "the header lists events, the file has none: it was truncated")
    elif expected_hash != chain.get("oldest_org_prev_hash"):
        raise ExportError(
            len(lines),
            "the oldest line does not link to where the header says the export starts: "
            "lines were removed from the end",
        )
    elif last_sequence != chain.get("oldest_sequence"):
        raise ExportError(len(lines), "the oldest event is not the one the header names")
    written = ("\n".join(lines[:-1]) + "\n").encode("utf-8")
    if hashlib.sha256(written).hexdigest() != digests["export_sha256"]:
        raise ExportError(
            len(lines),
            f"the lines are not the ones the portal recorded exporting (event {recorded}): an "
            "event was blanked out, or swapped for one the filters left out",
        )
    return ExportSummary(
        organisation_id=organisation_id,
        organisation=str(header.get("organisation") or ""),
        events=events,
        omitted=omitted,
        newest_sequence=chain.get("newest_sequence"),
        oldest_sequence=last_sequence,
        newest_org_hash=str(chain.get("newest_org_hash") or ""),
        recorded_sequence=recorded,
        recorded_org_hash=attestation["org_hash"],
        filters=filters,
    )


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    if len(arguments) != 1 or arguments[0] in ("-h", "--help"):
        print("usage: python -m audit.verify_export EXPORT.json", file=sys.stderr)
        return 2
    try:
        with open(arguments[0], encoding="utf-8", newline="") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        print(f"cannot read {arguments[0]}: {error}", file=sys.stderr)
        return 2
    try:
        summary = verify_export_text(text)
    except ExportError as error:
        print(f"FAILED at {error}", file=sys.stdout)
        return 1
    print(summary.describe())
    return 0


if __name__ == "__main__":
    sys.exit(main())
