"""The code checks run inside the suite, so `make test` is the one gate: lint, format, types,
Django."""

import ast
import os
import re
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=ROOT, capture_output=True, text=True, env={**os.environ, **(env or {})}
    )


def test_ruff_lint_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_format_is_clean() -> None:
    result = _run(str(BIN / "ruff"), "format", "--check", ".")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_mypy_is_clean() -> None:
    # What it checks is [tool.mypy] in pyproject.toml; django-stubs' plugin loads the settings,
    # which need DEBUG (or a SECRET_KEY) to load.
    result = _run(str(BIN / "mypy"), env={"DEBUG": "1"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_django_system_checks_pass() -> None:
    result = _run(sys.executable, "manage.py", "check", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_model_change_lacks_a_migration() -> None:
    result = _run(sys.executable, "manage.py", "makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_settings_pass_the_deploy_check() -> None:
    production = {
        "DEBUG": "0",
        "SECRET_KEY": "x" * 64 + "-a-long-random-production-like-secret-value",
        "ALLOWED_HOSTS": "portal.example.com",
    }
    # Test-only switches (browser tests set DJANGO_ALLOW_ASYNC_UNSAFE) are not production.
    env = {k: v for k, v in os.environ.items() if k not in {"DEBUG", "DJANGO_ALLOW_ASYNC_UNSAFE"}}
    env.update(production)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- the floor plan: import contracts and budgets -------------------------------------------
# The portal's own packages (tests, benchmarks and cloudsim are not the portal).
PORTAL_PACKAGES = (
    "accounts",
    "api",
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
PROJECT_PACKAGES = (*PORTAL_PACKAGES, "cloudsim", "tests", "benchmarks")
# delegations is split into rooms (its sub-packages); any other folder is one room.
SPLIT_FOLDERS = ("delegations",)
MAX_ROOM_SHARE = 0.20
BIG_MODULE_LINES = 800
MAX_BIG_MODULES = 2
MAX_FUNCTION_LEVEL_IMPORTS = 3


def test_the_import_contracts_hold() -> None:
    # The contracts (layers, cloudsim apart) live in pyproject.toml's [tool.importlinter].
    result = _run(str(BIN / "lint-imports"), "--no-cache", "--no-logo")
    assert result.returncode == 0, result.stdout + result.stderr


def import_cycles(graph: Any, modules: Iterable[str]) -> list[list[str]]:
    """Every set of modules that import each other round in a circle (strongly connected
    components of more than one module), found with Tarjan's algorithm."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph.find_modules_directly_imported_by(module):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for module in sorted(modules):
        if module not in index:
            visit(module)
    return cycles


def test_no_module_imports_itself_round_a_circle() -> None:
    # The layers contract stops circles between floors; this one stops them inside a floor.
    import grimp

    graph = grimp.build_graph(*PORTAL_PACKAGES, exclude_type_checking_imports=True)
    assert import_cycles(graph, graph.modules) == []


def test_the_circle_check_sees_a_circle() -> None:
    class Graph:
        edges: ClassVar[dict[str, set[str]]] = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

        def find_modules_directly_imported_by(self, module: str) -> set[str]:
            return self.edges[module]

    assert import_cycles(Graph(), Graph.edges) == [["a", "b", "c"]]


def _portal_modules(root: Path) -> list[Path]:
    return sorted(
        path.relative_to(root)
        for package in PORTAL_PACKAGES
        for path in (root / package).rglob("*.py")
        if "migrations" not in path.relative_to(root).parts
    )


def _room(module: Path) -> str:
    if module.parts[0] in SPLIT_FOLDERS and len(module.parts) > 2:
        return "/".join(module.parts[:2])
    return module.parts[0]


def _line_count(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def _oversized_rooms(root: Path) -> dict[str, float]:
    lines: dict[str, int] = {}
    for module in _portal_modules(root):
        lines[_room(module)] = lines.get(_room(module), 0) + _line_count(root / module)
    total = sum(lines.values()) or 1
    return {room: n / total for room, n in lines.items() if n / total > MAX_ROOM_SHARE}


def _big_modules(root: Path) -> dict[str, int]:
    counts = {str(module): _line_count(root / module) for module in _portal_modules(root)}
    return {module: n for module, n in counts.items() if n > BIG_MODULE_LINES}


def _is_project_import(node: ast.Import | ast.ImportFrom) -> bool:
    if isinstance(node, ast.ImportFrom):
        names = [node.module or ""] if node.level == 0 else ["relative"]
    else:
        names = [alias.name for alias in node.names]
    return any(name == "relative" or name.split(".")[0] in PROJECT_PACKAGES for name in names)


def _says_why(lines: list[str], lineno: int) -> bool:
    """A comment on the import's line or the line above that is more than a linter directive."""
    for text in (lines[lineno - 1], lines[lineno - 2] if lineno > 1 else ""):
        _, hash_, comment = text.partition("#")
        words = re.sub(r"noqa(:\s*[A-Z]+[0-9]+(,\s*[A-Z]+[0-9]+)*)?", "", comment).strip(" #()")
        if hash_ and words:
            return True
    return False


def _function_level_imports(root: Path) -> dict[str, bool]:
    """Every import of the project's own modules inside a function: `path:line` → says why."""
    found: dict[str, bool] = {}
    for module in _portal_modules(root):
        text = (root / module).read_text(encoding="utf-8")
        lines = text.splitlines()
        for function in ast.walk(ast.parse(text, filename=str(module))):
            if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(function):
                if isinstance(node, (ast.Import, ast.ImportFrom)) and _is_project_import(node):
                    found[f"{module}:{node.lineno}"] = _says_why(lines, node.lineno)
    return found


# "issue 14" means nothing to whoever reads the code next: a comment says why, in words.
ISSUE_CITATION = re.compile(r"\b[Ii]ssues? #?\d+\b")


def _issue_citations(root: Path) -> list[str]:
    """`path:line` of every line of the portal's code (its modules, templates, styles and
    scripts, and pyproject.toml's contracts) that cites an issue by number."""
    files = [root / module for module in _portal_modules(root)]
    for folder, pattern in (("templates", "*.html"), ("static", "*.css"), ("static", "*.js")):
        files += sorted((root / folder).rglob(pattern))
    files += [path for path in (root / "pyproject.toml",) if path.exists()]
    return [
        f"{path.relative_to(root)}:{number}"
        for path in files
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if ISSUE_CITATION.search(line)
    ]


def test_no_comment_cites_an_issue_number() -> None:
    assert _issue_citations(ROOT) == []


def test_floor_plan_budgets() -> None:
    # Every feature lands in a room: none may grow back into the house it used to be.
    problems = [
        f"{room} holds {share:.0%} of the portal's lines"
        for room, share in _oversized_rooms(ROOT).items()
    ]
    big = _big_modules(ROOT)
    if len(big) > MAX_BIG_MODULES:
        problems.append(f"{len(big)} modules over {BIG_MODULE_LINES} lines: {big}")
    # An import inside a function usually dodges an import circle the layers should prevent.
    imports = _function_level_imports(ROOT)
    if len(imports) > MAX_FUNCTION_LEVEL_IMPORTS:
        problems.append(f"{len(imports)} function-level imports: {sorted(imports)}")
    problems += [
        f"{place}: say why on the line or above" for place, why in imports.items() if not why
    ]
    assert not problems, "\n".join(problems)


def test_the_budget_checks_see_what_they_count(tmp_path: Path) -> None:
    (tmp_path / "delegations" / "worker").mkdir(parents=True)
    (tmp_path / "delegations" / "migrations").mkdir()
    (tmp_path / "core").mkdir()
    (tmp_path / "delegations" / "migrations" / "0001_initial.py").write_text("x = 1\n" * 5000)
    (tmp_path / "core" / "kit.py").write_text("x = 1\n" * 100)
    (tmp_path / "delegations" / "urls.py").write_text("x = 1\n" * 100)
    (tmp_path / "delegations" / "worker" / "engine.py").write_text(
        "def run() -> None:\n"
        "    from delegations import urls\n"
        "\n"
        "    # why: the tasks import this module\n"
        "    from core.kit import x  # noqa: F401\n"
        "    import json\n"
        "    x = 1\n"
        "    from core import kit  # noqa: F401\n" + "y = 2\n" * 900
    )
    (tmp_path / "static" / "css").mkdir(parents=True)
    (tmp_path / "static" / "css" / "site.css").write_text("/* Fleets (issue 12) */\n")
    (tmp_path / "core" / "why.py").write_text('"""Tissue 5 is not an issue."""\n# see Issue #7\n')
    assert _issue_citations(tmp_path) == ["core/why.py:2", "static/css/site.css:1"]
    assert _oversized_rooms(tmp_path).keys() == {"delegations/worker"}
    assert _big_modules(tmp_path) == {"delegations/worker/engine.py": 908}
    assert _function_level_imports(tmp_path) == {
        "delegations/worker/engine.py:2": False,
        "delegations/worker/engine.py:5": True,
        "delegations/worker/engine.py:8": False,
    }
