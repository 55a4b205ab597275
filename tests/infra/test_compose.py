"""docker-compose.yml and the Dockerfile point at real code (there is no Docker engine here).

Every service command is resolved against the code: gunicorn's app is importable, `celery -A
portal` is the Celery app, `manage.py` commands exist, the cloudsim module runs, and every
environment variable given to the portal is one its settings read.
"""

import importlib
import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
PORTAL_SERVICES = ["migrate", "web", "worker", "beat", "cloudsim", "seed-demo"]
SETTINGS_SOURCE = (ROOT / "portal" / "settings.py").read_text()
# What the settings read: env("NAME", ...), env.bool("NAME", ...), env.db("NAME", ...).
SETTINGS_VARIABLES = set(re.findall(r'\benv(?:\.\w+)?\(\s*"([A-Z][A-Z0-9_]*)"', SETTINGS_SOURCE))
GUNICORN_VARIABLES = set(
    re.findall(r'os\.environ\.get\("([A-Z_]+)"', (ROOT / "portal/gunicorn.conf.py").read_text())
)
# Required variables for `docker compose config`, as a person would put them in .env.
COMPOSE_ENV = {
    "SECRET_KEY": "s" * 50,
    "POSTGRES_PASSWORD": "pw",
    "PORTAL_ENCRYPTION_KEYS": "k",
    "AUDIT_CHECKPOINT_KEY": "a" * 40,
    "ALLOWED_HOSTS": "portal.example.com",
}


def _command(service: str) -> list[str]:
    command = SERVICES[service]["command"]
    assert isinstance(command, list), f"{service}: use the exec (list) form"
    return command


def _check_command_runs_real_code(argv: list[str]) -> None:
    program, *args = argv
    if program == "gunicorn":
        config = args[args.index("--config") + 1]
        assert (ROOT / config).is_file(), config
        module_name, _, attribute = args[-1].partition(":")
        assert callable(getattr(importlib.import_module(module_name), attribute))
    elif program == "celery":
        assert args[:2] == ["-A", "portal"]
        assert importlib.import_module("portal").celery_app.main == "portal"
        assert args[2] in {"worker", "beat", "inspect"}
    elif program == "python" and args[0] == "manage.py":
        assert args[1] in get_commands(), f"no manage.py command {args[1]!r}"
    elif program == "python" and args[0] == "-m":
        spec = importlib.util.find_spec(args[1])
        assert spec is not None, f"no module {args[1]!r}"
        if spec.submodule_search_locations is not None:  # a package runs its __main__
            assert importlib.util.find_spec(f"{args[1]}.__main__"), f"{args[1]} has no __main__"
    else:
        pytest.fail(f"unknown command {argv!r}")


def test_the_production_services_and_the_demo_profile_are_all_there() -> None:
    assert set(SERVICES) == {"postgres", "redis", *PORTAL_SERVICES}
    assert SERVICES["cloudsim"]["profiles"] == ["demo"]
    assert SERVICES["seed-demo"]["profiles"] == ["demo"]
    for service in ("postgres", "redis", "migrate", "web", "worker", "beat"):
        assert "profiles" not in SERVICES[service], service


@pytest.mark.parametrize("service", PORTAL_SERVICES)
def test_each_portal_service_command_points_at_real_code(service: str) -> None:
    _check_command_runs_real_code(_command(service))


def test_the_commands_are_the_ones_the_topology_needs() -> None:
    assert _command("web")[-1] == "portal.wsgi:application"
    assert _command("worker")[3] == "worker"
    assert _command("beat")[3] == "beat"
    assert _command("migrate")[2:] == ["migrate", "--noinput"]
    assert _command("seed-demo")[2] == "seed_demo"
    assert _command("cloudsim")[:3] == ["python", "-m", "cloudsim"]
    assert "--demo" in _command("cloudsim")
    # Inside its container cloudsim must listen beyond loopback for web and worker to reach it.
    host = _command("cloudsim")[_command("cloudsim").index("--host") + 1]
    assert host == "0.0.0.0"  # noqa: S104


def test_worker_beat_and_the_one_shots_reuse_the_web_image() -> None:
    image = SERVICES["web"]["image"]
    assert SERVICES["web"]["build"] == "."
    for service in PORTAL_SERVICES:
        assert SERVICES[service]["image"] == image, service
        if service != "web":
            assert "build" not in SERVICES[service], f"{service} must not build its own image"


def test_redis_never_evicts_queued_tasks() -> None:
    command = SERVICES["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def test_health_checks_probe_real_endpoints() -> None:
    assert SERVICES["postgres"]["healthcheck"]["test"][1] == "pg_isready"
    assert SERVICES["redis"]["healthcheck"]["test"][1:] == ["redis-cli", "ping"]
    web_probe = SERVICES["web"]["healthcheck"]["test"]
    assert web_probe[1:4] == ["python", "-m", "portal.healthcheck"]
    assert importlib.util.find_spec("portal.healthcheck")
    assert resolve("/" + web_probe[4].split("/", 3)[3]).url_name == "readyz"
    worker_probe = SERVICES["worker"]["healthcheck"]["test"][1]
    assert worker_probe.startswith("celery -A portal inspect ping")
    cloudsim_probe = SERVICES["cloudsim"]["healthcheck"]["test"]
    assert cloudsim_probe[-1].endswith(":9100/_sim/noop")


def test_services_start_in_order() -> None:
    for service in ("web", "worker", "beat"):
        needs = SERVICES[service]["depends_on"]
        assert needs["migrate"]["condition"] == "service_completed_successfully", service
        assert needs["redis"]["condition"] == "service_healthy", service
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert SERVICES["seed-demo"]["depends_on"]["cloudsim"]["condition"] == "service_healthy"


@pytest.mark.parametrize("service", PORTAL_SERVICES)
def test_every_variable_given_to_the_portal_is_one_it_reads(service: str) -> None:
    environment = SERVICES[service].get("environment", {})
    unknown = set(environment) - SETTINGS_VARIABLES - GUNICORN_VARIABLES
    assert unknown == set(), f"{service} sets variables nothing reads: {sorted(unknown)}"


def test_the_portal_environment_is_production_ready() -> None:
    environment = SERVICES["web"]["environment"]
    assert environment["DEBUG"] == "false"
    assert environment["SECRET_KEY"].startswith("${SECRET_KEY:?")
    assert environment["DATABASE_URL"].startswith("postgres://")
    assert environment["CELERY_BROKER_URL"].startswith("redis://redis:6379/")


def test_every_compose_variable_is_documented_in_env_example() -> None:
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", (ROOT / "docker-compose.yml").read_text()))
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    )
    assert used - documented == set()


def _compose_binary() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_docker_compose_validates_the_file() -> None:
    binary = _compose_binary()
    if binary is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI installs docker-compose (.ci/run); it is missing")
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    env = {**os.environ, **COMPOSE_ENV}
    for profile_args in ([], ["--profile", "demo"]):
        result = subprocess.run(
            [*binary, "--file", "docker-compose.yml", *profile_args, "config", "--quiet"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    # A missing secret stops compose with the message from the file, not a broken deploy.
    missing = {k: v for k, v in env.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [*binary, "--file", "docker-compose.yml", "config", "--quiet"],
        cwd=ROOT,
        env=missing,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "set SECRET_KEY in .env" in result.stdout + result.stderr


# --- Dockerfile ---------------------------------------------------------------------------

DOCKERFILE = (ROOT / "Dockerfile").read_text()
INSTRUCTIONS = [
    line.split(None, 1)
    for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
    if line.strip() and not line.lstrip().startswith("#")
]


def test_the_image_is_python_3_11_slim_and_runs_as_a_non_root_user() -> None:
    assert INSTRUCTIONS[0] == ["FROM", "python:3.11-slim"]
    users = [args for op, args in INSTRUCTIONS if op == "USER"]
    assert users and users[-1].strip() not in {"root", "0"}
    last_user = max(i for i, (op, _) in enumerate(INSTRUCTIONS) if op == "USER")
    assert INSTRUCTIONS[-1][0] == "CMD" and last_user < len(INSTRUCTIONS) - 1


def test_the_image_installs_the_pins_and_collects_static_files() -> None:
    runs = " ".join(args for op, args in INSTRUCTIONS if op == "RUN")
    assert "pip install -r requirements.txt" in runs
    assert "manage.py collectstatic --noinput" in runs
    copied = [args.split()[0] for op, args in INSTRUCTIONS if op == "COPY"]
    for source in copied:
        assert (ROOT / source).exists(), source


def test_the_image_command_is_the_web_service_command() -> None:
    cmd = yaml.safe_load(next(args for op, args in INSTRUCTIONS if op == "CMD"))
    assert cmd == _command("web")


def test_the_build_context_leaves_out_local_state_and_secrets() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".venv", ".env", ".git", "var", "staticfiles"} <= ignored
