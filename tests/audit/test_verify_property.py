"""Random tamperings are all caught at the right sequence; clean chains never fail.

The pure tests drive `verify_rows` with in-memory rows (1,000 tamperings, 100 clean chains,
fast); the database tests do the same through real rows, triggers lifted, on whatever
backend the suite runs.
"""

import json

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.chain import GENESIS_HASH, link_hash
from audit.checkpoints import Checkpoint, checkpoint_document, checkpoint_parse
from audit.services import audit_record, looks_secret
from audit.verify import ChainRow, Problem, verify_chain, verify_rows
from tests.audit import tampering
from tests.audit.conftest import ANY_ACTION, write_events

KEY = b"the-real-checkpoint-key-0123456789abcdef"
WRONG_KEY = b"an-attackers-own-key-0123456789abcdef!!"

# --- an in-memory model of the stored table --------------------------------------------------


def build_chain(contents: list[dict]) -> list[dict]:
    rows, prev_hash = [], GENESIS_HASH
    for index, content in enumerate(contents, start=1):
        row = {"sequence": index, "content": content, "prev_hash": prev_hash}
        row["hash"] = link_hash(prev_hash, payload(row))
        rows.append(row)
        prev_hash = row["hash"]
    return rows


def payload(row: dict) -> dict:
    return {**row["content"], "sequence": row["sequence"]}


def as_chain_rows(rows: list[dict]) -> list[ChainRow]:
    ordered = sorted(rows, key=lambda row: row["sequence"])
    return [
        ChainRow(
            sequence=row["sequence"],
            prev_hash=row["prev_hash"],
            hash=row["hash"],
            hash_version=1,
            payload=payload(row),
        )
        for row in ordered
    ]


def head_of(rows: list[dict]) -> tuple[int, str]:
    return (rows[-1]["sequence"], rows[-1]["hash"]) if rows else (0, GENESIS_HASH)


def checkpoint_at(rows: list[dict], sequence: int) -> Checkpoint:
    hash_ = rows[sequence - 1]["hash"] if sequence else GENESIS_HASH
    return Checkpoint(name=f"cp-{sequence}", sequence=sequence, hash=hash_, created_at="t")


contents_strategy = st.lists(
    st.fixed_dictionaries(
        {
            "action": st.sampled_from(["member.invited", "member.removed", "mfa.enabled"]),
            "label": st.text(max_size=8),
            "n": st.integers(),
        }
    ),
    min_size=1,
    max_size=30,
)

TAMPERINGS = [
    "edit_content",
    "edit_prev_hash",
    "edit_hash",
    "delete",
    "insert_junk",
    "insert_proper",
    "reorder",
    "truncate_tail",
    "append_proper",
    "truncate_rewound_with_checkpoint",
    "rewrite_with_checkpoint",
    "resign_wrong_key",
]


@settings(max_examples=1000)
@given(contents=contents_strategy, kind=st.sampled_from(TAMPERINGS), data=st.data())
def test_every_random_tampering_is_detected_at_the_right_sequence(contents, kind, data):
    rows = build_chain(contents)
    n = len(rows)
    head = head_of(rows)
    checkpoints: list[Checkpoint] = []
    invalid = []
    pick = lambda low, high: data.draw(st.integers(low, high))  # noqa: E731

    if kind == "edit_content":
        k = pick(1, n)
        rows[k - 1]["content"] = {
            **rows[k - 1]["content"],
            "label": rows[k - 1]["content"]["label"] + "!",
        }
        expected = k
    elif kind == "edit_prev_hash":
        k = pick(1, n)
        rows[k - 1]["prev_hash"] = "b" * 64
        expected = k
    elif kind == "edit_hash":
        k = pick(1, n)
        rows[k - 1]["hash"] = "c" * 64
        expected = k
    elif kind == "delete":
        k = pick(1, n)
        del rows[k - 1]
        expected = k
    elif kind in ("insert_junk", "insert_proper"):
        k = pick(1, n + 1)
        for row in rows[k - 1 :]:
            row["sequence"] += 1
        prev_hash = rows[k - 2]["hash"] if k > 1 else GENESIS_HASH
        forged = {
            "sequence": k,
            "content": {"action": "member.added", "label": "mallory", "n": 0},
            "prev_hash": prev_hash,
        }
        forged["hash"] = (
            link_hash(prev_hash, payload(forged)) if kind == "insert_proper" else "e" * 64
        )
        rows.insert(k - 1, forged)
        expected = k
    elif kind == "reorder":
        if n < 2:
            return
        i = pick(1, n - 1)
        j = pick(i + 1, n)
        rows[i - 1]["sequence"], rows[j - 1]["sequence"] = j, i
        expected = i
    elif kind == "truncate_tail":
        m = pick(1, n)
        del rows[n - m :]
        expected = n - m + 1
    elif kind == "append_proper":
        forged = {
            "sequence": n + 1,
            "content": {"action": "member.added", "label": "m", "n": 1},
            "prev_hash": rows[-1]["hash"],
        }
        forged["hash"] = link_hash(forged["prev_hash"], payload(forged))
        rows.append(forged)
        expected = n + 1
    elif kind == "truncate_rewound_with_checkpoint":
        checkpoints = [checkpoint_at(rows, pick(1, n))]
        m = pick(1, n)
        if n - m >= checkpoints[0].sequence:
            return  # the checkpoint still lies inside what is left: nothing to see
        del rows[n - m :]
        head = head_of(rows)
        expected = n - m + 1
    elif kind == "rewrite_with_checkpoint":
        k = pick(1, n)
        earlier = sorted({pick(0, k - 1) for _ in range(pick(0, 2))})
        later = pick(k, n)
        checkpoints = [checkpoint_at(rows, s) for s in [*earlier, later]]
        rows[k - 1]["content"] = {**rows[k - 1]["content"], "label": "rewritten"}
        prev_hash = rows[k - 2]["hash"] if k > 1 else GENESIS_HASH
        for row in rows[k - 1 :]:
            row["prev_hash"] = prev_hash
            row["hash"] = link_hash(prev_hash, payload(row))
            prev_hash = row["hash"]
        head = head_of(rows)
        expected = (max(earlier) if earlier else 0) + 1
    else:  # resign_wrong_key: a checkpoint re-signed by someone without the real key
        s = pick(0, n)
        document = checkpoint_document(sequence=s, hash_="d" * 64, created_at="t", key=WRONG_KEY)
        parsed = checkpoint_parse("forged.json", json.dumps(document), KEY)
        invalid = [parsed]
        expected = s

    result = verify_rows(
        as_chain_rows(rows), head=head, checkpoints=checkpoints, invalid_checkpoints=invalid
    )
    assert not result.ok, (kind, result)
    assert result.first_bad_sequence == expected, (kind, result)


@settings(max_examples=100)
@given(contents=contents_strategy, data=st.data())
def test_clean_chains_never_fail(contents, data):
    rows = build_chain(contents)
    positions = data.draw(st.lists(st.integers(0, len(rows)), max_size=4))
    checkpoints = [checkpoint_at(rows, s) for s in positions]
    result = verify_rows(as_chain_rows(rows), head=head_of(rows), checkpoints=checkpoints)
    assert result.ok, result
    assert result.count == len(rows)


# --- the same through the database ------------------------------------------------------------

DB_CHAIN = 10

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.text(max_size=8).filter(lambda key: not looks_secret(key)), children, max_size=3
        )
    ),
    max_leaves=8,
)


@pytest.mark.django_db
@settings(
    max_examples=100,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    labels=st.lists(st.text(max_size=40), min_size=1, max_size=4),
    metadata=st.dictionaries(
        st.text(max_size=8).filter(lambda key: not looks_secret(key)), json_values, max_size=4
    ),
    before=json_values,
)
def test_stored_events_with_arbitrary_content_verify(owner_org, labels, metadata, before):
    with transaction.atomic():
        for label in labels:
            with transaction.atomic():
                audit_record(
                    action=ANY_ACTION,
                    organisation=owner_org,
                    target_type="test.thing",
                    target_id=label[:64],
                    target_label=label,
                    actor_label=label,
                    before=before,
                    metadata=metadata,
                )
        result = verify_chain()
        assert result.ok, result
        transaction.set_rollback(True)


DB_TAMPERINGS = ["edit", "delete", "insert_junk", "insert_proper", "reorder", "truncate", "scope"]


@pytest.mark.django_db
@settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(kind=st.sampled_from(DB_TAMPERINGS), data=st.data())
def test_random_database_tamperings_are_detected(owner_org, kind, data):
    with transaction.atomic():
        write_events(DB_CHAIN, organisation=owner_org)
        pick = lambda low, high: data.draw(st.integers(low, high))  # noqa: E731
        if kind == "edit":
            k = pick(1, DB_CHAIN)
            column = data.draw(
                st.sampled_from(["target_label", "action", "actor_label", "request_id"])
            )
            tampering.edit_column(k, column, "tampered")
            expected = k
        elif kind == "delete":
            expected = pick(1, DB_CHAIN)
            tampering.delete_row(expected)
        elif kind in ("insert_junk", "insert_proper"):
            expected = pick(1, DB_CHAIN)
            tampering.insert_row(expected, proper_hash=kind == "insert_proper")
        elif kind == "reorder":
            first = pick(1, DB_CHAIN - 1)
            expected = first
            tampering.swap_rows(first, pick(first + 1, DB_CHAIN))
        elif kind == "truncate":
            count = pick(1, DB_CHAIN)
            tampering.truncate_tail(count)
            expected = DB_CHAIN - count + 1
        else:
            expected = pick(1, DB_CHAIN)
            tampering.delete_scope(expected)
        result = verify_chain(batch_size=pick(1, DB_CHAIN + 1))
        assert not result.ok, (kind, result)
        assert result.first_bad_sequence == expected, (kind, result)
        assert result.problem in vars(Problem).values()
        transaction.set_rollback(True)
