"""`make test` runs the suite in parallel processes (pytest-xdist): each must have services of
its own (tests/fixtures/workers.py), and the slow tests must start first."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connection

from tests.fixtures import workers
from tests.fixtures.browser import pytest_collection_modifyitems


def test_this_process_keeps_its_files_in_a_data_directory_of_its_own() -> None:
    assert Path(workers.DATA_DIR) == settings.DATA_DIR
    assert Path(settings.BASE_DIR) / "var" != settings.DATA_DIR
    assert os.environ["PORTAL_DATA_DIR"] == workers.DATA_DIR  # and so do its subprocesses
    assert Path(settings.CELERY_BEAT_SCHEDULE_FILENAME).parent == settings.DATA_DIR
    assert settings.AUDIT_CHECKPOINT_DIR.parent == settings.DATA_DIR


def test_each_worker_connects_to_a_postgresql_database_of_its_own() -> None:
    url = "postgres://postgres@127.0.0.1:5432/portal_ci"
    assert workers.worker_database_url(url, "") == url
    assert workers.worker_database_url(url, "gw0") == url + "_gw0"
    assert workers.worker_database_url(url, "gw2") == url + "_gw2"
    sqlite = "sqlite:////tmp/portal.sqlite3"
    assert workers.worker_database_url(sqlite, "gw1") == sqlite


def test_each_worker_takes_two_redis_databases_no_other_process_takes() -> None:
    def databases(base: int, worker: str) -> tuple[str, str]:
        url = f"redis://127.0.0.1:6379/{base}"
        return (
            workers.worker_redis_url(url, worker).rsplit("/", 1)[1],
            workers.worker_redis_url(url, worker, cache=True).rsplit("/", 1)[1],
        )

    # CI's broker is 15: the suite's processes take 15/14, 13/12, 11/10.
    assert [databases(15, w) for w in ("", "gw0", "gw1", "gw2")] == [
        ("15", "14"),
        ("15", "14"),
        ("13", "12"),
        ("11", "10"),
    ]
    # Counting down wraps round Redis's 16 databases.
    assert databases(0, "gw0") == ("0", "15")
    taken = [db for worker in range(8) for db in databases(7, f"gw{worker}")]
    assert sorted(taken, key=int) == [str(db) for db in range(16)]


@pytest.mark.django_db
def test_the_settings_read_the_databases_worked_out_for_this_process() -> None:
    # The environment is rewritten before pytest-django reads the settings, or it is too late.
    if workers.IS_REDIS:
        assert (
            workers.worker_redis_url(workers.GIVEN_BROKER_URL, workers.WORKER)
            == settings.CELERY_BROKER_URL
        )
    if workers.IS_POSTGRES:
        name = workers.worker_database_url(workers.GIVEN_DATABASE_URL, workers.WORKER)
        # pytest-django adds the worker's suffix to the test database's name once more.
        suffix = f"_{workers.WORKER}" if workers.WORKER else ""
        assert connection.settings_dict["NAME"] == f"test_{urlparse(name).path[1:]}{suffix}"


def _item(name: str, *, browser: bool = False, slow: bool = False) -> pytest.Item:
    return SimpleNamespace(  # type: ignore[return-value]
        name=name,
        fixturenames=["chromium"] if browser else [],
        get_closest_marker=lambda marker: object() if slow and marker == "slow" else None,
    )


def test_slow_tests_run_first_and_browser_tests_last() -> None:
    items = [
        _item("fast"),
        _item("browser", browser=True),
        _item("slow", slow=True),
        _item("slow browser", browser=True, slow=True),
        _item("fast 2"),
    ]
    pytest_collection_modifyitems(items)
    assert [item.name for item in items] == [
        "slow",
        "fast",
        "fast 2",
        "slow browser",
        "browser",
    ]
