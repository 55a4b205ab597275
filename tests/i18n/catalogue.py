"""The zh-hans catalogue, read with the standard library, and the exact `makemessages` call.

A small reader of gettext PO files: what the checks need (each entry's context, msgid, plural,
translations and flags), for the `--no-wrap` files `make messages` writes.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOGUE = ROOT / "locale" / "zh_Hans" / "LC_MESSAGES" / "django.po"

# Exactly what `make messages` runs (the shared i18n conventions): the same flags here, so the
# check sees what a developer's `make messages` would write.
MAKEMESSAGES_ARGS = [
    "makemessages",
    "-l",
    "zh_Hans",
    "--no-location",
    "--no-wrap",
    "--no-obsolete",
    *("-i", ".venv/*"),
    *("-i", "cloudsim/*"),
    *("-i", "tests/*"),
    *("-i", "benchmarks/*"),
    *("-i", "cli/*"),
    *("-i", "var/*"),
    *("-i", "staticfiles/*"),
]


@dataclass
class Entry:
    msgid: str
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstr: dict[int, str] = field(default_factory=dict)
    flags: set[str] = field(default_factory=set)
    references: list[str] = field(default_factory=list)
    obsolete: bool = False

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.msgctxt, self.msgid)

    @property
    def translated(self) -> bool:
        return bool(self.msgstr) and all(value for value in self.msgstr.values())

    def __str__(self) -> str:
        context = f" (context {self.msgctxt!r})" if self.msgctxt else ""
        return f"{self.msgid!r}{context}"


_KEYWORD = re.compile(r'^(msgctxt|msgid_plural|msgid|msgstr(?:\[(\d+)\])?)\s+(".*")\s*$')


def _unquote(literal: str) -> str:
    # A PO string is a C string literal; Python's own literal syntax reads the escapes used.
    return ast.literal_eval(literal)


def parse(text: str) -> list[Entry]:
    entries: list[Entry] = []
    current: Entry | None = None
    target: tuple[str, int | None] | None = None
    flags: set[str] = set()
    references: list[str] = []

    def finish() -> None:
        nonlocal current, target, flags, references
        if current is not None:
            entries.append(current)
        current, target, flags, references = None, None, set(), []

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            finish()
            continue
        obsolete = line.startswith("#~")
        if obsolete:
            line = line[2:].strip()
        elif line.startswith("#,"):
            if current is not None and target is not None and target[0] != "msgctxt":
                finish()
            flags |= {flag.strip() for flag in line[2:].split(",") if flag.strip()}
            continue
        elif line.startswith("#:"):
            references += line[2:].split()
            continue
        elif line.startswith("#"):
            continue
        match = _KEYWORD.match(line)
        if match:
            keyword, index, literal = match.groups()
            value = _unquote(literal)
            if (
                keyword in ("msgctxt", "msgid")
                and current is not None
                and (keyword == "msgctxt" or target is None or target[0] != "msgctxt")
            ):
                finish()
            if current is None:
                current = Entry(msgid="", flags=flags, references=references, obsolete=obsolete)
            if keyword == "msgctxt":
                current.msgctxt, target = value, ("msgctxt", None)
            elif keyword == "msgid":
                current.msgid, target = value, ("msgid", None)
            elif keyword == "msgid_plural":
                current.msgid_plural, target = value, ("msgid_plural", None)
            else:
                number = int(index) if index is not None else 0
                current.msgstr[number], target = value, ("msgstr", number)
        elif line.startswith('"') and current is not None and target is not None:
            value = _unquote(line)
            kind, number = target
            if kind == "msgctxt":
                current.msgctxt = (current.msgctxt or "") + value
            elif kind == "msgid":
                current.msgid += value
            elif kind == "msgid_plural":
                current.msgid_plural = (current.msgid_plural or "") + value
            else:
                current.msgstr[number or 0] += value
    finish()
    return entries


def read(path: Path = CATALOGUE) -> list[Entry]:
    """The live entries of a catalogue (the header and obsolete `#~` entries left out)."""
    return [e for e in parse(path.read_text(encoding="utf-8")) if e.msgid and not e.obsolete]


def makemessages(project: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """Run `manage.py makemessages` with MAKEMESSAGES_ARGS in `project` (a copy, for checks)."""
    return subprocess.run(
        [sys.executable, "manage.py", *MAKEMESSAGES_ARGS, *extra],
        cwd=project,
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "DEBUG": "1"},
        timeout=300,
        check=False,
    )
