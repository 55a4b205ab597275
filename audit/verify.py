"""Verifying the audit chain: the first bad sequence number, or OK with the count.

Each row is checked in the global chain and, through its scope rows, in the chain of every
organisation that may see it (`org_prev_hash` must be that organisation's previous `org_hash`,
and `org_hash` must hash it with the event's hash).

`ChainVerifier` is pure: it is fed rows in sequence order, one at a time, and keeps only the
last two hashes, so the database walk (`verify_chain`) runs in constant memory over millions
of rows. `verify_chain_steps` is the same walk yielding its progress as it goes: the command
and the background task (`audit.verification`) both drive it. Signed checkpoints
(`audit.checkpoints`) add what a hash chain alone cannot show: a truncated tail or a history
rewritten and re-hashed from some point on.
"""

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Subquery
from django.utils.translation import gettext_noop

from audit.chain import GENESIS_HASH, HASH_VERSION, link_hash, org_link_hash
from audit.checkpoints import Checkpoint, InvalidCheckpoint
from audit.models import AuditChainHead, AuditEvent, AuditEventScope
from core.i18n import stored_message, stored_text

DEFAULT_BATCH_SIZE = 2000

# What a failed verification says (VerificationResult.detail): stored in English, read in the
# reader's language (core.i18n.read_stored); the command prints them as they are.
CHECKPOINT_MISMATCH_TEXT = stored_message(
    gettext_noop(
        "the signed checkpoint %(name)s says sequence %(sequence)s had hash %(hash)s, the log "
        "now has %(expected)s: history after sequence %(confirmed)s was rewritten and re-hashed"
    )
)
SEQUENCE_GAP_TEXT = stored_message(
    gettext_noop(
        "sequence %(expected)s is missing (the next row is %(sequence)s): a row was deleted, or "
        "rows were renumbered"
    )
)
UNKNOWN_VERSION_TEXT = stored_message(
    gettext_noop(
        "row %(sequence)s has hash version %(version)s or unreadable content: it was edited"
    )
)
INSERTED_ROW_TEXT = stored_message(
    gettext_noop(
        "row %(sequence)s links to row %(before)s, skipping row %(last)s: row %(last)s was inserted"
    )
)
BROKEN_LINK_TEXT = stored_message(
    gettext_noop(
        "row %(sequence)s does not link to row %(last)s: rows were deleted, inserted or "
        "reordered here, or the previous row was rewritten"
    )
)
HASH_MISMATCH_TEXT = stored_message(
    gettext_noop("row %(sequence)s's stored hash does not match its content: it was edited")
)
ORG_LINK_BROKEN_TEXT = stored_message(
    gettext_noop(
        "row %(sequence)s does not link to the previous event of organisation "
        "%(organisation)s in its own chain: its chain links were rewritten"
    )
)
ORG_HASH_MISMATCH_TEXT = stored_message(
    gettext_noop(
        "row %(sequence)s's link in the chain of organisation %(organisation)s does not match "
        "the event's hash: it was edited"
    )
)
CHECKPOINT_TAIL_TEXT = stored_message(
    gettext_noop(
        "the signed checkpoint %(name)s records sequence %(sequence)s, the log ends at "
        "%(last)s: the tail was deleted"
    )
)
HEAD_MISSING_TEXT = stored_message(
    gettext_noop("the chain head row is missing, so a truncated tail cannot be ruled out")
)
HEAD_TAIL_TEXT = stored_message(
    gettext_noop(
        "the chain head records sequence %(head)s, the log ends at %(last)s: the tail was deleted"
    )
)
BEYOND_HEAD_TEXT = stored_message(
    gettext_noop(
        "rows after the chain head (%(head)s) exist: they were not written by audit_record"
    )
)
HEAD_MISMATCH_TEXT = stored_message(
    gettext_noop("the chain head records another hash for row %(head)s: the last row was rewritten")
)
CHECKPOINT_INVALID_TEXT = stored_message(
    gettext_noop(
        "checkpoint %(name)s is not valid (%(reason)s): it was edited or signed with another key"
    )
)


class Problem:
    """Why verification failed; `VerificationResult.problem` holds one of these codes."""

    SEQUENCE_GAP = "sequence_gap"
    INSERTED_ROW = "inserted_row"
    BROKEN_LINK = "broken_link"
    HASH_MISMATCH = "hash_mismatch"
    UNKNOWN_VERSION = "unknown_version"
    TAIL_TRUNCATED = "tail_truncated"
    BEYOND_HEAD = "beyond_head"
    HEAD_MISMATCH = "head_mismatch"
    HEAD_MISSING = "head_missing"
    CHECKPOINT_MISMATCH = "checkpoint_mismatch"
    CHECKPOINT_INVALID = "checkpoint_invalid"
    ORG_LINK_BROKEN = "org_link_broken"
    ORG_HASH_MISMATCH = "org_hash_mismatch"


@dataclass(frozen=True)
class ChainRow:
    """One stored event as the verifier sees it: its links and its canonical payload."""

    sequence: int
    prev_hash: str
    hash: str
    hash_version: int
    payload: dict[str, Any] | None  # None when the row's content cannot be read back
    # (organisation id, org_prev_hash, org_hash) of each scope row: the organisations' chains.
    org_links: tuple[tuple[str, str, str], ...] = ()


@dataclass(frozen=True)
class VerificationResult:
    ok: bool
    count: int  # rows verified before the first problem (all of them when ok)
    head_sequence: int
    head_hash: str
    first_bad_sequence: int | None = None
    problem: str | None = None
    detail: str = ""
    checkpoints_checked: int = 0

    def summary(self) -> str:
        if self.ok:
            checked = (
                f", {self.checkpoints_checked} signed checkpoint"
                f"{'' if self.checkpoints_checked == 1 else 's'} matched"
                if self.checkpoints_checked
                else ""
            )
            return (
                f"OK: {self.count} events verified, head sequence {self.head_sequence}, "
                f"head hash {self.head_hash}{checked}."
            )
        where = (
            f"at sequence {self.first_bad_sequence}"
            if self.first_bad_sequence is not None
            else "(sequence unknown)"
        )
        return f"FAILED {where}: {self.problem}: {self.detail}"


@dataclass
class ChainVerifier:
    """Feed rows in ascending sequence order; stop at the first problem."""

    checkpoints: Sequence[Checkpoint] = ()
    invalid_checkpoints: Sequence[InvalidCheckpoint] = ()
    count: int = 0
    last_sequence: int = 0
    last_hash: str = GENESIS_HASH
    _before_last_hash: str | None = None
    _pending: list[Checkpoint] = field(default_factory=list)
    _confirmed_through: int = 0
    _checkpoints_checked: int = 0
    # Each organisation's last org_hash so far: one entry per organisation, not per row.
    _org_heads: dict[str, str] = field(default_factory=dict)
    failure: VerificationResult | None = None

    def __post_init__(self) -> None:
        self._pending = sorted(self.checkpoints, key=lambda cp: cp.sequence)
        self._confirm_checkpoints()

    def _fail(self, sequence: int | None, problem: str, detail: str) -> VerificationResult:
        self.failure = VerificationResult(
            ok=False,
            count=self.count,
            head_sequence=self.last_sequence,
            head_hash=self.last_hash,
            first_bad_sequence=sequence,
            problem=problem,
            detail=detail,
            checkpoints_checked=self._checkpoints_checked,
        )
        return self.failure

    def _confirm_checkpoints(self) -> VerificationResult | None:
        """Check every checkpoint at or below the verified prefix against it."""
        # Rows arrive one sequence at a time, so a checkpoint is due exactly when the
        # verified prefix reaches its sequence (sequence 0 is the genesis link).
        while self._pending and self._pending[0].sequence <= self.last_sequence:
            checkpoint = self._pending.pop(0)
            expected = self.last_hash
            if checkpoint.hash != expected:
                return self._fail(
                    self._confirmed_through + 1,
                    Problem.CHECKPOINT_MISMATCH,
                    stored_text(
                        CHECKPOINT_MISMATCH_TEXT,
                        name=checkpoint.name,
                        sequence=checkpoint.sequence,
                        hash=checkpoint.hash,
                        expected=expected,
                        confirmed=self._confirmed_through,
                    ),
                )
            self._confirmed_through = checkpoint.sequence
            self._checkpoints_checked += 1
        return None

    def feed(self, row: ChainRow) -> VerificationResult | None:
        """Verify the next row; returns the failure (and keeps it) or None."""
        if self.failure is not None:
            return self.failure
        expected = self.last_sequence + 1
        if row.sequence != expected:
            return self._fail(
                expected,
                Problem.SEQUENCE_GAP,
                stored_text(SEQUENCE_GAP_TEXT, expected=expected, sequence=row.sequence),
            )
        if row.hash_version != HASH_VERSION or row.payload is None:
            return self._fail(
                row.sequence,
                Problem.UNKNOWN_VERSION,
                stored_text(
                    UNKNOWN_VERSION_TEXT, sequence=row.sequence, version=repr(row.hash_version)
                ),
            )
        if row.prev_hash != self.last_hash:
            if self._before_last_hash is not None and row.prev_hash == self._before_last_hash:
                return self._fail(
                    self.last_sequence,
                    Problem.INSERTED_ROW,
                    stored_text(
                        INSERTED_ROW_TEXT,
                        sequence=row.sequence,
                        before=self.last_sequence - 1,
                        last=self.last_sequence,
                    ),
                )
            return self._fail(
                row.sequence,
                Problem.BROKEN_LINK,
                stored_text(BROKEN_LINK_TEXT, sequence=row.sequence, last=self.last_sequence),
            )
        if link_hash(row.prev_hash, row.payload) != row.hash:
            return self._fail(
                row.sequence,
                Problem.HASH_MISMATCH,
                stored_text(HASH_MISMATCH_TEXT, sequence=row.sequence),
            )
        for organisation_id, org_prev_hash, org_hash in row.org_links:
            expected_prev = self._org_heads.get(organisation_id, GENESIS_HASH)
            if org_prev_hash != expected_prev:
                return self._fail(
                    row.sequence,
                    Problem.ORG_LINK_BROKEN,
                    stored_text(
                        ORG_LINK_BROKEN_TEXT, sequence=row.sequence, organisation=organisation_id
                    ),
                )
            if org_link_hash(org_prev_hash, row.hash) != org_hash:
                return self._fail(
                    row.sequence,
                    Problem.ORG_HASH_MISMATCH,
                    stored_text(
                        ORG_HASH_MISMATCH_TEXT, sequence=row.sequence, organisation=organisation_id
                    ),
                )
            self._org_heads[organisation_id] = org_hash
        self._before_last_hash = self.last_hash
        self.last_sequence = row.sequence
        self.last_hash = row.hash
        self.count += 1
        return self._confirm_checkpoints()

    def finish(self, *, head: tuple[int, str] | None) -> VerificationResult:
        """Close the walk: compare the end of the chain with the chain head row and with
        any checkpoint beyond it."""
        if self.failure is not None:
            return self.failure
        if self._pending:
            missing_from = self.last_sequence + 1
            checkpoint = self._pending[-1]
            return self._fail(
                missing_from,
                Problem.TAIL_TRUNCATED,
                stored_text(
                    CHECKPOINT_TAIL_TEXT,
                    name=checkpoint.name,
                    sequence=checkpoint.sequence,
                    last=self.last_sequence,
                ),
            )
        if head is None:
            if self.last_sequence:
                return self._fail(
                    None,
                    Problem.HEAD_MISSING,
                    HEAD_MISSING_TEXT,
                )
        else:
            head_sequence, head_hash = head
            if self.last_sequence < head_sequence:
                return self._fail(
                    self.last_sequence + 1,
                    Problem.TAIL_TRUNCATED,
                    stored_text(HEAD_TAIL_TEXT, head=head_sequence, last=self.last_sequence),
                )
            if self.last_sequence > head_sequence:
                return self._fail(
                    head_sequence + 1,
                    Problem.BEYOND_HEAD,
                    stored_text(BEYOND_HEAD_TEXT, head=head_sequence),
                )
            if head_hash != self.last_hash:
                return self._fail(
                    self.last_sequence,
                    Problem.HEAD_MISMATCH,
                    stored_text(HEAD_MISMATCH_TEXT, head=head_sequence),
                )
        if self.invalid_checkpoints:
            bad = self.invalid_checkpoints[0]
            return self._fail(
                bad.claimed_sequence,
                Problem.CHECKPOINT_INVALID,
                stored_text(CHECKPOINT_INVALID_TEXT, name=bad.name, reason=bad.reason),
            )
        return VerificationResult(
            ok=True,
            count=self.count,
            head_sequence=self.last_sequence,
            head_hash=self.last_hash,
            checkpoints_checked=self._checkpoints_checked,
        )


@dataclass(frozen=True)
class VerificationStep:
    """Where a walk is: `checked` rows verified out of `total` (the highest sequence stored
    when it started). The last step of a walk carries its `result`; the others do not."""

    checked: int
    total: int
    result: VerificationResult | None = None


def verify_steps(
    rows: Iterable[ChainRow],
    *,
    head: tuple[int, str] | None,
    total: int = 0,
    checkpoints: Sequence[Checkpoint] = (),
    invalid_checkpoints: Sequence[InvalidCheckpoint] = (),
    progress_every: int = 0,
) -> Iterator[VerificationStep]:
    """The one verification walk, as steps: a first step before any row, one every
    `progress_every` verified rows (0: none), and a last one with the result. The command
    and the background task both drive this, so they cannot disagree."""
    verifier = ChainVerifier(checkpoints=checkpoints, invalid_checkpoints=invalid_checkpoints)
    yield VerificationStep(checked=0, total=total)
    if verifier.failure is not None:
        yield VerificationStep(checked=0, total=total, result=verifier.failure)
        return
    for row in rows:
        if verifier.feed(row) is not None:
            yield VerificationStep(checked=verifier.count, total=total, result=verifier.failure)
            return
        if progress_every and verifier.count % progress_every == 0:
            yield VerificationStep(checked=verifier.count, total=total)
    result = verifier.finish(head=head)
    yield VerificationStep(checked=verifier.count, total=total, result=result)


def last_result(steps: Iterable[VerificationStep]) -> VerificationResult:
    """Run a walk to its end and return its result."""
    for step in steps:
        if step.result is not None:
            return step.result
    raise RuntimeError("The verification walk ended without a result.")


def verify_rows(
    rows: Iterable[ChainRow],
    *,
    head: tuple[int, str] | None,
    checkpoints: Sequence[Checkpoint] = (),
    invalid_checkpoints: Sequence[InvalidCheckpoint] = (),
) -> VerificationResult:
    return last_result(
        verify_steps(
            rows, head=head, checkpoints=checkpoints, invalid_checkpoints=invalid_checkpoints
        )
    )


def chain_row(
    event: AuditEvent,
    scope_organisation_ids: list[object],
    org_links: Sequence[tuple[str, str, str]] = (),
) -> ChainRow:
    try:
        payload = event.chain_payload(scope_organisation_ids)
    except (ValueError, TypeError, AttributeError):
        payload = None
    return ChainRow(
        sequence=event.sequence,
        prev_hash=event.prev_hash,
        hash=event.hash,
        hash_version=event.hash_version,
        payload=payload,
        org_links=tuple(org_links),
    )


def iter_chain_rows(*, up_to: int, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterable[ChainRow]:
    """Stored events 1..up_to in order, with their scopes, a batch at a time."""
    after = 0
    while True:
        events = list(
            AuditEvent.objects.filter(sequence__gt=after, sequence__lte=up_to).order_by("sequence")[
                :batch_size
            ]
        )
        if not events:
            return
        scopes: dict[int, list[object]] = defaultdict(list)
        links: dict[int, list[tuple[str, str, str]]] = defaultdict(list)
        for event_id, organisation_id, org_prev_hash, org_hash in (
            AuditEventScope.objects.filter(
                event_id__gte=events[0].sequence, event_id__lte=events[-1].sequence
            )
            .order_by("event_id", "organisation_id")
            .values_list("event_id", "organisation_id", "org_prev_hash", "org_hash")
        ):
            scopes[event_id].append(organisation_id)
            links[event_id].append((str(organisation_id), org_prev_hash, org_hash))
        for event in events:
            yield chain_row(event, scopes[event.sequence], links[event.sequence])
        after = events[-1].sequence


def read_head() -> tuple[tuple[int, str] | None, int]:
    """The chain head and the highest stored sequence, read in one statement so a writer
    committing meanwhile cannot make them disagree."""
    last_stored = AuditEvent.objects.order_by("-sequence").values("sequence")[:1]
    head = (
        AuditChainHead.objects.filter(pk=AuditChainHead.SINGLETON_ID)
        .annotate(last_stored=Subquery(last_stored))
        .values_list("sequence", "hash", "last_stored")
        .first()
    )
    if head is None:
        top = AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first()
        return None, top or 0
    sequence, hash_, top = head
    return (sequence, hash_), top or 0


def verify_chain_steps(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    checkpoints: Sequence[Checkpoint] = (),
    invalid_checkpoints: Sequence[InvalidCheckpoint] = (),
    progress_every: int = 0,
) -> Iterator[VerificationStep]:
    """Walk the stored chain, yielding progress (see `verify_steps`); the last step names the
    first bad sequence number, or says OK.

    Events committed after the walk starts are left for the next run; rows stored beyond the
    chain head at the start are walked so that forged appends are reported.
    """
    head, top = read_head()
    up_to = max(top, head[0] if head else 0)
    return verify_steps(
        iter_chain_rows(up_to=up_to, batch_size=batch_size),
        head=head,
        total=up_to,
        checkpoints=checkpoints,
        invalid_checkpoints=invalid_checkpoints,
        progress_every=progress_every,
    )


def verify_chain(
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    checkpoints: Sequence[Checkpoint] = (),
    invalid_checkpoints: Sequence[InvalidCheckpoint] = (),
) -> VerificationResult:
    """Walk the stored chain and report the first bad sequence number, or OK."""
    return last_result(
        verify_chain_steps(
            batch_size=batch_size, checkpoints=checkpoints, invalid_checkpoints=invalid_checkpoints
        )
    )
