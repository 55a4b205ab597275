"""``python -m cloudsim``: run the emulator, or manage accounts in a data directory.

    python -m cloudsim --host 127.0.0.1 --port 9100 --data DIR [--demo] [--operator-token T]
                       [--fault Action:kind[:prob[:arg]]]... [--latency-ms MS|MIN-MAX]
                       [--seed N] [--log-level LEVEL] [--tls [--tls-port PORT]]
    python -m cloudsim account create --data DIR --uid U --alias A
    python -m cloudsim user create --data DIR --uid U --name N [--password P]
    python -m cloudsim access-key create --data DIR --uid U [--user N]

The management commands print JSON on stdout (exit 0) or ``{"error": ...}`` on stderr (exit 2).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

from cloudsim import admin, trail_seed
from cloudsim.calllog import CallLog
from cloudsim.faults import FaultSet, FaultSpecError, parse_latency, parse_spec, parse_specs
from cloudsim.store import Store, iso

MANAGEMENT_COMMANDS = ("account", "user", "access-key")


def _serve_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m cloudsim",
        description="A local Alibaba Cloud (RAM, STS, ECS, ActionTrail, OOS, console) "
        "for the official SDKs.",
        epilog="Management: python -m cloudsim {account,user,access-key} create --help",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100, help="0 picks a free port")
    parser.add_argument("--data", required=True, help="directory holding the state")
    parser.add_argument("--demo", action="store_true", help="seed the demo accounts when empty")
    parser.add_argument(
        "--demo-activity",
        action="store_true",
        help="with --demo, on an empty store: also seed the demo partner's ActionTrail calls",
    )
    parser.add_argument(
        "--operator-token",
        default=None,
        help="token for /_sim (default: env CLOUDSIM_OPERATOR_TOKEN, the saved "
        "DIR/operator-token, or a new random one)",
    )
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="Action:kind[:probability[:arg]] (repeatable)",
    )
    parser.add_argument("--latency-ms", default=None, help="added to every call: MS or MIN-MAX")
    parser.add_argument(
        "--seed", type=int, default=None, help="fault RNG seed (default: env CLOUDSIM_SEED or 0)"
    )
    parser.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--tls",
        action="store_true",
        help="also listen with HTTPS (self-signed certificate generated into DIR)",
    )
    parser.add_argument(
        "--tls-port", type=int, default=0, help="port of the HTTPS listener (default: a free one)"
    )
    return parser


def _management_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m cloudsim")
    entities = parser.add_subparsers(dest="entity", required=True)

    account = entities.add_parser("account").add_subparsers(dest="verb", required=True)
    create = account.add_parser("create", help="create an account with a root AccessKey")
    create.add_argument("--data", required=True)
    create.add_argument("--uid", required=True)
    create.add_argument("--alias", required=True)

    user = entities.add_parser("user").add_subparsers(dest="verb", required=True)
    create = user.add_parser("create", help="create a RAM user")
    create.add_argument("--data", required=True)
    create.add_argument("--uid", required=True)
    create.add_argument("--name", required=True)
    create.add_argument("--password", default=None, help="console password (enables sign-in)")

    key = entities.add_parser("access-key").add_subparsers(dest="verb", required=True)
    create = key.add_parser("create", help="create an AccessKey for the root or a RAM user")
    create.add_argument("--data", required=True)
    create.add_argument("--uid", required=True)
    create.add_argument("--user", default=None)
    return parser


def _manage(argv: list[str]) -> int:
    args = _management_parser().parse_args(argv)
    store = Store(args.data)
    try:
        if args.entity == "account":
            result = admin.account_create(store, uid=args.uid, alias=args.alias)
        elif args.entity == "user":
            result = admin.user_create(store, uid=args.uid, name=args.name, password=args.password)
        else:
            result = admin.access_key_create(store, uid=args.uid, user=args.user)
    except admin.AdminError as exc:
        print(json.dumps({"error": str(exc)}), file=sys.stderr)
        return 2
    finally:
        store.close()
    print(json.dumps(result, indent=2))
    return 0


def _faults_from(args: argparse.Namespace) -> FaultSet:
    seed = args.seed
    if seed is None:
        seed = int(os.environ.get("CLOUDSIM_SEED", "0") or 0)
    rules = parse_specs(os.environ.get("CLOUDSIM_FAULTS", ""))
    rules += [parse_spec(spec) for spec in args.fault]
    if args.latency_ms:
        parse_latency(args.latency_ms)
    return FaultSet(seed=seed, rules=rules, latency_ms=args.latency_ms)


def _serve(argv: list[str]) -> int:
    parser = _serve_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper()),
        format="%(asctime)s cloudsim %(levelname)s %(message)s",
    )
    try:
        faults = _faults_from(args)
    except (FaultSpecError, ValueError) as exc:
        parser.error(str(exc))
    data_dir = Path(args.data)
    store = Store(data_dir)
    admin.sync_system_policies(store)
    with store.write() as tx:
        # Sessions that expired a day ago can never be used again.
        tx.sts_sessions_purge_expired(older_than=time.time() - 86_400)
    token = admin.load_operator_token(data_dir, args.operator_token)
    call_log = CallLog(data_dir)

    from cloudsim.server import make_server

    shared = {"store": store, "call_log": call_log, "faults": faults, "operator_token": token}
    server = make_server(host=args.host, port=args.port, **shared)
    endpoint = server.url
    listening: dict[str, str] = {"event": "listening", "endpoint": endpoint}
    secure = None
    if args.tls:
        from cloudsim import tls

        certificate, key = tls.ensure_certificate(data_dir, args.host)
        secure = make_server(
            host=args.host,
            port=args.tls_port,
            tls_context=tls.server_context(certificate, key),
            nonces=server.nonces,
            **shared,
        )
        listening.update(tls_endpoint=secure.url, tls_certificate=str(certificate.resolve()))
        threading.Thread(
            target=secure.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
        ).start()
    if args.demo:
        fresh = store.is_empty()
        admin.seed_demo(store, data_dir=data_dir, endpoint=endpoint)
        if fresh and args.demo_activity:
            with store.read() as tx:
                instances = {
                    i.instance_name: i.instance_id
                    for i in tx.ecs_instance_list(trail_seed.DEMO_OWNER)
                }
            call_log.record_many(trail_seed.demo_calls(now=time.time(), instances=instances))

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    # One machine-readable line so a parent process knows where we listen.
    print(json.dumps({**listening, "time": iso()}), flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if secure is not None:
            secure.shutdown()
            secure.server_close()
        server.server_close()
        call_log.close()
        store.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in MANAGEMENT_COMMANDS:
        return _manage(argv)
    return _serve(argv)


if __name__ == "__main__":
    sys.exit(main())
