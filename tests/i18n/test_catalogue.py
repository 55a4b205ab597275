"""Every string is marked and every marked string is translated (issue 17's proof, part 1).

- The zh-hans catalogue has no untranslated and no fuzzy entry, and its header says
  zh_Hans with one plural form.
- `makemessages`, run exactly as `make messages` runs it on a copy of the code, would add no
  msgid: every marked string is in the catalogue. Reported per area (a template folder or a
  Python package) with the msgids missing there.
- No template has literal text outside `{% translate %}` / `{% blocktranslate %}` (names and
  symbols on a short allow-list aside), reported per template folder with file and line.
"""

from __future__ import annotations

import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from tests.i18n import template_scan
from tests.i18n.catalogue import CATALOGUE, ROOT, Entry, makemessages, parse, read
from tests.i18n.template_scan import scan, template_areas, templates_of

PYTHON_PACKAGES = [
    "accounts",
    "activity",
    "api",
    "audit",
    "auditor",
    "core",
    "delegations",
    "demo",
    "notifications",
    "portal",
]
# What a copy of the code needs for makemessages: the code, the templates, the catalogue.
COPY_IGNORE = shutil.ignore_patterns(
    ".venv", ".git", "var", "staticfiles", "test-artifacts", "__pycache__", "*.mo", "node_modules"
)


def test_the_catalogue_is_zh_hans_with_one_plural_form() -> None:
    header = next(e for e in parse(CATALOGUE.read_text(encoding="utf-8")) if e.msgid == "")
    text = header.msgstr[0]
    assert "Language: zh_Hans\n" in text
    assert "Plural-Forms: nplurals=1; plural=0;\n" in text
    assert "charset=UTF-8" in text
    assert "fuzzy" not in header.flags


def test_every_message_is_translated_and_none_is_fuzzy() -> None:
    entries = read()
    assert entries, "the catalogue is empty"
    untranslated = [str(e) for e in entries if not e.translated]
    fuzzy = [str(e) for e in entries if "fuzzy" in e.flags]
    plural_forms = [str(e) for e in entries if e.msgid_plural and set(e.msgstr) != {0}]
    assert not untranslated, f"{len(untranslated)} untranslated: " + "\n".join(untranslated)
    assert not fuzzy, f"{len(fuzzy)} fuzzy: " + "\n".join(fuzzy)
    assert not plural_forms, "zh has one plural form (msgstr[0] only): " + "\n".join(plural_forms)


# "3 approval(s)": English that a count should choose for itself (ngettext), and that
# leaves a translator nothing to choose with.
PARENTHESISED_PLURAL = re.compile(r"[a-z]\(s\)")


def test_a_counted_noun_is_chosen_by_ngettext_not_written_with_parenthesised_s() -> None:
    offenders = [
        str(e) for e in read() if PARENTHESISED_PLURAL.search(e.msgid + (e.msgid_plural or ""))
    ]
    assert not offenders, "use ngettext for:\n" + "\n".join(offenders)
    assert PARENTHESISED_PLURAL.search("%(n)d approval(s)")
    assert not PARENTHESISED_PLURAL.search("Duration (s)")


PLACEHOLDER = re.compile(r"%\([a-z_]+\)[sd]|%[sd]|\{[a-z_]*\}")


def _placeholders(text: str) -> list[str]:
    return sorted(set(PLACEHOLDER.findall(text)))


def test_placeholders_survive_translation() -> None:
    wrong = [
        f"{e}: {_placeholders(e.msgid_plural or e.msgid)} became {_placeholders(e.msgstr[0])}"
        for e in read()
        if e.translated and _placeholders(e.msgid_plural or e.msgid) != _placeholders(e.msgstr[0])
    ]
    assert not wrong, "placeholders changed in translation:\n" + "\n".join(wrong)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str | None, str], Entry]:
    """What `make messages` would write, run on a copy of the code (the checkout is left
    alone), with file locations added so a missing msgid can be traced to its area."""
    project = tmp_path_factory.mktemp("makemessages") / "project"
    shutil.copytree(ROOT, project, ignore=COPY_IGNORE, symlinks=True)
    result = makemessages(project)
    assert result.returncode == 0, result.stdout + result.stderr
    exact = {e.key: e for e in read(project / CATALOGUE.relative_to(ROOT))}
    # The same run with locations, only to name each msgid's files.
    located = makemessages(project, "--add-location=file")
    assert located.returncode == 0, located.stdout + located.stderr
    for entry in parse((project / CATALOGUE.relative_to(ROOT)).read_text(encoding="utf-8")):
        if entry.key in exact:
            exact[entry.key].references = entry.references
    return exact


def _area_of(reference: str) -> str:
    parts = Path(reference.split(":")[0]).parts
    if parts and parts[0] == "templates":
        return "templates/" + (parts[1] if len(parts) > 2 else "(root)")
    return parts[0] if parts else "?"


AREAS = [f"templates/{area}" for area in template_areas()] + PYTHON_PACKAGES


@pytest.mark.parametrize("area", AREAS)
def test_makemessages_would_add_nothing(
    area: str, extracted: dict[tuple[str | None, str], Entry]
) -> None:
    known = {e.key for e in read()}
    missing: dict[str, list[str]] = defaultdict(list)
    for key, entry in extracted.items():
        if key in known:
            continue
        for reference in entry.references or ["?"]:
            if _area_of(reference) == area:
                missing[reference].append(str(entry))
    assert not missing, (
        f"marked in {area} but not in {CATALOGUE.relative_to(ROOT)} (run `make messages`):\n"
        + "\n".join(
            f"{place}: {msgid}" for place, msgids in sorted(missing.items()) for msgid in msgids
        )
    )


@pytest.mark.parametrize("area", template_areas())
def test_no_template_has_unmarked_text(area: str) -> None:
    findings = [finding for path in templates_of(area) for finding in scan(path)]
    assert not findings, (
        f"{len(findings)} unmarked text(s) in templates/{area} (wrap them in "
        "{% translate %} or {% blocktranslate %}):\n" + "\n".join(map(str, findings))
    )


def test_the_scan_finds_unmarked_text(tmp_path: Path) -> None:
    # The scan must be able to fail: plain text, an attribute, and text in a .txt email.
    page = tmp_path / "page.html"
    page.write_text(
        '{% load i18n %}<h1>Hello there</h1><p title="Open it">{% translate "Fine" %}</p>'
        "<p>{% blocktranslate %}Also {{ fine }}{% endblocktranslate %}</p>"
        "<code>python manage.py x</code><span>UTC</span>{# Not text #}"
    )
    mail = tmp_path / "mail.txt"
    mail.write_text('{% load i18n %}{% translate "Hi" %}\nPlain words here\n')
    original = template_scan.TEMPLATES
    template_scan.TEMPLATES = tmp_path
    try:
        assert [f.text for f in scan(page)] == ["Hello there", "title=Open it"]
        assert [f.text for f in scan(mail)] == ["Plain words here"]
    finally:
        template_scan.TEMPLATES = original
