"""The embedded broker under concurrent writers: a reader never sees a half-written message.

kombu's own filesystem transport makes a message file visible before its content is written;
a consumer polling at that moment died on a `JSONDecodeError` (issue 18, item 12).
"""

import io
import json
import multiprocessing
import os
import threading
import time
from pathlib import Path
from queue import Empty

import pytest
from django.conf import settings
from kombu import Connection
from kombu.transport import filesystem

import core.filesystem_broker

pytestmark = pytest.mark.timeout(120)


def _connection(root: Path, transport: str) -> Connection:
    for folder in ("queue", "processed", "control"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    options = {
        "data_folder_in": str(root / "queue"),
        "data_folder_out": str(root / "queue"),
        "processed_folder": str(root / "processed"),
        "control_folder": str(root / "control"),
    }
    return Connection("filesystem://localhost//", transport=transport, transport_options=options)


@pytest.fixture
def broker_root(tmp_path: Path) -> Path:
    return tmp_path / "broker"


class _PausedWrite:
    """A file whose write stops halfway until `resume` is set, as a busy writer does."""

    def __init__(self, raw: io.RawIOBase) -> None:
        self.raw = raw
        self.halfway = threading.Event()
        self.resume = threading.Event()

    def write(self, data: bytes) -> int:
        middle = len(data) // 2
        self.raw.write(data[:middle])
        self.raw.flush()
        self.halfway.set()
        assert self.resume.wait(10)
        return middle + self.raw.write(data[middle:])

    def __getattr__(self, name: str):
        return getattr(self.raw, name)

    def __enter__(self) -> "_PausedWrite":
        return self

    def __exit__(self, *exc: object) -> None:
        self.raw.close()


def _read_while_a_write_is_halfway(channel, paused: list[_PausedWrite], payload: dict) -> object:
    """What a reader gets while a writer is halfway through `payload`; the write then ends."""
    writer = threading.Thread(target=channel._put, args=("q", payload))
    writer.start()
    try:
        deadline = time.monotonic() + 10
        while not (paused and paused[0].halfway.is_set()) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert paused and paused[0].halfway.is_set(), "the writer never started writing"
        try:
            return channel._get("q")
        except (Empty, json.JSONDecodeError) as outcome:
            return outcome
    finally:
        if paused:
            paused[0].resume.set()
        writer.join(10)


def test_kombu_s_own_transport_lets_a_reader_see_a_half_written_message(
    broker_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The failure the embedded broker had: this is what crashed the worker."""
    paused: list[_PausedWrite] = []

    def pausing_open(path, mode="r", *args, **kwargs):
        handle = open(path, mode, *args, **kwargs)  # noqa: SIM115 - closed by the transport
        if "w" in mode and str(path).endswith(".msg"):
            paused.append(_PausedWrite(handle))
            return paused[-1]
        return handle

    monkeypatch.setattr(filesystem, "open", pausing_open, raising=False)
    with _connection(broker_root, "filesystem") as connection:
        outcome = _read_while_a_write_is_halfway(
            connection.default_channel, paused, {"n": "x" * 1000}
        )
    assert isinstance(outcome, json.JSONDecodeError)


def test_the_embedded_transport_shows_a_message_only_once_it_is_whole(
    broker_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paused: list[_PausedWrite] = []
    real_fdopen = os.fdopen

    def pausing_fdopen(descriptor, mode="r", *args, **kwargs):
        handle = real_fdopen(descriptor, mode, *args, **kwargs)
        if "w" in mode:
            paused.append(_PausedWrite(handle))
            return paused[-1]
        return handle

    monkeypatch.setattr(core.filesystem_broker.os, "fdopen", pausing_fdopen)
    payload = {"n": "x" * 1000}
    with _connection(broker_root, "core.filesystem_broker:Transport") as connection:
        channel = connection.default_channel
        outcome = _read_while_a_write_is_halfway(channel, paused, payload)
        assert isinstance(outcome, Empty)  # not there yet, rather than torn
        assert channel._get("q") == payload  # and whole once the write is done


WRITERS = 4
PER_WRITER = 60


def _write_many(root: str, writer: int) -> None:
    with _connection(Path(root), "core.filesystem_broker:Transport") as connection:
        queue = connection.SimpleQueue("q")
        for number in range(PER_WRITER):
            queue.put({"writer": writer, "number": number, "pad": "x" * 100_000})


def test_many_writer_processes_and_a_reader_lose_and_tear_nothing(broker_root: Path) -> None:
    with _connection(broker_root, "core.filesystem_broker:Transport") as connection:
        queue = connection.SimpleQueue("q")
        context = multiprocessing.get_context("spawn")
        writers = [
            context.Process(target=_write_many, args=(str(broker_root), n)) for n in range(WRITERS)
        ]
        for process in writers:
            process.start()
        received = set()
        while len(received) < WRITERS * PER_WRITER:
            try:
                message = queue.get(timeout=20)
            except Empty:
                pytest.fail(f"only {len(received)} messages arrived")
            message.ack()
            received.add((message.payload["writer"], message.payload["number"]))
        for process in writers:
            process.join(20)
            assert process.exitcode == 0
    assert len(received) == WRITERS * PER_WRITER
    assert not (broker_root / "rejected").exists()
    assert os.listdir(broker_root / "queue") == []


def _bind_many(root: str, writer: int) -> None:
    with _connection(Path(root), "core.filesystem_broker:Transport") as connection:
        channel = connection.default_channel
        for number in range(20):
            channel._queue_bind("celery.pidbox", "", "", f"q-{writer}-{number}")


def test_concurrent_exchange_bindings_keep_every_entry(broker_root: Path) -> None:
    _connection(broker_root, "core.filesystem_broker:Transport").release()
    context = multiprocessing.get_context("spawn")
    binders = [context.Process(target=_bind_many, args=(str(broker_root), n)) for n in range(6)]
    for process in binders:
        process.start()
    for process in binders:
        process.join(60)
        assert process.exitcode == 0
    table = json.loads((broker_root / "control" / "celery.pidbox.exchange").read_text())
    assert len(table) == 6 * 20
    with _connection(broker_root, "core.filesystem_broker:Transport") as connection:
        connection.default_channel._delete("q-0-0", "celery.pidbox", "", "")
    table = json.loads((broker_root / "control" / "celery.pidbox.exchange").read_text())
    assert ["", "", "q-0-0"] not in table and len(table) == 6 * 20 - 1


def test_an_unreadable_message_is_set_aside_and_the_next_one_delivered(broker_root: Path) -> None:
    with _connection(broker_root, "core.filesystem_broker:Transport") as connection:
        channel = connection.default_channel
        (broker_root / "queue" / "0_torn.q.msg").write_text('{"half": ')
        channel._put("q", {"whole": True})
        assert channel._get("q") == {"whole": True}
    assert (broker_root / "rejected" / "0_torn.q.msg").read_text() == '{"half": '


def test_the_embedded_settings_use_this_transport() -> None:
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        pytest.skip("the suite runs on another broker")
    assert settings.CELERY_BROKER_TRANSPORT == "core.filesystem_broker:Transport"
    from portal.celery import app

    with app.connection_for_write() as connection:
        assert isinstance(connection.transport, core.filesystem_broker.Transport)
