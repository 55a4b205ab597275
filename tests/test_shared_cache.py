"""Rate limits count in the cache CACHE_URL names: with Redis, every web process sees the same
count, so running several gunicorn workers does not multiply anybody's allowance.

Needs Redis: CI points CELERY_BROKER_URL at it (and fails when it is missing); elsewhere the
test runs when a local Redis answers on the broker's address.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.cache import caches
from django.test import override_settings

from core.ratelimit import rate_limit_consume
from tests.fixtures.workers import shared_cache_url

ROOT = Path(__file__).resolve().parents[1]
# A database of the broker's Redis of this test process's own, never the broker's
# (tests/fixtures/workers.py).
CACHE_URL = shared_cache_url()
pytestmark = pytest.mark.skipif(not CACHE_URL, reason="needs CELERY_BROKER_URL at Redis")

CONSUME_IN_ANOTHER_PROCESS = """
import django, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "portal.settings"
django.setup()
from core.ratelimit import rate_limit_consume
wait = rate_limit_consume(scope=sys.argv[1], key=sys.argv[2], rate=sys.argv[3])
print("limited" if wait is not None else "allowed")
"""


def consume_in_another_process(scope: str, key: str, rate: str) -> str:
    environment = {**os.environ, "CACHE_URL": CACHE_URL, "DEBUG": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CONSUME_IN_ANOTHER_PROCESS, scope, key, rate],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_cache_url_selects_the_redis_cache() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); from django.conf import settings; "
            "print(settings.CACHES['default']['BACKEND'])",
        ],
        cwd=ROOT,
        env={**os.environ, "CACHE_URL": CACHE_URL, "DEBUG": "1"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout.strip() == "django.core.cache.backends.redis.RedisCache", done.stderr


def test_two_processes_share_one_rate_limit_count() -> None:
    # A day's window: the four uses (two of them in processes that take seconds to start on a
    # busy machine) must land in one fixed window, and a minute's window was crossed at times.
    scope, key, rate = "shared-cache-test", secrets.token_hex(8), "3/86400"
    with override_settings(
        CACHES={
            "default": {
                "BACKEND": "django.core.cache.backends.redis.RedisCache",
                "LOCATION": CACHE_URL,
            }
        }
    ):
        try:
            assert [rate_limit_consume(scope=scope, key=key, rate=rate) for _ in range(2)] == [
                None,
                None,
            ]
            # The third use, from another process, is still within the limit; the fourth,
            # back here, is over it: both processes counted into the same key.
            assert consume_in_another_process(scope, key, rate) == "allowed"
            assert rate_limit_consume(scope=scope, key=key, rate=rate) is not None
            assert consume_in_another_process(scope, key, rate) == "limited"
        finally:
            caches["default"].clear()
