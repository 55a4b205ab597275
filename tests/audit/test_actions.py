"""The registry of event types: complete, well-formed, read by the console for every member,
and the only way the portal's code names an action."""

import ast
import string
from pathlib import Path
from types import SimpleNamespace

import pytest

from audit.actions import ACTION_RE, TITLE_FIELDS, Access, AuditAction, Category
from auditor.presentation import classify_access_event, describe_event

ROOT = Path(__file__).resolve().parents[2]
PORTAL_PACKAGES = (
    "accounts",
    "activity",
    "audit",
    "auditor",
    "cloud",
    "core",
    "delegations",
    "demo",
    "notifications",
    "portal",
    "runbooks",
)


def event(action: str, **fields: object) -> SimpleNamespace:
    defaults: dict[str, object] = {
        "outcome": "success",
        "actor_id": None,
        "actor_label": "Ada Admin <ada@a.example>",
        "actor_organisation_label": "",
        "target_type": "delegations.delegation",
        "target_id": "1",
        "target_label": "ecs-admin for Company B",
        "before": None,
        "after": None,
        "metadata": {},
    }
    return SimpleNamespace(action=action, **{**defaults, **fields})


def test_every_value_is_a_dotted_lowercase_name_that_fits_its_column():
    for action in AuditAction:
        assert ACTION_RE.match(action.value), action
        assert len(action.value) <= 100, action
    assert len({action.value for action in AuditAction}) == len(AuditAction)


def test_every_member_is_described_and_categorised():
    for action in AuditAction:
        assert action.info.description.strip(), action
        assert isinstance(action.info.category, Category), action
        assert action.info.access is None or isinstance(action.info.access, Access), action


def test_titles_use_only_the_fields_the_console_fills():
    for action in AuditAction:
        if action.info.title is None:
            continue
        names = {name for _, name, _, _ in string.Formatter().parse(action.info.title) if name}
        assert names <= TITLE_FIELDS, (action, names - TITLE_FIELDS)


def test_every_title_reads_in_chinese():
    """The console shows each title through gettext: a title left out of the catalogue (not
    marked where it is declared) reads in English on a Chinese page."""
    from django.utils import translation

    untranslated = []
    with translation.override("zh-hans"):
        for action in AuditAction:
            title = action.info.title
            if title is not None and translation.gettext(title) == title:
                untranslated.append(action.value)
    assert untranslated == []


def test_a_stored_string_finds_its_member_and_nothing_else_does():
    assert AuditAction.lookup("delegation.approved") is AuditAction.DELEGATION_APPROVED
    assert AuditAction.lookup("delegation.staff_assigned") is None
    assert AuditAction.lookup(None) is None
    assert AuditAction.DELEGATION_APPROVED == "delegation.approved"


@pytest.mark.parametrize("action", list(AuditAction), ids=str)
def test_the_console_describes_every_member_as_the_registry_says(action):
    described = describe_event(event(action.value, metadata={"cloud_action": "UpdateRole"}))
    assert described.category == action.info.category
    assert described.title and "{" not in described.title
    if action.info.access is not None:
        assert classify_access_event(event(action.value)) == action.info.access
    elif action.info.title is None:
        assert described.title == f"{action.value} — ecs-admin for Company B"
    else:
        assert not described.title.startswith(action.value)


def test_a_refused_attempt_of_any_member_reads_as_denied_or_a_cloud_call():
    for action in AuditAction:
        described = describe_event(event(action.value, outcome="denied"))
        expected = "cloud" if action.info.category == Category.CLOUD else "denied"
        assert described.category == expected, action


def test_a_string_the_portal_never_writes_reads_as_its_name_and_target():
    described = describe_event(event("cloud.call_note"))
    assert (described.title, described.category) == (
        "cloud.call_note — ecs-admin for Company B",
        "other",
    )


# --- the registry is the only source ---------------------------------------------------------


def _outcomes(expression: ast.expr) -> list[ast.expr]:
    """The expressions the argument can evaluate to (both arms of `a if test else b`)."""
    if isinstance(expression, ast.IfExp):
        return _outcomes(expression.body) + _outcomes(expression.orelse)
    if isinstance(expression, ast.BoolOp):
        return [part for value in expression.values for part in _outcomes(value)]
    return [expression]


def _literal_actions(path: Path, root: Path = ROOT) -> list[str]:
    """`action="x.y"` written as a string in any call (audit_record or a helper that passes it
    on), as "path:line: value"."""
    found = []
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        is_audit_record = getattr(node.func, "id", getattr(node.func, "attr", "")) == "audit_record"
        for keyword in node.keywords:
            if keyword.arg != "action":
                continue
            for value in _outcomes(keyword.value):
                if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
                    continue
                if is_audit_record or ACTION_RE.match(value.value):
                    relative = path.relative_to(root).as_posix()
                    found.append(f"{relative}:{value.lineno}: {value.value!r}")
    return found


def test_no_portal_code_names_an_action_as_a_string():
    offenders = [
        offence
        for package in PORTAL_PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        for offence in _literal_actions(path)
    ]
    assert not offenders, "Pass an audit.actions.AuditAction member, not a string:\n" + "\n".join(
        offenders
    )


def test_the_scan_sees_a_literal_passed_to_audit_record_or_a_helper(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        'audit_record(action="member.added")\n'
        'helper(action="drift.detected" if kind == "x.y" else AuditAction.DRIFT_CLEARED)\n'
        'audit_record(action="Oddly")\n'
        "audit_record(action=AuditAction.MEMBER_ADDED)\n"
        'parser.add_argument("--quiet", action="store_true")\n',
        encoding="utf-8",
    )
    assert _literal_actions(source, root=tmp_path) == [
        "sample.py:1: 'member.added'",
        "sample.py:2: 'drift.detected'",
        "sample.py:3: 'Oddly'",
    ]
