"""pap's commands. Every failure is one line on stderr and a distinct exit status
(`pap.errors`); with no usable access the line says why and where to request it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.parse
import webbrowser
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pap import formats
from pap.client import Portal
from pap.errors import FAILED, NO_ACCESS, OK, USAGE, PapError, describe, one_line
from pap.store import (
    Config,
    UnsafeFile,
    cache_dir,
    cache_path,
    read_json,
    read_private_json,
    write_private,
)

EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
CACHE_MARGIN = dt.timedelta(minutes=5)
# What store.cache_path names a file: the access's id, then the duration asked for.
CACHE_FILE_NAME = re.compile(r"credentials-[0-9a-f-]{36}-(longest|[0-9]+s)\.json")
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
_DURATION = re.compile(r"\A(?P<number>[0-9]{1,6})(?P<unit>[smhd]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
# Delegation statuses whose end can still move (the portal decides; this only narrows a name).
EXTENDABLE_STATUSES = ("scheduled", "approved", "applying", "active")


def parse_duration(text: str) -> int:
    match = _DURATION.match((text or "").strip().lower())
    if not match:
        raise PapError(f"{text!r} is not a duration like 900s, 45m, 1h or 8h.", status=USAGE)
    return int(match["number"]) * _UNITS[match["unit"]]


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _portal(config: Config, override: str | None = None) -> Portal:
    return Portal(override or os.environ.get("PAP_PORTAL") or config.portal, config.token)


# --- login -----------------------------------------------------------------------------------


def cmd_login(args: argparse.Namespace, config: Config) -> int:
    portal = Portal(args.portal or os.environ.get("PAP_PORTAL") or config.portal)
    codes = portal.call("POST", "/api/v1/device/code/", {"client_name": "pap"}, auth=False)
    sys.stderr.write(
        f"To sign in, open {codes['verification_uri']}\nand enter the code {codes['user_code']}"
        f" (valid {codes['expires_in'] // 60} minutes).\n"
    )
    sys.stderr.flush()
    if not args.no_browser:
        webbrowser.open(codes["verification_uri"])
    interval = max(int(codes.get("interval", 5)), 1)
    deadline = time.monotonic() + int(codes["expires_in"])
    while time.monotonic() < deadline:
        time.sleep(interval)
        answer = portal.call(
            "POST",
            "/api/v1/device/token/",
            {"grant_type": DEVICE_GRANT, "device_code": codes["device_code"]},
            auth=False,
        )
        error = answer.get("_oauth_error") if isinstance(answer, dict) else None
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += 5
            continue
        if error:
            raise PapError(
                f"Sign-in failed: {answer.get('error_description') or error}.", status=FAILED
            )
        where = config.save(portal=portal.base_url, token=answer["access_token"])
        _out(
            f"Signed in to {portal.base_url} for {answer['organisation']} "
            f"(scopes: {answer['scope']}); the token is kept in {where}."
        )
        return OK
    raise PapError("The code expired before it was confirmed; run pap login again.")


def cmd_logout(args: argparse.Namespace, config: Config) -> int:
    config.forget()
    _out(
        "Signed out on this computer and deleted cached credentials (the token still exists "
        "in the portal until revoked)."
    )
    return OK


# --- access and requests ---------------------------------------------------------------------


def _access(portal: Portal) -> list[dict[str, Any]]:
    return list(portal.call("GET", "/api/v1/access/"))


def _full_name(owner: str, account_uid: str, role_name: str) -> str:
    """`owner/account/role`: the one name that tells apart the accounts a role name is
    granted in (a fleet's); `owner/role` and the role name alone name them all."""
    return f"{owner}/{account_uid}/{role_name}" if account_uid else f"{owner}/{role_name}"


# An item's (owner, account UID, role name), from an access or a delegation of the API.
Names = Callable[[dict[str, Any]], tuple[str, str, str]]


def _named(items: list[dict[str, Any]], wanted: str, names: Names) -> list[dict[str, Any]]:
    """The items `wanted` names: by `owner/account/role` or `owner/role`, else by role name."""
    by_name = []
    for item in items:
        owner, account_uid, role_name = names(item)
        if wanted in (_full_name(owner, account_uid, role_name), f"{owner}/{role_name}"):
            by_name.append(item)
    return by_name or [item for item in items if names(item)[2] == wanted]


def _one_of(found: list[dict[str, Any]], wanted: str, what: str, names: Names) -> None:
    """Refuse a name that names several: say the name of each, never pick one of them."""
    if len(found) > 1:
        choices = ", ".join(sorted(_full_name(*names(item)) for item in found))
        raise PapError(
            f"{wanted!r} names several {what} ({choices}); use one of these names or the id.",
            status=USAGE,
        )


def _access_names(item: dict[str, Any]) -> tuple[str, str, str]:
    return item["owner"], item.get("account_uid", ""), item["role_name"]


def _delegation_names(item: dict[str, Any]) -> tuple[str, str, str]:
    return item["owner"]["slug"], item.get("account_uid", ""), item["catalog_role"]["role_name"]


def _resolve(portal: Portal, wanted: str) -> dict[str, Any]:
    """The access `wanted` names: its delegation id, `owner/account/role`, `owner/role`, or a
    role name of one."""
    items = _access(portal)
    for item in items:
        if wanted == item["delegation"]:
            return item
    found = _named(items, wanted, _access_names)
    _one_of(found, wanted, "accesses", _access_names)
    if found:
        return found[0]
    if re.fullmatch(r"[0-9a-f-]{36}", wanted):
        # Not in my usable list: the portal says why (ended, not assigned, none).
        portal.call("GET", f"/api/v1/access/{wanted}/")
    raise PapError(
        f"You have no access named {wanted!r}.",
        status=NO_ACCESS,
        hint=portal.url("/delegations/my-access/"),
    )


def _usable(portal: Portal, item: dict[str, Any]) -> dict[str, Any]:
    if not item["usable"]:
        # Ask for it by id: the portal's answer says why (expired, revoked, not assigned).
        portal.call("GET", f"/api/v1/access/{item['delegation']}/")
        raise PapError(f"{_full_name(*_access_names(item))} is not usable now.", status=NO_ACCESS)
    return item


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        _out("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def _every_page(portal: Portal, path: str) -> list[dict[str, Any]]:
    """The results of a paged list, every page of them (the portal answers at most 200 a
    page; an organisation may have more)."""
    found: list[dict[str, Any]] = []
    following: str | None = path
    while following:
        page = portal.call("GET", following)
        found += page["results"]
        following = portal.path_of(page["next"]) if page.get("next") else None
    return found


def _organisation_access(portal: Portal, args: argparse.Namespace, *, partner_admin: bool) -> int:
    """Admins and auditors: their organisation's active delegations; a partner's admins also
    see which of their staff is assigned to which of them."""
    items = _every_page(portal, "/api/v1/delegations/?status=active&limit=200")
    assignments = _every_page(portal, "/api/v1/assignments/?limit=200") if partner_admin else None
    if args.json:
        if assignments is None:
            _out(json.dumps(items, indent=2))
        else:
            _out(json.dumps({"delegations": items, "assignments": assignments}, indent=2))
        return OK
    if not items:
        _out("Your organisation has no active delegations.")
        return NO_ACCESS
    rows = [("DELEGATION", "OWNER/ROLE", "ACCOUNT", "PARTNER", "ENDS")]
    rows += [
        (
            item["id"],
            f"{item['owner']['slug']}/{item['catalog_role']['role_name']}",
            item.get("account_uid", ""),
            item["partner"]["slug"],
            item["ends_at"] or "-",
        )
        for item in items
    ]
    _print_table(rows)
    if assignments is not None:
        _out("")
        if not assignments:
            _out("None of your staff is assigned yet.")
        else:
            staff_rows = [("STAFF", "OWNER/ROLE", "ACCOUNT", "DELEGATION", "ASSIGNED")]
            staff_rows += [
                (
                    item["user"],
                    f"{item['owner']}/{item['role_name']}",
                    item.get("account_uid", ""),
                    item["delegation"],
                    item["assigned_at"][:16].replace("T", " "),
                )
                for item in assignments
            ]
            _print_table(staff_rows)
    return OK


def cmd_access(args: argparse.Namespace, config: Config) -> int:
    portal = _portal(config)
    me = portal.call("GET", "/api/v1/me/")
    if me.get("role") != "staff":
        partner_admin = me.get("role") == "admin" and me["organisation"]["kind"] == "partner"
        return _organisation_access(portal, args, partner_admin=partner_admin)
    items = _access(portal)
    if args.json:
        _out(json.dumps(items, indent=2))
        return OK
    if not items:
        _out("You have no access assigned. Ask your organisation's admin.")
        return NO_ACCESS
    rows = [("DELEGATION", "OWNER/ROLE", "ACCOUNT", "STATUS", "ENDS")]
    for item in items:
        rows.append(
            (
                item["delegation"],
                f"{item['owner']}/{item['role_name']}",
                item.get("account_uid", ""),
                item["status"] if item["usable"] else f"{item['status']} (not usable)",
                item["ends_at"] or "-",
            )
        )
    _print_table(rows)
    return OK


def list_roles(portal: Portal, args: argparse.Namespace) -> int:
    """The roles `args.owner` grants, each with the accounts it is offered in (home first)."""
    owner = urllib.parse.quote(args.owner, safe="")
    roles = _every_page(portal, f"/api/v1/owners/{owner}/catalog-roles/?limit=200")
    if args.json:
        _out(json.dumps(roles, indent=2))
        return OK
    if not roles:
        _out(f"{args.owner} has no roles to grant at the moment.")
        return OK
    rows = [("ID", "ROLE", "ACCOUNTS", "POLICIES")]
    rows += [
        (
            role["id"],
            role["role_name"],
            ",".join(role["offered_in_account_uids"]),
            ",".join(role["policies"]) or "-",
        )
        for role in roles
    ]
    _print_table(rows)
    return OK


def cmd_roles(args: argparse.Namespace, config: Config) -> int:
    return list_roles(_portal(config), args)


def cmd_request(args: argparse.Namespace, config: Config) -> int:
    portal = _portal(config)
    body: dict[str, Any] = {"catalog_role": args.role, "reason": args.reason}
    if args.code:
        body["partner_link_code"] = args.code
    else:
        body["owner"] = args.owner
    if args.account:
        body["account_uid"] = args.account
    if args.duration:
        ends = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=parse_duration(args.duration))
        body["ends_at"] = ends.strftime(EXPIRATION_FORMAT)
    delegation = portal.call("POST", "/api/v1/delegations/", body)
    # Said only when chosen: without --account it is the role's home, as it always was.
    where = f" in the account {delegation['account_uid']}" if args.account else ""
    _out(
        f"Requested {delegation['catalog_role']['role_name']} from {delegation['owner']['name']}"
        f"{where}: {portal.url('/delegations/' + delegation['id'] + '/')}"
    )
    return OK


def _parse_until(text: str) -> str:
    """An ISO 8601 time for the API; without a zone it is UTC, as on the portal's page."""
    try:
        when = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise PapError(
            f"{text!r} is not an ISO time like 2026-12-24T18:00Z or 2026-12-24T18:00+01:00.",
            status=USAGE,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.isoformat()


def _delegation_id(portal: Portal, wanted: str) -> str:
    """The organisation's delegation `wanted` names: its id, `owner/account/role`,
    `owner/role` or a role name (among delegations that are granted or about to be)."""
    if re.fullmatch(r"[0-9a-fA-F-]{36}", wanted):
        return wanted
    granted = _named(
        [
            item
            for item in _every_page(portal, "/api/v1/delegations/?limit=200")
            if item["status"] in EXTENDABLE_STATUSES
        ],
        wanted,
        _delegation_names,
    )
    _one_of(granted, wanted, "delegations", _delegation_names)
    if not granted:
        raise PapError(
            f"Your organisation has no granted delegation named {wanted!r}.", status=NO_ACCESS
        )
    return str(granted[0]["id"])


def cmd_extend(args: argparse.Namespace, config: Config) -> int:
    portal = _portal(config)
    body = {"new_ends_at": _parse_until(args.until), "reason": args.reason}
    delegation_id = _delegation_id(portal, args.delegation)
    extension = portal.call("POST", f"/api/v1/delegations/{delegation_id}/extensions/", body)
    _out(
        f"Asked to extend until {extension['new_ends_at']} (now {extension['previous_ends_at']}); "
        "the owner decides, and access ends as planned unless approved: "
        f"{portal.url('/delegations/' + delegation_id + '/')}"
    )
    return OK


# --- credentials -----------------------------------------------------------------------------


def _cached(delegation_id: str, duration_seconds: int | None) -> dict[str, Any] | None:
    path = cache_path(delegation_id, duration_seconds)
    try:
        data = read_private_json(path)
    except UnsafeFile as unsafe:
        # Someone else may have read these, or put them there: new ones replace the file.
        sys.stderr.write(f"pap: ignoring {path}: it {one_line(unsafe.problem)}.\n")
        return None
    if not data:
        return None
    expires = _expires_at(data)
    return data if expires and expires - CACHE_MARGIN > dt.datetime.now(dt.UTC) else None


def _expires_at(credentials: dict[str, Any]) -> dt.datetime | None:
    try:
        expiration = dt.datetime.strptime(credentials["expiration"], EXPIRATION_FORMAT)
    except (KeyError, TypeError, ValueError):
        return None
    return expiration.replace(tzinfo=dt.UTC)


def _prune_cache() -> None:
    """Delete cached credentials that can no longer answer: expired ones, unreadable ones, and
    files an older pap kept per access alone (they would answer any duration). Keys stay on
    disk no longer than they are of use."""
    now = dt.datetime.now(dt.UTC)
    for path in cache_dir().glob("credentials-*.json"):
        if not CACHE_FILE_NAME.fullmatch(path.name):
            path.unlink(missing_ok=True)
            continue
        try:
            data = read_private_json(path)
        except UnsafeFile:
            continue  # not ours to delete: _cached says so when it is asked for
        except PapError:
            data = None
        expires = _expires_at(data) if data else None
        if expires is None or expires <= now:
            path.unlink(missing_ok=True)


def credentials_for(
    config: Config, wanted: str, *, duration: str | None, cache: bool
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The access item and fresh credentials for it (with `cache`, from the 0600 file kept for
    this access and this duration, until five minutes before they expire)."""
    seconds = parse_duration(duration) if duration else None
    portal = _portal(config)
    item = _usable(portal, _resolve(portal, wanted))
    delegation_id = item["delegation"]
    if cache:
        hit = _cached(delegation_id, seconds)
        if hit is not None:
            return item, hit
    body = {} if seconds is None else {"duration_seconds": seconds}
    credentials = portal.call("POST", f"/api/v1/access/{delegation_id}/credentials/", body)
    if cache:
        write_private(cache_path(delegation_id, seconds), json.dumps(credentials))
        _prune_cache()
    return item, credentials


def cmd_credentials(args: argparse.Namespace, config: Config) -> int:
    _item, credentials = credentials_for(
        config, args.delegation, duration=args.duration, cache=args.cache
    )
    _out(formats.render(credentials, args.format))
    return OK


def cmd_exec(args: argparse.Namespace, config: Config) -> int:
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        raise PapError("Give the command to run after --.", status=USAGE)
    _item, credentials = credentials_for(
        config, args.delegation, duration=args.duration, cache=args.cache
    )
    env = {**os.environ, **formats.env_vars(credentials)}
    if credentials.get("region_id"):
        env.setdefault("ALIBABA_CLOUD_REGION_ID", credentials["region_id"])
    try:
        return subprocess.run(command, env=env, check=False).returncode  # noqa: S603
    except FileNotFoundError:
        raise PapError(f"{command[0]}: command not found.", status=FAILED) from None


def cmd_console(args: argparse.Namespace, config: Config) -> int:
    """The one-click console sign-in when the portal offers it (it does the federation
    exchange; pap gets a single-use URL valid about 30 s), else the switch-role link."""
    portal = _portal(config)
    item = _usable(portal, _resolve(portal, args.delegation))
    answer = portal.call("POST", f"/api/v1/access/{item['delegation']}/console/", {})
    url = answer["url"]
    name = _full_name(*_access_names(item))
    if answer["mode"] != "federation":
        _out(url)
        if not args.print_only:
            webbrowser.open(url)
        return OK
    # A sign-in URL is a secret while it lives: printed only when asked for.
    if args.print_only:
        _out(url)
        sys.stderr.write(f"pap: single use, valid {answer['expires_in']} seconds.\n")
        return OK
    if not webbrowser.open(url):
        raise PapError(
            "No browser could be started here; run pap console --print and open the URL "
            f"within {answer['expires_in']} seconds.",
            status=FAILED,
        )
    _out(f"Opened the console as {name} in your browser.")
    return OK


# --- the aliyun CLI profile ------------------------------------------------------------------


def _pap_command() -> str:
    """How the aliyun CLI should run this pap: the console script when installed, else the
    module through this Python."""
    installed = shutil.which("pap")
    if installed and Path(sys.argv[0]).name == "pap":
        return shlex.quote(installed)
    return f"{shlex.quote(sys.executable)} -m pap"


def cmd_configure_aliyun(args: argparse.Namespace, config: Config) -> int:
    portal = _portal(config)
    item = _usable(portal, _resolve(portal, args.delegation))
    path = Path(args.aliyun_config).expanduser()
    existing = read_json(path) or {"current": args.profile, "profiles": [], "meta_path": ""}
    profiles = existing.get("profiles")
    if not isinstance(profiles, list):
        raise PapError(f"{path} has no list of profiles; fix it first.", status=FAILED)
    command = f"{_pap_command()} credentials {item['delegation']} --format aliyun-external --cache"
    profile = {
        "name": args.profile,
        "mode": "External",
        "process_command": command,
        "region_id": args.region,
        "output_format": "json",
        "language": "en",
    }
    kept = [p for p in profiles if not (isinstance(p, dict) and p.get("name") == args.profile)]
    existing["profiles"] = [*kept, profile]
    existing.setdefault("current", args.profile)
    if path.exists():
        backup = path.with_name(path.name + ".bak")
        write_private(backup, path.read_text(encoding="utf-8"))
    write_private(path, json.dumps(existing, indent=2) + "\n")
    _out(
        f"Profile {args.profile!r} in {path} now gets credentials for "
        f"{_full_name(*_access_names(item))} from pap. Try: aliyun --profile {args.profile} "
        "ecs DescribeRegions"
    )
    return OK


# --- the command line ------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pap", description="The Partner Access Portal from the terminal."
    )
    sub = parser.add_subparsers(dest="command_name", required=True)

    login = sub.add_parser("login", help="sign in through the browser (device flow)")
    login.add_argument("--portal", help="the portal's URL, e.g. https://access.example.com")
    login.add_argument("--no-browser", action="store_true", help="only print the URL")
    login.set_defaults(run=cmd_login)

    sub.add_parser("logout", help="forget the sign-in on this computer").set_defaults(
        run=cmd_logout
    )

    access = sub.add_parser("access", help="my active delegations and assignments")
    access.add_argument("--json", action="store_true")
    access.set_defaults(run=cmd_access)

    roles = sub.add_parser(
        "roles", help="the roles an owner grants and the accounts of each (partner admins)"
    )
    roles.add_argument(
        "--owner",
        required=True,
        help="an owner your organisation requested from with a code before",
    )
    roles.add_argument("--json", action="store_true")
    roles.set_defaults(run=cmd_roles)

    request = sub.add_parser("request", help="request access (partner admins)")
    owner = request.add_mutually_exclusive_group(required=True)
    owner.add_argument("--code", help="the owner's partner link code")
    owner.add_argument("--owner", help="an owner your organisation reached with a code before")
    request.add_argument("--role", required=True, help="the catalogue role's name or id")
    request.add_argument(
        "--account",
        metavar="UID",
        help="which of the owner's accounts, by UID (default: the role's home account); the "
        "role must be offered there, and a role name two accounts hold means the one offered "
        "in this one",
    )
    request.add_argument("--reason", required=True)
    request.add_argument("--for", dest="duration", help="how long, e.g. 8h or 30d")
    request.set_defaults(run=cmd_request)

    extend = sub.add_parser("extend", help="ask the owner for more time (partner admins)")
    extend.add_argument(
        "delegation", help="delegation id, owner/account/role, owner/role, or role name"
    )
    extend.add_argument(
        "--until", required=True, help="the new end, ISO 8601 (UTC unless a zone is given)"
    )
    extend.add_argument("--reason", required=True)
    extend.set_defaults(run=cmd_extend)

    def access_argument(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "delegation", help="delegation id, owner/account/role, owner/role, or role name"
        )

    credentials = sub.add_parser("credentials", help="temporary STS credentials")
    access_argument(credentials)
    credentials.add_argument("--duration", help="e.g. 15m or 1h (default: the longest allowed)")
    credentials.add_argument("--format", choices=formats.FORMATS, default="env")
    credentials.add_argument(
        "--cache", action="store_true", help="reuse them (0600 file) until 5 minutes before expiry"
    )
    credentials.set_defaults(run=cmd_credentials)

    configure = sub.add_parser("configure-aliyun", help="an aliyun CLI profile in External mode")
    access_argument(configure)
    configure.add_argument("--profile", required=True)
    configure.add_argument("--region", default="cn-hangzhou")
    configure.add_argument(
        "--aliyun-config",
        default=os.environ.get("PAP_ALIYUN_CONFIG", "~/.aliyun/config.json"),
        help="the aliyun CLI's config file",
    )
    configure.set_defaults(run=cmd_configure_aliyun)

    run = sub.add_parser("exec", help="run a command with ALIBABA_CLOUD_* credentials set")
    access_argument(run)
    run.add_argument("--duration")
    run.add_argument("--cache", action="store_true")
    run.add_argument("command", nargs=argparse.REMAINDER)
    run.set_defaults(run=cmd_exec)

    console = sub.add_parser("console", help="open the console as this role")
    access_argument(console)
    console.add_argument(
        "--print",
        dest="print_only",
        action="store_true",
        help="print the URL instead of opening it (a one-click URL works once, for 30 s)",
    )
    console.set_defaults(run=cmd_console)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args, Config()))
    except PapError as error:
        sys.stderr.write(f"pap: {one_line(error.message)}\n")
        if error.hint:
            sys.stderr.write(f"pap: request access at {one_line(error.hint)}\n")
        return error.status
    except KeyboardInterrupt:
        sys.stderr.write("pap: interrupted\n")
        return 130
    except Exception as error:
        # An answer of another shape than the portal's, or a bug: still one line and a status.
        if os.environ.get("PAP_DEBUG"):
            raise
        sys.stderr.write(
            f"pap: unexpected error ({one_line(describe(error))}); PAP_DEBUG=1 shows where.\n"
        )
        return FAILED
