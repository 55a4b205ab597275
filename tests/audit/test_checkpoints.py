import json
import logging

import pytest
from celery import shared_task
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction

from audit.checkpoints import checkpoint_key, checkpoint_parse, checkpoint_write, checkpoints_load
from audit.models import AuditEvent
from audit.services import audit_record
from audit.tasks import audit_write_checkpoint
from audit.verify import verify_chain
from portal.celery import app
from tests.audit.conftest import ANY_ACTION, write_events

pytestmark = pytest.mark.django_db

KEY = "a-long-random-checkpoint-key-for-tests-0123456789"


@pytest.fixture
def configured(settings, tmp_path):
    settings.AUDIT_CHECKPOINT_KEY = KEY
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "checkpoints"
    return settings.AUDIT_CHECKPOINT_DIR


def test_the_beat_task_signs_the_chain_head_into_the_directory(configured, owner_org):
    events = write_events(3, organisation=owner_org)
    audit_write_checkpoint.apply()
    [path] = configured.glob("*.json")
    document = json.loads(path.read_text())
    assert document["sequence"] == 3
    assert document["hash"] == events[-1].hash
    assert document["algorithm"] == "HMAC-SHA256"
    assert document["created_at"].endswith("Z")
    assert KEY not in path.read_text()
    assert not list(configured.glob(".*.tmp"))
    valid, invalid = checkpoints_load(directory=configured, key=KEY.encode())
    assert len(valid) == 1 and not invalid
    assert verify_chain(checkpoints=valid).checkpoints_checked == 1


def test_an_empty_log_gets_a_genesis_checkpoint(configured):
    path = checkpoint_write()
    assert json.loads(path.read_text())["sequence"] == 0
    valid, _ = checkpoints_load(directory=configured, key=KEY.encode())
    assert verify_chain(checkpoints=valid).ok


def test_without_a_key_the_task_warns_and_writes_nothing(settings, tmp_path, caplog):
    settings.AUDIT_CHECKPOINT_KEY = ""
    settings.AUDIT_CHECKPOINT_DIR = tmp_path / "none"
    with caplog.at_level(logging.WARNING, logger="audit.tasks"):
        audit_write_checkpoint.apply()
    assert "AUDIT_CHECKPOINT_KEY is not set" in caplog.text
    assert not (tmp_path / "none").exists()
    with pytest.raises(ImproperlyConfigured):
        checkpoint_write()


def test_a_short_key_is_refused(settings):
    settings.AUDIT_CHECKPOINT_KEY = "short"
    with pytest.raises(ImproperlyConfigured, match="at least 32"):
        checkpoint_key()


def test_the_signature_covers_every_field(configured):
    path = checkpoint_write()
    original = json.loads(path.read_text())
    assert checkpoint_parse("ok.json", json.dumps(original), KEY.encode()).sequence == 0
    for field, value in [("hash", "f" * 64), ("created_at", "2000-01-01T00:00:00.000000Z")]:
        changed = {**original, field: value}
        assert checkpoint_parse("x.json", json.dumps(changed), KEY.encode()).reason == (
            "bad signature"
        )


def test_the_daily_checkpoint_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint-daily"]
    assert entry["task"] == "audit.write_checkpoint"
    app.loader.import_default_modules()
    assert "audit.write_checkpoint" in app.tasks


@shared_task(name="tests.audit.record_from_a_task")
def record_from_a_task() -> int:
    with transaction.atomic():
        return audit_record(action=ANY_ACTION).sequence


def test_events_written_by_a_task_carry_its_id_and_name():
    result = record_from_a_task.apply()
    event = AuditEvent.objects.get(pk=result.get())
    assert event.source == "task:tests.audit.record_from_a_task"
    assert event.request_id == result.id
    # Outside the task the origin is back to "system".
    with transaction.atomic():
        assert audit_record(action=ANY_ACTION).source == "system"
