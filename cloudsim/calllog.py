"""The call log: one JSON line per API call in ``DIR/calls.jsonl``, never holding a secret."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from cloudsim.store import iso

FILENAME = "calls.jsonl"
# Parameters whose values are credentials or signatures: never written anywhere.
_SECRET_MARKERS = ("secret", "password", "token", "signature")
_SECRET_EXACT = {
    "Signature",
    "SecurityToken",
    "AccessKeySecret",
    "Password",
    "NewPassword",
    "OldPassword",
    "SigninToken",
}
_MAX_VALUE_LENGTH = 8192
# Recent entries kept in memory so /_sim/calls does not re-read the file.
_MEMORY = 20_000


def is_secret_parameter(name: str) -> bool:
    lowered = name.lower()
    if name in _SECRET_EXACT:
        return True
    if lowered in ("signaturemethod", "signatureversion", "signaturenonce", "signaturetype"):
        return False
    return any(marker in lowered for marker in _SECRET_MARKERS)


def redact(params: dict[str, str]) -> dict[str, str]:
    clean = {}
    for name, value in params.items():
        if is_secret_parameter(name):
            continue
        if len(value) > _MAX_VALUE_LENGTH:
            value = value[:_MAX_VALUE_LENGTH] + f"...[{len(value)} chars]"
        clean[name] = value
    return clean


class CallLog:
    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / FILENAME
        self._lock = threading.Lock()
        self._recent: deque[dict] = deque(maxlen=_MEMORY)
        self._seq = 0
        if self.path.exists():
            with self.path.open("rb") as existing:
                for line in existing:
                    try:
                        entry = json.loads(line)
                    except ValueError:
                        continue
                    self._seq = max(self._seq, int(entry.get("seq", 0)))
                    self._recent.append(entry)
        self._file = self.path.open("a", encoding="utf-8")

    @property
    def last_seq(self) -> int:
        return self._seq

    def record(self, **fields: object) -> dict:
        with self._lock:
            self._seq += 1
            entry = {"seq": self._seq, "time": iso(time.time()), **fields}
            self._file.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
            self._file.flush()
            self._recent.append(entry)
            return entry

    def record_many(self, entries: Iterable[dict]) -> int:
        """Append calls that happened at their own ``time`` (an operator's bulk seeding):
        numbered in order, written in chunks. Returns the last seq."""
        with self._lock:
            lines: list[str] = []
            for fields in entries:
                self._seq += 1
                entry = {"seq": self._seq, **fields}
                lines.append(json.dumps(entry, ensure_ascii=False, separators=(",", ":")))
                self._recent.append(entry)
                if len(lines) == 10_000:
                    self._file.write("\n".join(lines) + "\n")
                    lines = []
            if lines:
                self._file.write("\n".join(lines) + "\n")
            self._file.flush()
            return self._seq

    def holds_in_memory(self, seq: int) -> bool:
        """Whether every entry after ``seq`` is still in memory (``since`` needs no file)."""
        with self._lock:
            return not self._recent or self._recent[0]["seq"] <= seq + 1

    def since(self, seq: int, limit: int = 10_000) -> list[dict]:
        with self._lock:
            recent = list(self._recent)
        if recent and recent[0]["seq"] <= seq + 1:
            return [e for e in recent if e["seq"] > seq][:limit]
        # Older than memory holds: read the file.
        result = []
        with self._lock, self.path.open("rb") as source:
            for line in source:
                try:
                    entry = json.loads(line)
                except ValueError:
                    continue
                if int(entry.get("seq", 0)) > seq:
                    result.append(entry)
                    if len(result) >= limit:
                        break
        return result

    def recent(self, count: int) -> list[dict]:
        with self._lock:
            return list(self._recent)[-count:]

    def close(self) -> None:
        with self._lock:
            self._file.close()
