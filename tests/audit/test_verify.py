"""The tamper suite: each kind of direct database edit is caught at the right sequence."""

import io
import json

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from audit.checkpoints import checkpoint_write, checkpoints_load
from audit.models import AuditEvent
from audit.verify import Problem, verify_chain
from tests.audit import tampering
from tests.audit.conftest import make_organisation, write_events

pytestmark = pytest.mark.django_db

CHAIN_LENGTH = 12
KEY = b"k" * 40


@pytest.fixture
def chain(owner_org, partner_org):
    events = write_events(CHAIN_LENGTH, organisation=owner_org, related_organisations=[partner_org])
    assert verify_chain().ok
    return events


def verify(**kwargs):
    return verify_chain(batch_size=5, **kwargs)  # small batches cross batch boundaries


def test_a_clean_chain_verifies_with_count_and_head(chain):
    result = verify()
    assert result.ok
    assert result.count == CHAIN_LENGTH
    assert result.head_sequence == CHAIN_LENGTH
    assert result.head_hash == chain[-1].hash
    assert result.summary() == (
        f"OK: {CHAIN_LENGTH} events verified, head sequence {CHAIN_LENGTH}, "
        f"head hash {chain[-1].hash}."
    )


def test_an_empty_log_verifies():
    result = verify_chain()
    assert result.ok and result.count == 0 and result.head_sequence == 0


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("target_label", "someone else"),
        ("action", "member.removed"),
        ("outcome", "failure"),
        ("actor_label", "Mallory"),
        ("actor_id", 999),
        ("source_ip", "198.51.100.1"),
        ("request_id", "other"),
        ("metadata", '{"number": 999}'),
        ("before", '{"role": "admin"}'),
        ("occurred_at", "2001-01-01 00:00:00+00:00"),
        ("hash", "a" * 64),
    ],
)
@pytest.mark.parametrize("sequence", [1, 7, CHAIN_LENGTH])
def test_an_edited_field_is_reported_at_its_row(chain, column, value, sequence):
    if column == "occurred_at":
        value = timezone.now().replace(year=2001)
    tampering.edit_column(sequence, column, value)
    result = verify()
    assert not result.ok
    assert result.first_bad_sequence == sequence
    assert result.problem == Problem.HASH_MISMATCH
    assert result.count == sequence - 1


def test_an_edited_prev_hash_breaks_the_link_at_its_row(chain):
    tampering.edit_column(5, "prev_hash", "b" * 64)
    result = verify()
    assert (result.first_bad_sequence, result.problem) == (5, Problem.BROKEN_LINK)


@pytest.mark.parametrize("sequence", [1, 6, 10])
def test_a_deleted_row_is_reported_as_the_missing_sequence(chain, sequence):
    tampering.delete_row(sequence)
    result = verify()
    assert (result.first_bad_sequence, result.problem) == (sequence, Problem.SEQUENCE_GAP)


def test_a_deleted_last_row_is_a_truncated_tail(chain):
    tampering.delete_row(CHAIN_LENGTH)
    result = verify()
    assert (result.first_bad_sequence, result.problem) == (CHAIN_LENGTH, Problem.TAIL_TRUNCATED)


@pytest.mark.parametrize("proper_hash", [False, True], ids=["junk-hash", "recomputed-hash"])
@pytest.mark.parametrize("at", [1, 4, CHAIN_LENGTH])
def test_an_inserted_forged_row_is_reported_at_its_position(chain, at, proper_hash):
    tampering.insert_row(at, proper_hash=proper_hash)
    result = verify()
    assert not result.ok
    assert result.first_bad_sequence == at


@pytest.mark.parametrize("proper_hash", [False, True], ids=["junk-hash", "recomputed-hash"])
def test_an_appended_forged_row_is_reported(chain, proper_hash):
    forged = tampering.append_row(proper_hash=proper_hash)
    result = verify()
    assert result.first_bad_sequence == forged == CHAIN_LENGTH + 1


@pytest.mark.parametrize(("first", "second"), [(3, 4), (2, 9), (1, CHAIN_LENGTH)])
def test_reordered_rows_are_reported_at_the_first_moved_row(chain, first, second):
    tampering.swap_rows(first, second)
    result = verify()
    assert not result.ok
    assert result.first_bad_sequence == first


@pytest.mark.parametrize("count", [1, 3])
def test_a_truncated_tail_is_caught_by_the_chain_head(chain, count):
    tampering.truncate_tail(count)
    result = verify()
    assert result.first_bad_sequence == CHAIN_LENGTH - count + 1
    assert result.problem == Problem.TAIL_TRUNCATED


def test_a_scope_removed_to_hide_an_event_is_an_edit(chain, partner_org):
    tampering.delete_scope(5)
    result = verify()
    assert (result.first_bad_sequence, result.problem) == (5, Problem.HASH_MISMATCH)


def test_a_scope_added_to_leak_an_event_is_an_edit(chain):
    outsider = make_organisation()
    tampering.add_scope(8, outsider.pk)
    result = verify()
    assert (result.first_bad_sequence, result.problem) == (8, Problem.HASH_MISMATCH)


def test_the_first_of_several_tamperings_is_reported(chain):
    tampering.edit_column(9, "target_label", "x")
    tampering.delete_row(4)
    tampering.edit_column(2, "metadata", '{"number": -1}')
    assert verify().first_bad_sequence == 2


# --- signed checkpoints -----------------------------------------------------------------------


@pytest.fixture
def checkpoint_dir(tmp_path, chain):
    directory = tmp_path / "checkpoints"
    checkpoint_write(directory=directory, key=KEY)
    return directory


def verify_with(directory, key=KEY):
    valid, invalid = checkpoints_load(directory=directory, key=key)
    return verify(checkpoints=valid, invalid_checkpoints=invalid)


def test_checkpoints_of_a_clean_chain_match(checkpoint_dir):
    write_events(2)  # events after the checkpoint are fine
    checkpoint_write(directory=checkpoint_dir, key=KEY)
    result = verify_with(checkpoint_dir)
    assert result.ok and result.checkpoints_checked == 2
    assert "2 signed checkpoints matched" in result.summary()


def test_a_truncated_tail_with_a_rewound_head_needs_a_checkpoint(checkpoint_dir):
    tampering.truncate_tail(3, rewind_head=True)
    assert verify().ok  # the chain alone cannot tell
    result = verify_with(checkpoint_dir)
    assert (result.first_bad_sequence, result.problem) == (
        CHAIN_LENGTH - 2,
        Problem.TAIL_TRUNCATED,
    )


def test_rewritten_history_is_caught_by_the_checkpoints(tmp_path, owner_org):
    write_events(4, organisation=owner_org)
    directory = tmp_path / "cp"
    checkpoint_write(directory=directory, key=KEY)  # at 4
    write_events(4, organisation=owner_org)
    checkpoint_write(directory=directory, key=KEY)  # at 8
    write_events(2, organisation=owner_org)
    tampering.rewrite_history_from(6)
    assert verify().ok  # consistently re-hashed: the chain alone cannot tell
    result = verify_with(directory)
    assert result.problem == Problem.CHECKPOINT_MISMATCH
    assert result.first_bad_sequence == 5  # first row after the last matching checkpoint


def test_a_checkpoint_signed_with_another_key_is_rejected(checkpoint_dir):
    path = next(checkpoint_dir.glob("*.json"))
    document = json.loads(path.read_text())
    forged = checkpoint_write(directory=checkpoint_dir, key=b"w" * 40)
    result = verify_with(checkpoint_dir)
    assert result.problem == Problem.CHECKPOINT_INVALID
    assert result.first_bad_sequence == document["sequence"]
    assert forged.name in result.detail


def test_a_checkpoint_edited_by_hand_is_rejected(checkpoint_dir):
    path = next(checkpoint_dir.glob("*.json"))
    document = json.loads(path.read_text())
    document["sequence"] = 3
    path.write_text(json.dumps(document))
    result = verify_with(checkpoint_dir)
    assert (result.first_bad_sequence, result.problem) == (3, Problem.CHECKPOINT_INVALID)


@pytest.mark.parametrize("content", ["not json", "[]", '{"sequence": "x"}'])
def test_malformed_checkpoint_files_are_rejected(checkpoint_dir, content):
    (checkpoint_dir / "zz-broken.json").write_text(content)
    result = verify_with(checkpoint_dir)
    assert result.problem == Problem.CHECKPOINT_INVALID
    assert "zz-broken.json" in result.detail


# --- the command ------------------------------------------------------------------------------


def test_audit_verify_prints_ok_with_the_count(chain):
    out = io.StringIO()
    call_command("audit_verify", stdout=out)
    assert out.getvalue().startswith(f"OK: {CHAIN_LENGTH} events verified")


def test_audit_verify_names_the_first_bad_sequence_and_exits_non_zero(chain):
    tampering.edit_column(7, "target_label", "edited by hand")
    with pytest.raises(CommandError) as error:
        call_command("audit_verify", "--batch-size", "3")
    assert error.value.returncode == 1
    assert str(error.value).startswith("FAILED at sequence 7: hash_mismatch")


def test_audit_verify_checks_checkpoints(checkpoint_dir, settings):
    settings.AUDIT_CHECKPOINT_KEY = KEY.decode()
    out = io.StringIO()
    call_command("audit_verify", "--checkpoints", str(checkpoint_dir), stdout=out)
    assert "1 signed checkpoint matched" in out.getvalue()
    tampering.truncate_tail(1, rewind_head=True)
    with pytest.raises(CommandError, match=f"FAILED at sequence {CHAIN_LENGTH}: tail_truncated"):
        call_command("audit_verify", "--checkpoints", str(checkpoint_dir))


def test_audit_verify_refuses_checkpoints_without_a_key(checkpoint_dir, settings, monkeypatch):
    settings.AUDIT_CHECKPOINT_KEY = ""
    monkeypatch.delenv("AUDIT_CHECKPOINT_KEY", raising=False)
    with pytest.raises(CommandError, match="AUDIT_CHECKPOINT_KEY"):
        call_command("audit_verify", "--checkpoints", str(checkpoint_dir))


def test_audit_verify_refuses_a_missing_or_empty_directory(chain, tmp_path, settings):
    settings.AUDIT_CHECKPOINT_KEY = KEY.decode()
    with pytest.raises(CommandError, match="No checkpoint directory"):
        call_command("audit_verify", "--checkpoints", str(tmp_path / "absent"))
    with pytest.raises(CommandError, match="No checkpoint files"):
        call_command("audit_verify", "--checkpoints", str(tmp_path))


def test_the_verifier_reads_rows_in_batches(chain, django_assert_max_num_queries):
    # 12 rows in batches of 5: head, 3 batches x (events + scopes), one empty batch.
    with django_assert_max_num_queries(1 + 3 * 2 + 1):
        assert verify().ok
    assert AuditEvent.objects.count() == CHAIN_LENGTH
