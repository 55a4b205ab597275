"""Suite-wide fixtures and the CI contract: with CI=true, every real service must be present."""

import os
import shutil
import socket
from urllib.parse import urlparse

import pytest
from django.core.management import call_command
from django.utils import translation
from hypothesis import HealthCheck, settings

from tests.i18n.catalogue import CATALOGUE

pytest_plugins = [
    "tests.fixtures.cloudsim",
    "tests.fixtures.worker",
    "tests.fixtures.partner",
    "tests.fixtures.browser",
    "tests.fixtures.database",
]

# The SDKs apply HTTP(S)_PROXY even to loopback; cloudsim is always reached directly.
for _var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_var, None)

CHROMIUM = "/usr/bin/chromium"

# Tests assert behaviour, never wall-clock time: Hypothesis's per-example deadline and its
# "too slow" health check are timings, and a CI machine busy with other work trips them.
settings.register_profile("portal", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("portal")


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _compile_catalogues_when_stale() -> None:
    """The zh-hans catalogue is compiled once per session when its .mo is missing or older
    than the .po (no .mo in git): pages render in Chinese in the tests as in `make run`."""
    compiled = CATALOGUE.with_suffix(".mo")
    if CATALOGUE.exists() and (
        not compiled.exists() or compiled.stat().st_mtime < CATALOGUE.stat().st_mtime
    ):
        # pytest-django has set Django up by now.
        call_command(
            "compilemessages",
            locale=["zh_Hans"],
            ignore_patterns=[".venv", "var", "cloudsim", "staticfiles", "test-artifacts"],
            verbosity=0,
        )


def pytest_sessionstart(session: pytest.Session) -> None:
    _compile_catalogues_when_stale()
    if os.environ.get("CI", "").lower() != "true":
        return
    problems = []
    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")):
        problems.append("CI needs DATABASE_URL pointing at PostgreSQL")
    else:
        db = urlparse(database_url)
        if not _reachable(db.hostname or "127.0.0.1", db.port or 5432):
            problems.append(f"PostgreSQL is not reachable at {db.hostname}:{db.port}")
    broker_url = os.environ.get("CELERY_BROKER_URL", "")
    if not broker_url.startswith("redis://"):
        problems.append("CI needs CELERY_BROKER_URL pointing at Redis")
    else:
        broker = urlparse(broker_url)
        if not _reachable(broker.hostname or "127.0.0.1", broker.port or 6379):
            problems.append(f"Redis is not reachable at {broker.hostname}:{broker.port}")
    if not shutil.which(CHROMIUM):
        problems.append(f"Chromium is missing at {CHROMIUM}")
    if problems:
        pytest.exit("CI services missing: " + "; ".join(problems), returncode=3)


# Persona fixtures (company A/B and the foreign C/D, one user per role) for every app's tests.
from tests.personas import (  # noqa: E402
    _fast_passwords_and_fresh_rate_limits,
    auditor,
    company_a,
    company_b,
    company_c,
    company_d,
    foreign_owner_admin,
    foreign_partner_staff,
    login,
    owner_admin,
    partner_admin,
    partner_staff,
)

__all__ = [
    "_fast_passwords_and_fresh_rate_limits",
    "auditor",
    "company_a",
    "company_b",
    "company_c",
    "company_d",
    "foreign_owner_admin",
    "foreign_partner_staff",
    "login",
    "owner_admin",
    "partner_admin",
    "partner_staff",
]


@pytest.fixture
def fixed_rate_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the rate limiter's clock still: it counts in fixed windows, and a test's few
    requests must fall in one, whatever the time when a busy machine gets to them."""
    from types import SimpleNamespace

    from core import ratelimit

    monkeypatch.setattr(ratelimit, "time", SimpleNamespace(time=lambda: 1_800_000_030.0))


@pytest.fixture(autouse=True)
def _each_test_starts_in_the_default_language():
    """The test client serves a request in the test's own thread, and LocaleMiddleware leaves
    the request's language active there afterwards (a server thread activates the next
    request's anyway): without this, a test after a Chinese page would read Chinese."""
    yield
    translation.deactivate()
