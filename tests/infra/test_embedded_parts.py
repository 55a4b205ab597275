"""The `make run` supervisor's parts: configuration, key file, ports, process supervision."""

import io
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from demo import embedded

ROOT = Path(__file__).resolve().parents[2]
SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(120)"]


def _config(tmp_path: Path, **environ: str) -> embedded.Config:
    return embedded.load_config({"PORTAL_DATA_DIR": str(tmp_path / "data"), **environ})


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# --- configuration ------------------------------------------------------------------------


def test_ports_default_to_8000_and_9100_and_follow_the_environment(tmp_path: Path) -> None:
    default = _config(tmp_path)
    assert (default.portal_port, default.cloudsim_port) == (8000, 9100)
    custom = _config(tmp_path, PORTAL_PORT="18001", CLOUDSIM_PORT="19101")
    assert custom.portal_url == "http://127.0.0.1:18001/"
    assert custom.cloudsim_url == "http://127.0.0.1:19101"


@pytest.mark.parametrize(
    "value", ["abc", "0", "65536", "-1", "80a", "\uff18\uff10\uff10\uff10", "1e3"]
)
def test_a_port_that_is_not_a_port_number_is_refused_clearly(tmp_path: Path, value: str) -> None:
    with pytest.raises(embedded.EmbeddedError, match="PORTAL_PORT must be a port number"):
        _config(tmp_path, PORTAL_PORT=value)


def test_the_two_ports_must_differ(tmp_path: Path) -> None:
    with pytest.raises(embedded.EmbeddedError, match="must be different"):
        _config(tmp_path, PORTAL_PORT="9100")


def test_dotenv_lines_are_read_like_django_environ_reads_them(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text(
        "# a comment\n\nPORTAL_PORT=8100\nexport CLOUDSIM_PORT='9200'\n"
        'EMAIL_URL="smtp://a:b@c:25"\nnot a setting\n'
    )
    assert embedded.read_dotenv(dotenv) == {
        "PORTAL_PORT": "8100",
        "CLOUDSIM_PORT": "9200",
        "EMAIL_URL": "smtp://a:b@c:25",
    }
    assert embedded.read_dotenv(tmp_path / "missing") == {}


def test_children_get_the_embedded_environment(tmp_path: Path) -> None:
    config = _config(tmp_path, CLOUDSIM_PORT="19102")
    env = embedded.child_environment(
        config,
        {"HTTP_PROXY": "http://proxy:3128", "https_proxy": "x", "SESSION_COOKIE_SECURE": "true"},
        {"PORTAL_ENCRYPTION_KEYS": "key", "AUDIT_CHECKPOINT_KEY": "audit"},
    )
    assert env["DEBUG"] == "0"  # what we ship: no debug pages
    assert env["ACCOUNT_DEFAULT_HTTP_PROTOCOL"] == "http"
    assert env["STATIC_ROOT"] == str(config.data_dir / "static")
    assert env["WEB_CONCURRENCY"] == "1"
    assert env["PORTAL_EMBEDDED"] == "true"
    assert env["PORTAL_REQUIRE_MFA"] == "false"
    assert env["SECURE_SSL_REDIRECT"] == env["SESSION_COOKIE_SECURE"] == "false"
    assert env["ALLOWED_HOSTS"] == "127.0.0.1,localhost"
    assert env["PORTAL_DATA_DIR"] == str(config.data_dir)
    assert env["CLOUDSIM_DATA_DIR"] == str(config.data_dir / "cloudsim")
    assert env["ALIBABA_RAM_ENDPOINT"] == env["ALIBABA_STS_ENDPOINT"] == "127.0.0.1:19102"
    assert env["ALIBABA_CONSOLE_SIGNIN_URL"] == "http://127.0.0.1:19102"
    assert env["PORTAL_ENCRYPTION_KEYS"] == "key"
    assert env["AUDIT_CHECKPOINT_KEY"] == "audit"
    assert "HTTP_PROXY" not in env and "https_proxy" not in env


def test_an_explicit_mfa_requirement_is_kept(tmp_path: Path) -> None:
    config = _config(tmp_path, PORTAL_REQUIRE_MFA="true")
    env = embedded.child_environment(config, {"PORTAL_REQUIRE_MFA": "true"}, {})
    assert env["PORTAL_REQUIRE_MFA"] == "true"


# --- data directory and encryption key ----------------------------------------------------


def test_the_keys_are_created_once_private_and_usable(tmp_path: Path) -> None:
    config = _config(tmp_path)
    embedded.prepare_data_dir(config)
    keys = embedded.ensure_secrets(config)
    assert stat.S_IMODE(config.data_dir.stat().st_mode) == 0o700
    for name in ("encryption.key", "audit-checkpoint.key", "secret.key"):
        assert stat.S_IMODE((config.data_dir / name).stat().st_mode) == 0o600
    assert len(keys["SECRET_KEY"]) >= 50
    fernet = Fernet(keys["PORTAL_ENCRYPTION_KEYS"].encode())
    token = fernet.encrypt(b"secret")
    assert len(keys["AUDIT_CHECKPOINT_KEY"]) >= 32
    assert embedded.ensure_secrets(config) == keys  # the second run reuses them
    assert Fernet(embedded.ensure_secrets(config)["PORTAL_ENCRYPTION_KEYS"]).decrypt(token) == (
        b"secret"
    )


def test_configured_keys_win_and_no_key_file_is_written(tmp_path: Path) -> None:
    audit_key = "a" * 40
    config = _config(
        tmp_path,
        PORTAL_ENCRYPTION_KEYS="k1,k2",
        AUDIT_CHECKPOINT_KEY=audit_key,
        SECRET_KEY="s" * 50,
    )
    embedded.prepare_data_dir(config)
    assert embedded.ensure_secrets(config) == {
        "PORTAL_ENCRYPTION_KEYS": "k1,k2",
        "AUDIT_CHECKPOINT_KEY": audit_key,
        "SECRET_KEY": "s" * 50,
    }
    assert not (config.data_dir / "encryption.key").exists()
    assert not (config.data_dir / "audit-checkpoint.key").exists()
    assert not (config.data_dir / "secret.key").exists()


@pytest.mark.parametrize(
    ("file_name", "message"),
    [
        ("encryption.key", "a Fernet key"),
        ("audit-checkpoint.key", "an audit checkpoint key"),
        ("secret.key", "a secret key"),
    ],
)
def test_a_damaged_key_file_stops_the_start_with_a_clear_message(
    tmp_path: Path, file_name: str, message: str
) -> None:
    config = _config(tmp_path)
    embedded.prepare_data_dir(config)
    (config.data_dir / file_name).write_text("short\n")
    with pytest.raises(embedded.EmbeddedError, match=f"does not hold {message}"):
        embedded.ensure_secrets(config)


def test_the_broker_folders_exist_before_any_child_starts(tmp_path: Path) -> None:
    config = _config(tmp_path)
    embedded.prepare_data_dir(config)
    for folder in ("queue", "processed", "control"):
        assert (config.data_dir / "broker" / folder).is_dir()
    assert (config.data_dir / "static").is_dir()


def test_half_written_broker_files_of_an_earlier_run_are_removed(tmp_path: Path) -> None:
    config = _config(tmp_path)
    embedded.prepare_data_dir(config)
    queue = config.data_dir / "broker" / "queue"
    (queue / ".incoming-abc").write_text('{"half')
    (config.data_dir / "broker" / "control" / ".incoming-def").write_text("[")
    (queue / "1_x.celery.msg").write_text("{}")
    embedded.prepare_data_dir(config)
    assert sorted(p.name for p in (config.data_dir / "broker").rglob("*") if p.is_file()) == [
        "1_x.celery.msg"
    ]


def test_the_web_server_is_gunicorn_with_the_docker_image_s_settings(tmp_path: Path) -> None:
    argv = embedded.gunicorn(_config(tmp_path, PORTAL_PORT="18005"))
    assert argv[1:3] == ["-m", "gunicorn"]
    assert argv[argv.index("--config") + 1] == str(ROOT / "portal" / "gunicorn.conf.py")
    assert argv[argv.index("--bind") + 1] == "127.0.0.1:18005"
    assert argv[-1] == "portal.wsgi:application"


# --- ports --------------------------------------------------------------------------------


def test_a_port_in_use_is_refused_politely_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            **os.environ,
            "PORTAL_DATA_DIR": str(tmp_path / "data"),
            "PORTAL_PORT": str(port),
            "CLOUDSIM_PORT": str(port + 1 if port < 65535 else port - 1),
        }
        result = subprocess.run(
            [sys.executable, "-m", "demo.embedded"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stdout
    assert f"PORTAL_PORT={port + 1} make run" in result.stdout
    assert not (tmp_path / "data").exists()  # refused before touching anything


# --- supervision --------------------------------------------------------------------------


@pytest.fixture
def supervisor():
    out = io.StringIO()
    sup = embedded.Supervisor(embedded.Console(out), os.environ)
    sup.output = out
    yield sup
    sup.stop_all(grace=5)


def _wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_output_lines_are_prefixed_with_the_child_name(supervisor) -> None:
    child = supervisor.start("sleeper", SLEEPER)
    _wait_for(lambda: "sleeper | up" in supervisor.output.getvalue())
    assert f"embedded | started sleeper (pid {child.process.pid})" in supervisor.output.getvalue()


def test_a_child_that_dies_stops_the_watch_and_the_others_are_stopped(supervisor) -> None:
    keeper = supervisor.start("keeper", SLEEPER)
    victim = supervisor.start("victim", SLEEPER)
    os.kill(victim.process.pid, signal.SIGKILL)
    with pytest.raises(embedded.ChildDied) as died:
        supervisor.watch()
    assert died.value.child is victim
    supervisor.stop_all(grace=5)
    assert keeper.process.returncode == -signal.SIGTERM


def test_a_signal_stops_the_watch(supervisor) -> None:
    supervisor.start("sleeper", SLEEPER)
    supervisor._on_signal(signal.SIGINT, None)
    with pytest.raises(embedded.StopRequested):
        supervisor.watch()
    assert supervisor.signals_received == ["SIGINT"]


def test_stopping_reaches_grandchildren_and_kills_what_ignores_sigterm(supervisor) -> None:
    # A child that ignores SIGTERM and has a helper process of its own.
    stubborn = supervisor.start(
        "stubborn",
        [
            sys.executable,
            "-c",
            "import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "helper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
            "print('helper', helper.pid, flush=True)\n"
            "time.sleep(120)\n",
        ],
    )
    _wait_for(lambda: "stubborn | helper " in supervisor.output.getvalue())
    helper_pid = int(supervisor.output.getvalue().split("stubborn | helper ")[1].split()[0])
    supervisor.stop_all(grace=1)
    assert stubborn.process.returncode == -signal.SIGKILL
    assert "stubborn ignored SIGTERM; killing it" in supervisor.output.getvalue()
    _wait_for(lambda: not _alive(helper_pid) or _is_zombie(helper_pid))


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except (FileNotFoundError, IndexError):
        return False


def test_a_failing_step_raises_with_its_output(supervisor) -> None:
    with pytest.raises(embedded.EmbeddedError, match="failed with exit status 3"):
        supervisor.run_step(
            "step",
            [sys.executable, "-c", "print('what went wrong'); raise SystemExit(3)"],
            capture=True,
        )
    assert "step | what went wrong" in supervisor.output.getvalue()


def test_a_step_s_captured_output_is_returned(supervisor) -> None:
    lines = supervisor.run_step(
        "step", [sys.executable, "-c", "print('a'); print('b')"], capture=True
    )
    assert lines == ["a", "b"]
    assert supervisor.children == []


def test_the_banner_names_every_url_and_passes_the_seed_output_through(tmp_path: Path) -> None:
    config = _config(tmp_path, PORTAL_PORT="18003", CLOUDSIM_PORT="19103")
    text = "\n".join(
        embedded.banner(
            config,
            seed_output=["Demo sign-ins:", "  alice@example.com  pw"],
            console_sign_ins=["Alice@company-b.onaliyun.com  pw2"],
            operator_url="http://127.0.0.1:19103/_sim/?token=t",
            env={"PORTAL_REQUIRE_MFA": "false"},
        )
    )
    assert "Portal             http://127.0.0.1:18003/\n" in text
    assert "http://127.0.0.1:18003/dev/mail/" in text
    assert "cloudsim console   http://127.0.0.1:19103/ " in text
    assert "cloudsim operator  http://127.0.0.1:19103/_sim/?token=t" in text
    assert "  Demo sign-ins:\n    alice@example.com  pw" in text
    assert "    Alice@company-b.onaliyun.com  pw2" in text
    assert "MFA is not required" in text
    assert "Ctrl-C" in text


def test_console_sign_ins_and_the_operator_url_come_from_cloudsim_s_files(tmp_path: Path) -> None:
    config = _config(tmp_path, CLOUDSIM_PORT="19104")
    config.cloudsim_data_dir.mkdir(parents=True)
    (config.cloudsim_data_dir / "demo-credentials.json").write_text(
        '{"endpoint": "x", "accounts": [{"uid": "1", "alias": "company-a", "users": []},'
        ' {"uid": "2", "alias": "company-b", "users": [{"name": "Alice", "password": "p w"},'
        ' {"name": "NoConsole", "password": null}]}]}'
    )
    (config.cloudsim_data_dir / "operator-token").write_text("a/b+c\n")
    assert embedded.cloudsim_console_sign_ins(config) == ["Alice@company-b.onaliyun.com  p w"]
    assert embedded.cloudsim_operator_url(config) == "http://127.0.0.1:19104/_sim/?token=a%2Fb%2Bc"
    (config.cloudsim_data_dir / "demo-credentials.json").write_text("{not json")
    with pytest.raises(embedded.EmbeddedError, match="unreadable"):
        embedded.cloudsim_console_sign_ins(config)


def test_a_crashed_worker_is_started_again_and_the_watch_goes_on() -> None:
    out = io.StringIO()
    sup = embedded.Supervisor(embedded.Console(out), os.environ, restart_backoff=(0.2,))
    watching = {}

    def watch() -> None:
        try:
            sup.watch()
        except Exception as error:  # handed to the test's thread
            watching["ended"] = error

    try:
        first = sup.start("worker", SLEEPER, restartable=True)
        _wait_for(lambda: "worker | up" in out.getvalue())
        thread = threading.Thread(target=watch, daemon=True)
        thread.start()
        os.kill(first.process.pid, signal.SIGKILL)
        _wait_for(lambda: out.getvalue().count("worker | up") == 2)
        [second] = sup.children
        assert second.process.pid != first.process.pid and second.process.poll() is None
        assert "worker exited unexpectedly (status -9); starting it again in 0.2s" in (
            out.getvalue()
        )
        assert "ended" not in watching  # still watching: nothing else stopped
        sup._on_signal(signal.SIGTERM, None)
        thread.join(5)
        assert isinstance(watching["ended"], embedded.StopRequested)
    finally:
        sup.stop_all(grace=5)


def test_a_child_that_keeps_crashing_stops_everything_saying_why() -> None:
    out = io.StringIO()
    sup = embedded.Supervisor(
        embedded.Console(out), os.environ, restart_backoff=(0.05, 0.1), crash_limit=3
    )
    try:
        keeper = sup.start("web", SLEEPER)
        sup.start("beat", [sys.executable, "-c", "raise SystemExit(4)"], restartable=True)
        with pytest.raises(embedded.ChildDied) as died:
            sup.watch()
        assert died.value.child.name == "beat" and died.value.crashes == 3
        explanation = died.value.explanation()
        assert "beat crashed 3 times within 300s (last exit status 4)" in explanation
        assert "starting it again would not help" in explanation
        assert out.getvalue().count("started beat") == 3
        assert keeper.process.poll() is None  # the others run until main stops them all
    finally:
        sup.stop_all(grace=5)
    assert keeper.process.returncode == -signal.SIGTERM


def test_a_child_that_is_not_restartable_still_stops_the_watch_at_once() -> None:
    out = io.StringIO()
    sup = embedded.Supervisor(embedded.Console(out), os.environ, restart_backoff=(0.05,))
    try:
        web = sup.start("web", [sys.executable, "-c", "raise SystemExit(2)"])
        with pytest.raises(embedded.ChildDied) as died:
            sup.watch()
        assert died.value.child is web
        assert died.value.explanation() == (
            "web exited unexpectedly (status 2); stopping everything."
        )
    finally:
        sup.stop_all(grace=5)
