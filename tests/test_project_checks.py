"""The code checks run inside the suite, so `make test` is the one gate: lint, format, types,
Django."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_ruff_lint_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean() -> None:
    # What it checks is [tool.mypy] in pyproject.toml; django-stubs' plugin loads the settings,
    # which need DEBUG (or a SECRET_KEY) to load.
    result = _run(str(BIN / "mypy"), env={"DEBUG": "1"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_django_system_checks_pass() -> None:
    result = _run(sys.executable, "manage.py", "check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_model_change_lacks_a_migration() -> None:
    result = _run(sys.executable, "manage.py", "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_pass_the_deploy_check() -> None:
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "x" * 64 + "-a-long-random-production-like-secret-value",
        "ALLOWED_HOSTS": "portal.example.com",
    }
    # Test-only switches (browser tests set DJANGO_ALLOW_ASYNC_UNSAFE) are not production.
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(production)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
