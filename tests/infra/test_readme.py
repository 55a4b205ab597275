"""The README stays true to the code: its variables, dependencies and commands exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def _requirements(name: str) -> set[str]:
    packages = set()
    for line in (ROOT / name).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line and not line.startswith("-"):
            packages.add(re.split(r"[=<>~!;\s]", line, maxsplit=1)[0])
    return packages


def test_the_two_commands_come_first() -> None:
    first_section = README.split("\n## ", 2)[1]
    assert first_section.startswith("The two commands")
    assert "make run" in first_section and "make test" in first_section


def test_every_pinned_package_has_its_reason() -> None:
    why = _section("Why each dependency")
    explained = set(re.findall(r"^\| ([A-Za-z0-9_.\[\]-]+) \| ", why, re.M)) - {"package"}
    pinned = _requirements("requirements.txt") | _requirements("requirements-dev.txt")
    assert pinned - explained == set(), "add a line to README's 'Why each dependency'"
    assert explained - pinned == set(), "README explains packages that are not pinned"


def test_every_configuration_variable_is_in_the_table() -> None:
    table = _section("Configuration")
    listed = set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", table, re.M))
    documented = set(
        re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M)
    )
    documented -= {"COMPOSE_PROFILES"}  # docker compose's own, explained in the compose section
    assert documented - listed == set(), "add these to the README's configuration table"
    assert listed - documented == set(), "the README lists variables .env.example does not"


def test_the_layout_names_real_folders_and_the_make_targets_exist() -> None:
    layout = _section("Where things live")
    for folder in re.findall(r"^([a-z]+)/ ", layout, re.M):
        if folder != "benchmarks":  # added with the first benchmark
            assert (ROOT / folder).is_dir(), folder
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run:", makefile, re.M) and re.search(r"^test:", makefile, re.M)
