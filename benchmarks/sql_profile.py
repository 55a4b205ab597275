"""Counting a piece of work's SQL statements by where they come from (benchmarks only).

    with sql_statements() as profile:
        ...  # the work, in this process
    print(profile.table())

Every statement the default connection executes is timed and put in one bucket, the first
that applies: `after_response` (work a web request deferred until its response was sent,
`core.after_response`: the person did not wait for it), savepoints (`SAVEPOINT` / `RELEASE` /
`ROLLBACK TO`, from nested atomic blocks), `audit_record` (anything run inside
`audit.services.audit_record`, its chain-head lock included), locks (other
`SELECT ... FOR UPDATE`), then reads (`SELECT`) and writes (`INSERT` / `UPDATE` / `DELETE`)
named by the innermost portal function on the stack.
Commits are counted and timed too (not statements: psycopg sends `BEGIN` before the first
statement of a transaction and `COMMIT` at its end, one round trip each, and a commit waits for
the disk).
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_SKIP = (str(ROOT / ".venv"), str(ROOT / "benchmarks"), "site-packages")


_AFTER_RESPONSE = str(ROOT / "core" / "after_response.py")


def _portal_frames() -> tuple[str, str, bool]:
    """The innermost portal function on the stack, the one that called `audit_record` (""
    when the statement is not inside it), and whether it runs after the response."""
    frame = sys._getframe(2)
    innermost, auditing, audit_caller = "", False, ""
    while frame is not None:
        path = frame.f_code.co_filename
        if path == _AFTER_RESPONSE:
            return innermost or "(outside the portal)", audit_caller, True
        if path.startswith(str(ROOT)) and not path.startswith(_SKIP):
            name = f"{'.'.join(Path(path).relative_to(ROOT).with_suffix('').parts)}"
            name = f"{name}.{frame.f_code.co_name}"
            if auditing and not audit_caller:
                audit_caller = name
            if frame.f_code.co_name == "audit_record" and name.startswith("audit."):
                auditing = True
            innermost = innermost or name
        frame = frame.f_back
    if auditing and not audit_caller:
        audit_caller = "(unknown caller)"
    return innermost or "(outside the portal)", audit_caller, False


def _bucket(sql: str, origin: str, audit_caller: str, deferred: bool = False) -> tuple[str, str]:
    text = sql.lstrip().upper()
    head = text.split(None, 1)[0] if text else ""
    locking = head == "SELECT" and " FOR UPDATE" in text
    if deferred:
        return "after_response", f"{head} {origin}"
    if head in ("SAVEPOINT", "RELEASE") or text.startswith("ROLLBACK TO"):
        return "savepoints", ""
    if audit_caller:
        what = "lock" if locking else head.lower()
        return "audit_record", f"{what} in {origin} for {audit_caller}"
    if locking:
        return "locks", origin
    if head == "SELECT":
        return "reads", origin
    return "writes", f"{head} {origin}"


@dataclass
class Profile:
    count: Counter = field(default_factory=Counter)
    seconds: Counter = field(default_factory=Counter)
    detail: Counter = field(default_factory=Counter)
    commits: int = 0
    commit_seconds: float = 0.0

    @property
    def statements(self) -> int:
        return sum(self.count.values())

    def table(self, *, per: int = 1, top: int = 12) -> str:
        """Statements by bucket (divided by `per`, e.g. per issuance), then the busiest
        origins."""
        lines = [
            f"{self.statements / per:.1f} statements ({sum(self.seconds.values()) * 1000 / per:.1f}"
            f" ms) and {self.commits / per:.1f} commits ({self.commit_seconds * 1000 / per:.1f} ms)"
        ]
        for bucket, count in self.count.most_common():
            lines.append(
                f"  {bucket:14s} {count / per:7.1f}   {self.seconds[bucket] * 1000 / per:7.1f} ms"
            )
        lines.append("  by origin:")
        for (bucket, origin), count in self.detail.most_common(top):
            lines.append(f"    {count / per:7.1f}  {bucket:14s} {origin}")
        return "\n".join(lines)


@contextmanager
def sql_statements(alias: str = "default") -> Iterator[Profile]:
    from django.db import connections

    connection = connections[alias]
    profile = Profile()

    def wrapper(execute, sql, params, many, context):
        bucket, origin = _bucket(sql, *_portal_frames())
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            profile.count[bucket] += 1
            profile.seconds[bucket] += time.perf_counter() - started
            profile.detail[(bucket, origin)] += 1

    commit = connection.commit

    def counting_commit() -> None:
        started = time.perf_counter()
        try:
            commit()
        finally:
            profile.commits += 1
            profile.commit_seconds += time.perf_counter() - started

    connection.commit = counting_commit
    try:
        with connection.execute_wrapper(wrapper):
            yield profile
    finally:
        del connection.commit
