"""How the auditor's pages scale: the same pages at 1,000 and at 1,000,000 audit events.

    python benchmarks/audit_pages.py                      # SQLite (temporary files)
    DATABASE_URL=postgres://... python benchmarks/audit_pages.py
    python benchmarks/audit_pages.py --events 100000 --requests 20     # a quicker run

One run, in two databases of the benchmark's own (created and dropped here, never the
portal's: temporary SQLite files, or `<DATABASE_URL's name>_audit_bench_small/_large`):

1. each gets the same world: company A (owner) with an auditor, partner company B, one
   delegation with its whole history (request, approval with MFA, cloud calls, staff
   assignment, credentials, revocation: the timeline measured), 200 other delegations, other
   tenants; then everyday traffic (`noise_event`: A's cloud calls and delegation events with B
   and other partners, A's and B's member events, other owners' events) up to `--small`
   events in one and `--events` in the other;
2. the pages are timed through Django's test client, with every middleware, the session and
   template rendering: the list, a deep keyset page, filters (partner + action, outcome, a
   time window, a delegation, a person) and the timeline. Requests alternate between the two
   databases, page by page, so that load from other processes on the machine falls on both
   sizes alike; three warm-up rounds are not counted;
3. p50/p95 per page and size, their ratio (target ≤ 3), and the SQL part of each page are
   printed. With `--verify`, the whole large chain is verified and timed.

Events are written the fast way, and the chain stays valid: each row's hash is computed with
`audit.chain` exactly as `audit_record` does (canonical JSON, SHA-256 over the previous hash),
then rows are inserted in bulk with `executemany`, 10,000 at a time (the append-only trigger
allows INSERT), and the chain head is moved once at the end (`--verify` proves the result
verifies). `audit_record` itself is not used: it takes the chain lock and writes one row per
transaction. Cloud-call rows exist only for the measured delegation; other cloud-call events
name ids of calls that are not stored, which no measured page reads.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
# The embedded defaults (no production secrets needed); timing runs with DEBUG off below.
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402

BATCH = 10_000
SPACING = dt.timedelta(seconds=30)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000, help="large log size")
    parser.add_argument("--small", type=int, default=1_000, help="small log size")
    parser.add_argument("--requests", type=int, default=30, help="timed requests per page")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--verify", action="store_true", help="also time a full verification")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    return parser.parse_args()


# --- the database ----------------------------------------------------------------------------


@dataclass
class Database:
    """One benchmark database (a temporary SQLite file, or a PostgreSQL database created
    next to DATABASE_URL's), migrated, and the world seeded in it."""

    name: str
    world: Any = None
    size: int = 0


def create_database(suffix: str, directory: Path) -> Database:
    database = connection.settings_dict
    if connection.vendor == "sqlite":
        database["TEST"]["NAME"] = str(directory / f"audit-bench-{suffix}.sqlite3")
    else:
        database["TEST"]["NAME"] = f"{ORIGINAL_NAME}_audit_bench_{suffix}"
    name = connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    return Database(name=name)


def use(database: Database) -> None:
    """Point the default connection at `database` (a new connection on the next query)."""
    connection.close()
    connection.settings_dict["NAME"] = database.name


def drop(database: Database) -> None:
    connection.close()
    connection.creation._destroy_test_db(database.name, verbosity=0)


ORIGINAL_NAME = settings.DATABASES["default"]["NAME"]


# --- the world -------------------------------------------------------------------------------


@dataclass
class World:
    owner: Any
    partner: Any
    auditor: Any
    owner_admin: Any
    partner_admin: Any
    staff: Any
    delegation: Any
    other_delegations: list[Any]
    partners: list[Any]
    other_owners: list[Any]
    owner_people: list[Any]
    start: dt.datetime
    call_ids: list[int] = field(default_factory=list)


def build_world(rng: random.Random) -> World:
    from accounts.models import Membership, Organisation, User
    from delegations.models import (
        CatalogRole,
        CloudAccount,
        CloudCall,
        Delegation,
        ManagedRole,
        PartnerAllowance,
    )

    def organisation(name: str, kind: str, uid: str) -> Organisation:
        return Organisation.objects.create(
            name=name, slug=name.lower().replace(" ", "-"), kind=kind, account_uid=uid
        )

    def person(email: str, org: Organisation, role: str) -> User:
        first = email.partition("@")[0]
        user = User.objects.create_user(email, None, first_name=first.title(), last_name="Bench")
        Membership.objects.create(user=user, organisation=org, role=role)
        return user

    owner = organisation("Company A", "owner", "11223344")
    partner = organisation("Company B", "partner", "12345678")
    partners = [partner] + [
        organisation(f"Partner {n}", "partner", str(20000000 + n)) for n in range(1, 6)
    ]
    other_owners = [organisation(f"Owner {n}", "owner", str(30000000 + n)) for n in range(1, 4)]
    auditor = person("auditor@company-a.example", owner, "auditor")
    owner_admin = person("ada@company-a.example", owner, "admin")
    owner_people = [owner_admin, auditor] + [
        person(f"admin{n}@company-a.example", owner, "admin") for n in range(3)
    ]
    partner_admin = person("bea@company-b.example", partner, "admin")
    staff = person("alice@company-b.example", partner, "staff")
    start = dt.datetime.now(dt.UTC) - dt.timedelta(days=400)

    account = CloudAccount.objects.create(
        organisation=owner,
        account_uid=owner.account_uid,
        access_key_id="LTAIbenchmark",
        secret_ciphertext="not-a-real-ciphertext",  # noqa: S106 (no page reads it)
        secret_fingerprint="sha256:bench",  # noqa: S106
    )
    roles = [
        CatalogRole.objects.create(
            organisation=owner,
            cloud_account=account,
            role_name=name,
            policies=[{"type": "System", "name": "AliyunECSFullAccess"}],
        )
        for name in ("ecs-admin", "ecs-viewer", "rds-ops")
    ]
    managed = {
        role.pk: ManagedRole.objects.create(cloud_account=account, role_name=role.role_name)
        for role in roles
    }
    for p in partners:
        PartnerAllowance.objects.create(organisation=owner, partner_account_uid=p.account_uid)

    def delegation(p: Any, role: Any, status: str) -> Delegation:
        return Delegation.objects.create(
            owner=owner,
            partner=p,
            catalog_role=role,
            managed_role=managed[role.pk],
            partner_account_uid=p.account_uid,
            status=status,
            requested_by=partner_admin,
            reason="benchmark",
            starts_at=start,
            created_at=start,
        )

    measured = delegation(partner, roles[0], "revoked")
    others = [
        delegation(rng.choice(partners), rng.choice(roles), rng.choice(["active", "revoked"]))
        for _ in range(200)
    ]
    world = World(
        owner=owner,
        partner=partner,
        auditor=auditor,
        owner_admin=owner_admin,
        partner_admin=partner_admin,
        staff=staff,
        delegation=measured,
        other_delegations=others,
        partners=partners,
        other_owners=other_owners,
        owner_people=owner_people,
        start=start,
    )
    for action in ("CreateRole", "AttachPolicyToRole", "UpdateRole", "DeleteRole"):
        call = CloudCall.objects.create(
            managed_role=managed[roles[0].pk],
            action=action,
            target="acs:ram::11223344:role/ecs-admin",
            outcome="ok",
        )
        call.delegations.add(measured)
        world.call_ids.append(call.pk)
    return world


# --- events ----------------------------------------------------------------------------------


@dataclass
class Event:
    action: str
    scopes: list[Any]
    organisation: Any
    actor: Any = None
    actor_organisation: Any = None
    target_type: str = ""
    target_id: str = ""
    target_label: str = ""
    before: Any = None
    after: Any = None
    metadata: dict[str, Any] = field(default_factory=dict)
    outcome: str = "success"
    source: str = "web"
    source_ip: str = ""
    request_id: str = ""


def label(user: Any) -> str:
    return f"{user.first_name} {user.last_name} <{user.email}>" if user else ""


def measured_history(world: World) -> list[Event]:
    """The measured delegation's whole story, as the services record it."""
    d = world.delegation
    scopes = [world.owner, world.partner]
    target = {
        "target_type": "delegations.delegation",
        "target_id": str(d.pk),
        "target_label": "ecs-admin for Company B",
    }
    principal = "acs:ram::12345678:root"

    def life(action: str, actor: Any = None, org: Any = None, **metadata: Any) -> Event:
        return Event(
            action=action,
            scopes=scopes,
            organisation=world.owner,
            actor=actor,
            actor_organisation=org,
            metadata={"role_name": "ecs-admin", "partner_account_uid": "12345678", **metadata},
            source="web" if actor else "task:delegations.role_plan",
            source_ip="198.51.100.7" if actor else "",
            request_id=uuid.uuid4().hex,
            **target,
        )

    def call(index: int, cloud_action: str, request: dict[str, Any]) -> list[Event]:
        common = {
            "scopes": scopes,
            "organisation": world.owner,
            "target_type": "delegations.cloudcall",
            "target_id": str(world.call_ids[index]),
            "target_label": f"{cloud_action} role/ecs-admin",
            "source": "task:delegations.role_plan",
        }
        metadata = {"cloud_action": cloud_action, "request": request, "mutating": True}
        return [
            Event(action="cloud.call_intent", metadata=metadata, **common),
            Event(
                action="cloud.call_result",
                metadata=metadata,
                after={"outcome": "ok", "request_id": f"CLOUD-{uuid.uuid4()}", "error_code": ""},
                **common,
            ),
        ]

    events = [
        life("delegation.requested", world.partner_admin, world.partner, reason="Run the fleet"),
        life("delegation.approved", world.owner_admin, world.owner, with_mfa=True, note=""),
        life("delegation.applying"),
        *call(0, "CreateRole", {"role_name": "ecs-admin", "principals_added": [principal]}),
        *call(1, "AttachPolicyToRole", {"policy_type": "System", "policy_name": "Ecs"}),
        life("delegation.activated", request_id="CLOUD-ACTIVATED"),
        life("delegation.staff_assigned", world.partner_admin, world.partner, person="alice"),
    ]
    for n in range(10):
        expires = world.start + dt.timedelta(hours=2 + n)
        events.append(
            life(
                "credentials.issued",
                world.staff,
                world.partner,
                person="alice",
                session_name="alice@company-b",
                access_key_id=f"STS.BENCH{n}",
                expiration=expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
        )
    events += [
        life("delegation.revoke_requested", world.owner_admin, world.owner, reason="done"),
        *call(2, "UpdateRole", {"role_name": "ecs-admin", "principals_removed": [principal]}),
        *call(3, "DeleteRole", {"role_name": "ecs-admin"}),
        life("delegation.revoked"),
    ]
    return events


LIFECYCLE = (
    "delegation.requested",
    "delegation.approved",
    "delegation.applying",
    "delegation.activated",
    "delegation.revoke_requested",
    "delegation.revoked",
)
CLOUD = ("cloud.call_read", "cloud.call_read", "cloud.call_read", "cloud.call_intent")


def noise_event(world: World, rng: random.Random, number: int) -> Event:
    """Everyday traffic: A's cloud calls and delegations (with B and other partners), A's and
    B's own member events, and other owners' traffic that A never sees."""
    roll = rng.random()
    outcome = "failure" if rng.random() < 0.02 else "success"
    if roll < 0.30:
        partner = world.partner if rng.random() < 0.3 else rng.choice(world.partners)
        return Event(
            action=rng.choice(CLOUD),
            scopes=[world.owner, partner],
            organisation=world.owner,
            target_type="delegations.cloudcall",
            target_id=str(1_000_000 + number),
            target_label="GetRole role/ecs-admin",
            after={"outcome": "ok", "request_id": f"CLOUD-{number}", "error_code": ""},
            metadata={"cloud_action": "GetRole", "mutating": False, "http_status": 200},
            outcome=outcome,
            source="task:delegations.role_plan",
        )
    if roll < 0.45:
        delegation = rng.choice(world.other_delegations)
        partner = next(p for p in world.partners if p.pk == delegation.partner_id)
        actor = rng.choice(world.owner_people) if rng.random() < 0.5 else None
        return Event(
            action=rng.choice(LIFECYCLE),
            scopes=[world.owner, partner],
            organisation=world.owner,
            actor=actor,
            actor_organisation=world.owner if actor else None,
            target_type="delegations.delegation",
            target_id=str(delegation.pk),
            target_label=f"role for {partner.name}",
            before={"status": "approved", "version": 2},
            after={"status": "active", "version": 3},
            metadata={"role_name": "ecs-admin", "with_mfa": True},
            outcome=outcome,
            source_ip="198.51.100.7" if actor else "",
            request_id=uuid.uuid4().hex if actor else "",
        )
    if roll < 0.55:
        actor = rng.choice(world.owner_people)
        return Event(
            action=rng.choice(("auth.sign_in_succeeded", "member.role_changed", "mfa.enabled")),
            scopes=[world.owner],
            organisation=world.owner,
            actor=actor,
            actor_organisation=world.owner,
            target_type="accounts.user",
            target_id=str(actor.pk),
            target_label=actor.email,
            source_ip="203.0.113.5",
            request_id=uuid.uuid4().hex,
            outcome=outcome,
        )
    if roll < 0.65:
        return Event(
            action="auth.sign_in_succeeded",
            scopes=[world.partner],
            organisation=world.partner,
            actor=world.partner_admin,
            actor_organisation=world.partner,
            target_label=world.partner_admin.email,
            source_ip="192.0.2.44",
            request_id=uuid.uuid4().hex,
        )
    other = rng.choice(world.other_owners)
    return Event(
        action=rng.choice(CLOUD + LIFECYCLE),
        scopes=[other],
        organisation=other,
        target_type="delegations.delegation",
        target_id=str(uuid.UUID(int=number)),
        target_label=f"ops for a partner of {other.name}",
        outcome=outcome,
        source="task:delegations.role_plan",
    )


class ChainWriter:
    """Appends events with valid hashes, in batches of raw INSERTs."""

    def __init__(self, start: dt.datetime) -> None:
        from audit.models import AuditChainHead, AuditEvent, AuditEventScope

        self.scope_field = AuditEventScope._meta.get_field("organisation")
        head = AuditChainHead.objects.get(pk=1)
        self.sequence, self.hash = head.sequence, head.hash
        self.start = start
        self.fields = [f for f in AuditEvent._meta.concrete_fields]
        columns = ", ".join(connection.ops.quote_name(f.column) for f in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        self.event_sql = f"INSERT INTO audit_auditevent ({columns}) VALUES ({marks})"  # noqa: S608
        self.scope_sql = (
            "INSERT INTO audit_auditeventscope (event_id, organisation_id) VALUES (%s, %s)"
        )

    def _row(self, event: Event) -> tuple[list[Any], list[tuple[int, Any]]]:
        from audit.chain import HASH_VERSION, event_payload, link_hash

        self.sequence += 1
        occurred_at = self.start + SPACING * self.sequence
        values = {
            "sequence": self.sequence,
            "hash_version": HASH_VERSION,
            "occurred_at": occurred_at,
            "action": event.action,
            "outcome": event.outcome,
            "actor_id": event.actor.pk if event.actor else None,
            "actor_label": label(event.actor),
            "actor_organisation_id": event.actor_organisation.pk
            if event.actor_organisation
            else None,
            "actor_organisation_label": event.actor_organisation.name
            if event.actor_organisation
            else "",
            "organisation_id": event.organisation.pk if event.organisation else None,
            "target_type": event.target_type,
            "target_id": event.target_id,
            "target_label": event.target_label,
            "before": event.before,
            "after": event.after,
            "metadata": event.metadata,
            "source": event.source,
            "source_ip": event.source_ip,
            "request_id": event.request_id,
        }
        scope_ids = [org.pk for org in event.scopes]
        payload = event_payload(scope_organisation_ids=scope_ids, **values)
        values["prev_hash"] = self.hash
        values["hash"] = self.hash = link_hash(self.hash, payload)
        row = [field.get_db_prep_save(values[field.attname], connection) for field in self.fields]
        scopes = [
            (self.sequence, self.scope_field.get_db_prep_save(org_id, connection))
            for org_id in scope_ids
        ]
        return row, scopes

    def write(self, events: Iterator[Event]) -> int:
        from audit.models import AuditChainHead

        written = 0
        rows: list[list[Any]] = []
        scopes: list[tuple[int, Any]] = []

        def flush() -> None:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.executemany(self.event_sql, rows)
                cursor.executemany(self.scope_sql, scopes)
            rows.clear()
            scopes.clear()

        for event in events:
            row, event_scopes = self._row(event)
            rows.append(row)
            scopes.extend(event_scopes)
            written += 1
            if len(rows) >= BATCH:
                flush()
        if rows:
            flush()
        AuditChainHead.objects.filter(pk=1).update(sequence=self.sequence, hash=self.hash)
        return written


# --- timing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    name: str
    url: Callable[[World, int], str]


def pages() -> list[Page]:
    def window(world: World, _: int) -> str:
        since = world.start + dt.timedelta(hours=1)
        until = world.start + dt.timedelta(hours=3)
        return f"/audit/?since={since:%Y-%m-%d+%H:%M}&until={until:%Y-%m-%d+%H:%M}"

    return [
        Page("list (newest)", lambda w, n: "/audit/"),
        Page("list (deep keyset page)", lambda w, n: f"/audit/?before={n // 2}"),
        Page(
            "filter: partner + action",
            lambda w, n: f"/audit/?partner={w.partner.pk}&action=delegation.",
        ),
        Page("filter: outcome", lambda w, n: "/audit/?outcome=failure"),
        Page("filter: time window", window),
        Page("filter: delegation", lambda w, n: f"/audit/?delegation={w.delegation.pk}"),
        Page("filter: person", lambda w, n: f"/audit/?person={w.owner_admin.pk}"),
        Page("timeline", lambda w, n: f"/audit/delegations/{w.delegation.pk}/"),
    ]


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


def timed_get(client: Client, url: str) -> tuple[float, float]:
    """One request: (total ms, ms spent in SQL)."""
    in_sql = [0.0]

    def clock(execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        began = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            in_sql[0] += time.perf_counter() - began

    with connection.execute_wrapper(clock):
        began = time.perf_counter()
        response = client.get(url)
        total = (time.perf_counter() - began) * 1000
    if response.status_code != 200:
        raise SystemExit(f"{url} answered {response.status_code}")
    return total, in_sql[0] * 1000


def measure(databases: list[Database], requests: int) -> dict[tuple[str, str], list]:
    """Every page on every database, interleaved request by request, so that load from other
    processes on the machine falls on both sizes alike."""
    clients = {}
    for database in databases:
        use(database)
        client = Client()
        client.force_login(database.world.auditor)
        clients[database.name] = client
    samples: dict[tuple[str, str], list] = {}
    for round_number in range(requests + 3):
        for page in pages():
            for database in databases:
                use(database)
                url = page.url(database.world, database.size)
                client = clients[database.name]
                client.get(url)  # a fresh connection's first query is not the page's cost
                total, sql = timed_get(client, url)
                if round_number >= 3:  # warm-up rounds are not counted
                    samples.setdefault((page.name, database.name), []).append((total, sql))
    return samples


def seed(database: Database, events: int, rng: random.Random) -> None:
    from audit.models import AuditEvent

    use(database)
    world = build_world(rng)
    history = measured_history(world)
    began = time.perf_counter()

    def stream() -> Iterator[Event]:
        yield from history
        for n in range(max(0, events - len(history))):
            yield noise_event(world, rng, n)
            if n and n % 100_000 == 0:
                rate = n / (time.perf_counter() - began)
                print(f"  … {n:,} events written ({rate:,.0f}/s)", flush=True)

    ChainWriter(world.start).write(stream())
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")  # fresh planner statistics, as autovacuum would give
    database.world = world
    database.size = AuditEvent.objects.count()
    print(
        f"seeded {database.size:,} events in {time.perf_counter() - began:.0f} s",
        flush=True,
    )


def main() -> None:
    args = parse_args()
    # Not setup_test_environment(): its template instrumentation (for test assertions) would
    # be timed too.
    settings.DEBUG = False
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    directory = Path(tempfile.mkdtemp(prefix="audit-bench-"))
    small = create_database("small", directory)
    large = create_database("large", directory)
    print(f"databases: {connection.vendor} ({small.name}, {large.name})", flush=True)
    try:
        run(args, small, large)
    finally:
        if args.keep:
            print(f"kept {small.name} and {large.name}")
        else:
            drop(small)
            drop(large)


def run(args: argparse.Namespace, small: Database, large: Database) -> None:
    from audit.verify import verify_chain

    seed(small, args.small, random.Random(args.seed))
    seed(large, args.events, random.Random(args.seed))
    print(f"timing {args.requests} requests per page and size, interleaved…", flush=True)
    samples = measure([small, large], args.requests)

    print()
    print(
        f"{'page':26} {small.size:>9,} events: p50 / p95 ms  {large.size:>9,} events: "
        "p50 / p95 ms   ratio p50 / p95   (SQL p50 ms small → large)"
    )
    worst = 0.0
    for page in pages():
        s50, s95 = percentiles([t for t, _ in samples[(page.name, small.name)]])
        l50, l95 = percentiles([t for t, _ in samples[(page.name, large.name)]])
        sql_small = statistics.median(q for _, q in samples[(page.name, small.name)])
        sql_large = statistics.median(q for _, q in samples[(page.name, large.name)])
        r50, r95 = l50 / s50, l95 / s95
        worst = max(worst, r50, r95)
        print(
            f"{page.name:26} {s50:16.1f} / {s95:6.1f}   {l50:16.1f} / {l95:6.1f}"
            f"   {r50:7.2f} / {r95:5.2f}   ({sql_small:.1f} → {sql_large:.1f})"
        )
    print(f"\nworst ratio {worst:.2f} (target ≤ 3): {'OK' if worst <= 3 else 'ABOVE TARGET'}")
    if args.verify:
        use(large)
        began = time.perf_counter()
        result = verify_chain()
        print(f"verify_chain over {large.size:,} events: {time.perf_counter() - began:.1f} s")
        print(result.summary())


if __name__ == "__main__":
    main()
