"""`make run`: the whole product on one machine, in one terminal, with nothing to install.

This supervisor uses the standard library only (Django runs in its children): it prepares
the data directory and the keys the portal needs, migrates, collects the static files, starts
cloudsim with its demo accounts, seeds the portal's demo data, then runs the web server, a
real Celery worker and Celery beat side by side, and prints the URLs and demo sign-ins. The
web server is the one production uses (gunicorn, static files by whitenoise) with DEBUG off,
so a failure shows the product's own error page, never Django's debug page. Each child's output is
prefixed with its name. Ctrl-C (or SIGTERM, SIGHUP) stops every child. A worker or beat that
crashes is started again after a growing pause; one that keeps crashing, or any other child
dying on its own, stops everything with a non-zero exit status.

Environment: PORTAL_PORT (8000), CLOUDSIM_PORT (9100), PORTAL_DATA_DIR (./var), plus every
setting in `.env.example`. Values in `.env` count as if they were in the environment.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
MANAGE_PY = str(BASE_DIR / "manage.py")

DEFAULT_PORTAL_PORT = 8000
DEFAULT_CLOUDSIM_PORT = 9100
# Generous: on a busy two-core machine the first migrate and Celery's start take a while.
READY_TIMEOUT_SECONDS = 180.0
# How long children get to finish after SIGTERM (the worker ends its current task).
STOP_GRACE_SECONDS = 20.0
POLL_SECONDS = 0.2
# A crashed worker or beat is started again after these pauses (the last one repeats)...
RESTART_BACKOFF_SECONDS = (1.0, 2.0, 5.0, 10.0, 30.0)
# ...unless it crashed this many times within the window: then something is wrong that a
# restart cannot fix (a bad setting, a broken database), and the product stops saying so.
CRASH_LIMIT = 5
CRASH_WINDOW_SECONDS = 300.0

# The embedded children only ever talk to loopback; a proxy in the user's shell would
# intercept the SDKs' calls to cloudsim.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy")

WORKER_READY = re.compile(r"@\S+ ready\.\s*$")
BEAT_READY = re.compile(r"beat: Starting\.\.\.")


class EmbeddedError(Exception):
    """A problem the person running `make run` can fix; printed without a traceback."""


# --- Configuration ------------------------------------------------------------------------


def read_dotenv(path: Path) -> dict[str, str]:
    """The KEY=VALUE lines of `.env`, read the way django-environ reads them for settings."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        values[key.strip()] = value
    return values


def _port(merged: Mapping[str, str], name: str, default: int) -> int:
    raw = merged.get(name, "").strip()
    if not raw:
        return default
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= 65535:
        raise EmbeddedError(f"{name} must be a port number between 1 and 65535, not {raw!r}.")
    return int(raw)


@dataclass(frozen=True)
class Config:
    data_dir: Path
    portal_port: int
    cloudsim_port: int
    # The environment as settings will see it: the process environment over `.env`.
    merged: Mapping[str, str] = field(repr=False)

    @property
    def portal_url(self) -> str:
        return f"http://127.0.0.1:{self.portal_port}/"

    @property
    def cloudsim_url(self) -> str:
        return f"http://127.0.0.1:{self.cloudsim_port}"

    @property
    def cloudsim_data_dir(self) -> Path:
        return self.data_dir / "cloudsim"

    @property
    def static_root(self) -> Path:
        # Hashed and compressed by collectstatic on every start; whitenoise serves it.
        return self.data_dir / "static"


def load_config(environ: Mapping[str, str]) -> Config:
    merged = {**read_dotenv(BASE_DIR / ".env"), **environ}
    data_dir = Path(merged.get("PORTAL_DATA_DIR") or BASE_DIR / "var").expanduser().resolve()
    config = Config(
        data_dir=data_dir,
        portal_port=_port(merged, "PORTAL_PORT", DEFAULT_PORTAL_PORT),
        cloudsim_port=_port(merged, "CLOUDSIM_PORT", DEFAULT_CLOUDSIM_PORT),
        merged=merged,
    )
    if config.portal_port == config.cloudsim_port:
        raise EmbeddedError("PORTAL_PORT and CLOUDSIM_PORT must be different ports.")
    return config


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # The servers set SO_REUSEADDR too, so a port in TIME_WAIT counts as free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def check_ports(config: Config) -> None:
    for name, port in (
        ("PORTAL_PORT", config.portal_port),
        ("CLOUDSIM_PORT", config.cloudsim_port),
    ):
        if not port_is_free(port):
            raise EmbeddedError(
                f"Port {port} on 127.0.0.1 is already in use (is another `make run` running?). "
                f"Stop whatever uses it, or choose another port: {name}={port + 1} make run"
            )


def prepare_data_dir(config: Config) -> None:
    """Create the folders the children expect; kombu's filesystem transport creates none."""
    for folder in (
        config.data_dir,
        config.data_dir / "broker" / "queue",
        config.data_dir / "broker" / "processed",
        config.data_dir / "broker" / "control",
        config.data_dir / "mail",
        config.static_root,
        config.cloudsim_data_dir,
    ):
        # 0700: the folder holds the database, the encryption key and demo secrets.
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    # Half-written broker files of a process killed mid-write (core/filesystem_broker.py
    # writes under a temporary name, then renames); nothing is running yet to finish them.
    for broker_folder in ("queue", "control"):
        for leftover in (config.data_dir / "broker" / broker_folder).glob(".incoming-*"):
            leftover.unlink(missing_ok=True)


def new_fernet_key() -> str:
    # The format cryptography's Fernet.generate_key() produces, without importing it here.
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode("ascii")


def is_fernet_key(key: str) -> bool:
    try:
        return len(base64.b64decode(key, altchars=b"-_", validate=True)) == 32
    except (ValueError, binascii.Error):
        return False


def _kept_secret(
    path: Path, *, make: Callable[[], str], valid: Callable[[str], bool], what: str
) -> str:
    """The secret in `path`, created (0600) on the first run and reused on every later one."""
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        secret = path.read_text(encoding="ascii", errors="replace").strip()
        if not valid(secret):
            raise EmbeddedError(
                f"{path} does not hold {what}; restore it, or delete {path.parent} to start afresh."
            ) from None
        path.chmod(0o600)
        return secret
    secret = make()
    with os.fdopen(descriptor, "w", encoding="ascii") as handle:
        handle.write(secret + "\n")
    return secret


def ensure_secrets(config: Config) -> dict[str, str]:
    """The keys the portal needs, from the environment or kept in the data directory.

    PORTAL_ENCRYPTION_KEYS encrypts cloud secrets at rest: reusing it keeps what an earlier run
    stored readable. AUDIT_CHECKPOINT_KEY signs the audit chain's checkpoints. SECRET_KEY signs
    sessions (DEBUG is off, so settings insist on one): reusing it keeps people signed in
    across restarts. A key set in the environment or `.env` wins and no file is written for it.
    """
    wanted = {
        "SECRET_KEY": (
            "secret.key",
            lambda: secrets.token_urlsafe(50),
            lambda key: len(key) >= 50,
            "a secret key of 50 or more characters",
        ),
        "PORTAL_ENCRYPTION_KEYS": (
            "encryption.key",
            new_fernet_key,
            is_fernet_key,
            "a Fernet key",
        ),
        "AUDIT_CHECKPOINT_KEY": (
            "audit-checkpoint.key",
            lambda: secrets.token_urlsafe(48),
            lambda key: len(key) >= 32,
            "an audit checkpoint key of 32 or more characters",
        ),
    }
    found = {}
    for variable, (file_name, make, valid, what) in wanted.items():
        configured = config.merged.get(variable, "").strip()
        found[variable] = configured or _kept_secret(
            config.data_dir / file_name, make=make, valid=valid, what=what
        )
    return found


def child_environment(
    config: Config, environ: Mapping[str, str], keys: Mapping[str, str]
) -> dict[str, str]:
    env = {k: v for k, v in environ.items() if k not in PROXY_VARIABLES}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            # What we ship runs with DEBUG off: no debug page, whatever `.env` says.
            "DEBUG": "0",
            "PORTAL_EMBEDDED": "true",
            # Plain http on loopback: whatever `.env` says for a deployment does not apply.
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "ACCOUNT_DEFAULT_HTTP_PROTOCOL": "http",  # the links in the demo's emails
            # Links in notifications, and where the seeded webhook channel posts.
            "PORTAL_BASE_URL": f"http://127.0.0.1:{config.portal_port}",
            "STATIC_ROOT": str(config.static_root),
            # One web process: the embedded cache (rate limits) is per-process memory.
            "WEB_CONCURRENCY": "1",
            "PORTAL_DATA_DIR": str(config.data_dir),
            "CLOUDSIM_DATA_DIR": str(config.cloudsim_data_dir),
            "ALIBABA_CLOUD_PROTOCOL": "http",
            "ALIBABA_RAM_ENDPOINT": f"127.0.0.1:{config.cloudsim_port}",
            "ALIBABA_STS_ENDPOINT": f"127.0.0.1:{config.cloudsim_port}",
            "ALIBABA_ACTIONTRAIL_ENDPOINT": f"127.0.0.1:{config.cloudsim_port}",
            "ALIBABA_OOS_ENDPOINT": f"127.0.0.1:{config.cloudsim_port}",
            "ALIBABA_ECS_ENDPOINT": f"127.0.0.1:{config.cloudsim_port}",
            "ALIBABA_CONSOLE_SIGNIN_URL": config.cloudsim_url,
            "NO_PROXY": "127.0.0.1,localhost",
            **keys,
        }
    )
    if not config.merged.get("PORTAL_REQUIRE_MFA"):
        env["PORTAL_REQUIRE_MFA"] = "false"
    # cloudsim implements the federation endpoint, so the demo shows the one-click console.
    if not config.merged.get("PORTAL_CONSOLE_FEDERATION"):
        env["PORTAL_CONSOLE_FEDERATION"] = "true"
    # The demo shows partners' activity a minute after it happens (production: every 5 minutes).
    if not config.merged.get("PORTAL_ACTIVITY_INGEST_INTERVAL_SECONDS"):
        env["PORTAL_ACTIVITY_INGEST_INTERVAL_SECONDS"] = "60"
    return env


# --- Output -------------------------------------------------------------------------------


class Console:
    """Serialises output lines from many threads and prefixes each with its source."""

    COLOURS = {"embedded": "1", "web": "32", "worker": "35", "beat": "36", "cloudsim": "33"}

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        # Re-entrant: the signal handler prints from the main thread, maybe mid-line.
        self.lock = threading.RLock()
        self.colour = self.stream.isatty() and not os.environ.get("NO_COLOR")

    def line(self, source: str, text: str) -> None:
        label = f"{source:>8} |"
        if self.colour:
            label = f"\033[{self.COLOURS.get(source, '34')}m{label}\033[0m"
        with self.lock:
            self.stream.write(f"{label} {text}\n")
            self.stream.flush()

    def block(self, lines: list[str]) -> None:
        with self.lock:
            self.stream.write("\n".join(lines) + "\n")
            self.stream.flush()


# --- Processes ----------------------------------------------------------------------------


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    argv: list[str]
    ready_line: re.Pattern | None = None
    restartable: bool = False
    pump: threading.Thread | None = None
    ready: threading.Event = field(default_factory=threading.Event)
    captured: list[str] = field(default_factory=list)


class Supervisor:
    """Starts children in their own process groups and stops them all together."""

    def __init__(
        self,
        console: Console,
        env: Mapping[str, str],
        *,
        restart_backoff: tuple[float, ...] = RESTART_BACKOFF_SECONDS,
        crash_limit: int = CRASH_LIMIT,
        crash_window: float = CRASH_WINDOW_SECONDS,
    ) -> None:
        self.console = console
        self.env = dict(env)
        self.children: list[Child] = []
        self.stop_requested = threading.Event()
        self.signals_received: list[str] = []
        self.restart_backoff = restart_backoff
        self.crash_limit = crash_limit
        self.crash_window = crash_window
        # Per child name, when it crashed within the window (monotonic seconds).
        self.crashes: dict[str, list[float]] = {}

    # Signals ----------------------------------------------------------------------------
    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, self._on_signal)

    def _on_signal(self, signum: int, frame: object) -> None:
        # Only flags and kill(2) here: printing could re-enter a write the main thread is in.
        self.signals_received.append(signal.Signals(signum).name)
        if len(self.signals_received) > 1:
            self._signal_all(signal.SIGKILL)  # a second Ctrl-C means "now"
        self.stop_requested.set()

    # Starting ---------------------------------------------------------------------------
    def start(
        self,
        name: str,
        argv: list[str],
        *,
        ready_line: re.Pattern | None = None,
        capture: bool = False,
        restartable: bool = False,
    ) -> Child:
        # argv is built here from fixed commands and validated ports, never from input.
        process = subprocess.Popen(  # noqa: S603
            argv,
            cwd=BASE_DIR,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            bufsize=1,
            # Its own process group: the terminal's Ctrl-C reaches only this supervisor,
            # which then stops the children in order, and killpg reaches their helpers too.
            start_new_session=True,
        )
        child = Child(
            name=name,
            process=process,
            argv=argv,
            ready_line=ready_line,
            restartable=restartable,
        )
        child.pump = threading.Thread(
            target=self._pump, args=(child, ready_line, capture), name=f"pump-{name}", daemon=True
        )
        self.children.append(child)
        child.pump.start()
        self.console.line("embedded", f"started {name} (pid {process.pid})")
        return child

    def _pump(self, child: Child, ready_line: re.Pattern | None, capture: bool) -> None:
        assert child.process.stdout is not None
        for raw in child.process.stdout:
            text = raw.rstrip("\n")
            if capture:
                child.captured.append(text)
            else:
                self.console.line(child.name, text)
            if ready_line is not None and ready_line.search(text):
                child.ready.set()

    def run_step(self, name: str, argv: list[str], *, capture: bool = False) -> list[str]:
        """Run a one-shot command to completion; raise if it fails or we are stopped."""
        child = self.start(name, argv, capture=capture)
        while child.process.poll() is None:
            if self.stop_requested.wait(POLL_SECONDS):
                raise StopRequested
        if child.pump is not None:
            child.pump.join(timeout=5)
        self.children.remove(child)
        if child.process.returncode != 0:
            for text in child.captured:
                self.console.line(name, text)
            raise EmbeddedError(
                f"`{' '.join(argv[1:])}` failed with exit status "
                f"{child.process.returncode}; see its output above."
            )
        return child.captured

    # Waiting ----------------------------------------------------------------------------
    def wait_until(self, child: Child, is_ready: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while not is_ready():
            if child.process.poll() is not None:
                raise ChildDied(child)
            if time.monotonic() > deadline:
                raise EmbeddedError(
                    f"{child.name} did not become ready within {READY_TIMEOUT_SECONDS:.0f}s "
                    f"({what}); see its output above."
                )
            if self.stop_requested.wait(POLL_SECONDS):
                raise StopRequested

    def watch(self) -> None:
        """Block until a signal arrives (StopRequested) or a child exits for good (ChildDied).

        A restartable child that exits is started again after a pause that grows with each
        crash; ChildDied comes when it crashed `crash_limit` times within `crash_window`.
        """
        while not self.stop_requested.wait(POLL_SECONDS):
            for child in list(self.children):
                if child.process.poll() is None:
                    continue
                if not child.restartable:
                    raise ChildDied(child)
                self._restart(child)
        raise StopRequested

    def _restart(self, child: Child) -> None:
        now = time.monotonic()
        recent = [t for t in self.crashes.get(child.name, []) if now - t < self.crash_window]
        recent.append(now)
        self.crashes[child.name] = recent
        if len(recent) >= self.crash_limit:
            raise ChildDied(child, crashes=len(recent), window=self.crash_window)
        pause = self.restart_backoff[min(len(recent), len(self.restart_backoff)) - 1]
        self.console.line(
            "embedded",
            f"{child.name} exited unexpectedly (status {child.process.returncode}); starting it "
            f"again in {pause:g}s (crash {len(recent)} of {self.crash_limit} allowed in "
            f"{self.crash_window:g}s)",
        )
        if child.pump is not None:
            child.pump.join(timeout=5)  # its last lines first
        # Its helpers (a pool's processes) go with it; the group may outlive its leader.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(child.process.pid, signal.SIGKILL)
        self.children.remove(child)
        if self.stop_requested.wait(pause):
            raise StopRequested
        self.start(child.name, child.argv, ready_line=child.ready_line, restartable=True)

    # Stopping ---------------------------------------------------------------------------
    def _signal_all(self, signum: int) -> None:
        for child in reversed(self.children):
            with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
                os.killpg(child.process.pid, signum)

    def stop_all(self, grace: float = STOP_GRACE_SECONDS) -> None:
        self._signal_all(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for child in self.children:
            remaining = max(0.0, deadline - time.monotonic())
            try:
                child.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                self.console.line("embedded", f"{child.name} ignored SIGTERM; killing it")
        # Whatever is left in any group (including helpers of exited leaders) is killed.
        self._signal_all(signal.SIGKILL)
        for child in self.children:
            child.process.wait()
            if child.pump is not None:
                child.pump.join(timeout=5)


class StopRequested(Exception):
    """SIGINT, SIGTERM or SIGHUP arrived."""


class ChildDied(Exception):
    def __init__(self, child: Child, *, crashes: int = 1, window: float = 0.0) -> None:
        super().__init__(child.name)
        self.child = child
        self.crashes = crashes
        self.window = window

    def explanation(self) -> str:
        status = self.child.process.returncode
        if self.crashes > 1:
            return (
                f"{self.child.name} crashed {self.crashes} times within {self.window:g}s (last "
                f"exit status {status}); starting it again would not help, so everything stops. "
                "Its output above says why it crashed."
            )
        return f"{self.child.name} exited unexpectedly (status {status}); stopping everything."


# --- The product --------------------------------------------------------------------------


def http_ok(url: str) -> bool:
    # No proxy: these probes only ever go to loopback.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def manage(*args: str) -> list[str]:
    return [sys.executable, MANAGE_PY, *args]


def celery(*args: str) -> list[str]:
    return [sys.executable, "-m", "celery", "-A", "portal", *args]


def gunicorn(config: Config) -> list[str]:
    """The Docker image's web server and settings, on loopback, one process with threads."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--config",
        str(BASE_DIR / "portal" / "gunicorn.conf.py"),
        "--bind",
        f"127.0.0.1:{config.portal_port}",
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        # Stop within the supervisor's grace period rather than gunicorn's 30 s.
        "--graceful-timeout",
        "10",
        "portal.wsgi:application",
    ]


def cloudsim_console_sign_ins(config: Config) -> list[str]:
    """The demo RAM users' console sign-ins, from cloudsim's demo credentials file."""
    path = config.cloudsim_data_dir / "demo-credentials.json"
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        pairs = [
            (f"{user['name']}@{account['alias']}.onaliyun.com", user["password"])
            for account in document["accounts"]
            for user in account.get("users", [])
            if user.get("password")
        ]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EmbeddedError(f"cloudsim's {path} is unreadable: {error}") from error
    width = max((len(name) for name, _ in pairs), default=0)
    return [f"{name.ljust(width)}  {password}" for name, password in pairs]


def cloudsim_operator_url(config: Config) -> str:
    token_file = config.cloudsim_data_dir / "operator-token"
    token = token_file.read_text(encoding="utf-8").strip() if token_file.is_file() else ""
    query = f"?token={urllib.parse.quote(token, safe='')}" if token else ""
    return f"{config.cloudsim_url}/_sim/{query}"


def banner(
    config: Config,
    *,
    seed_output: list[str],
    console_sign_ins: list[str],
    operator_url: str,
    env: Mapping[str, str],
) -> list[str]:
    rule = "=" * 78
    lines = [
        "",
        rule,
        "  Partner Access Portal is running (embedded: SQLite, filesystem broker, cloudsim)",
        "",
        f"  Portal             {config.portal_url}",
        f"  Portal mailbox     {config.portal_url}dev/mail/   (emails the portal sent)",
        f"  cloudsim console   {config.cloudsim_url}/   (Alibaba Cloud console stand-in)",
        f"  cloudsim operator  {operator_url}",
        f"  Data directory     {config.data_dir}   (delete it to start afresh)",
        "",
    ]
    lines += [f"  {text}" if text else "" for text in seed_output]
    if console_sign_ins:
        lines += ["", "  cloudsim console sign-ins (RAM users of company-b, for switching role):"]
        lines += [f"    {entry}" for entry in console_sign_ins]
    # pap, the command line: standard library only, so it runs from the checkout.
    lines += [
        "",
        "  From the terminal (as a company-b staff member; see README, From the terminal):",
        f"    PYTHONPATH=cli {sys.executable} -m pap login --portal {config.portal_url}",
        f"    PYTHONPATH=cli {sys.executable} -m pap access",
        f"  API docs           {config.portal_url}api/v1/docs/",
    ]
    if env.get("PORTAL_REQUIRE_MFA", "").lower() in {"false", "0", "no", "off"}:
        lines += ["", "  MFA is not required in this demo (PORTAL_REQUIRE_MFA=false)."]
    lines += ["", "  Press Ctrl-C to stop everything.", rule, ""]
    return lines


def start_product(supervisor: Supervisor, config: Config) -> None:
    supervisor.console.line("embedded", f"data directory {config.data_dir}")
    supervisor.run_step("migrate", manage("migrate", "--noinput"))
    supervisor.run_step("static", manage("collectstatic", "--noinput"), capture=True)

    cloudsim = supervisor.start(
        "cloudsim",
        [
            sys.executable,
            "-m",
            "cloudsim",
            "--host",
            "127.0.0.1",
            "--port",
            str(config.cloudsim_port),
            "--data",
            str(config.cloudsim_data_dir),
            "--demo",
            "--demo-activity",
        ],
    )
    noop = f"{config.cloudsim_url}/_sim/noop"
    supervisor.wait_until(cloudsim, lambda: http_ok(noop), f"GET {noop}")

    seed_output = supervisor.run_step("seed", manage("seed_demo"), capture=True)

    worker = supervisor.start(
        "worker",
        celery(
            "worker",
            "--pool",
            "threads",
            "--concurrency",
            "4",
            "--hostname",
            "worker@%h",
            "--without-gossip",
            "--without-mingle",
            "--loglevel",
            "INFO",
        ),
        ready_line=WORKER_READY,
        restartable=True,
    )
    beat = supervisor.start(
        "beat", celery("beat", "--loglevel", "INFO"), ready_line=BEAT_READY, restartable=True
    )
    web = supervisor.start("web", gunicorn(config))
    healthz = f"{config.portal_url}healthz"
    supervisor.wait_until(web, lambda: http_ok(healthz), f"GET {healthz}")
    supervisor.wait_until(worker, worker.ready.is_set, "the worker's 'ready.' line")
    supervisor.wait_until(beat, beat.ready.is_set, "beat's 'Starting...' line")
    supervisor.console.block(
        banner(
            config,
            seed_output=seed_output,
            console_sign_ins=cloudsim_console_sign_ins(config),
            operator_url=cloudsim_operator_url(config),
            env=supervisor.env,
        )
    )


def main(environ: Mapping[str, str] | None = None) -> int:
    console = Console()
    environ = os.environ if environ is None else environ
    try:
        config = load_config(environ)
        check_ports(config)
        prepare_data_dir(config)
        keys = ensure_secrets(config)
    except EmbeddedError as error:
        console.line("embedded", f"error: {error}")
        return 2

    supervisor = Supervisor(console, child_environment(config, environ, keys))
    supervisor.install_signal_handlers()
    status = 0
    try:
        start_product(supervisor, config)
        supervisor.watch()
    except StopRequested:
        console.line("embedded", f"{supervisor.signals_received[0]}: stopping everything")
    except ChildDied as death:
        console.line("embedded", death.explanation())
        status = 1
    except EmbeddedError as error:
        console.line("embedded", f"error: {error}")
        status = 1
    finally:
        supervisor.stop_all()
    console.line("embedded", "stopped." if status == 0 else "stopped after a failure.")
    return status


if __name__ == "__main__":
    sys.exit(main())
