"""cloud/client.py is the only portal module that imports the Alibaba Cloud SDKs."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SDK_PACKAGES = ("alibabacloud_", "aliyunsdk", "Tea", "darabonba")
# cloudsim is a separate product (and imports no SDK); tests and benchmarks drive the SDKs.
EXEMPT_TOP_LEVEL = {
    "tests",
    "benchmarks",
    "cloudsim",
    ".venv",
    "var",
    "staticfiles",
    "node_modules",
}
ALLOWED = {Path("cloud/client.py")}


def _is_sdk(module: str | None) -> bool:
    if not module:
        return False
    top = module.split(".")[0]
    return top.startswith(SDK_PACKAGES[:2]) or top in SDK_PACKAGES[2:]


def _sdk_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names if _is_sdk(alias.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _is_sdk(node.module):
            found.append(node.module or "")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in {"import_module", "__import__"} and _is_sdk(str(node.args[0].value)):
                found.append(str(node.args[0].value))
    return found


def _portal_python_files() -> list[Path]:
    files = []
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT)
        if relative.parts[0] in EXEMPT_TOP_LEVEL or relative.parts[0].startswith("."):
            continue
        files.append(relative)
    return files


def test_only_the_cloud_client_imports_the_sdks() -> None:
    offenders = {
        str(relative): imports
        for relative in _portal_python_files()
        if relative not in ALLOWED and (imports := _sdk_imports(ROOT / relative))
    }
    assert offenders == {}


def test_the_check_sees_the_client_and_its_imports() -> None:
    files = _portal_python_files()
    assert Path("cloud/client.py") in files and Path("delegations/role_plan.py") in files
    imports = _sdk_imports(ROOT / "cloud/client.py")
    assert any(name.startswith("alibabacloud_ram20150501") for name in imports)
    assert any(name.startswith("alibabacloud_sts20150401") for name in imports)


def _imports_cloudsim(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(
            a.name.split(".")[0] == "cloudsim" for a in node.names
        ):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "cloudsim":
            return True
    return False


def test_the_cloud_adapter_never_imports_cloudsim() -> None:
    # The portal reaches cloudsim only through the SDKs, like any Alibaba Cloud endpoint.
    adapter = [ROOT / "cloud" / p.name for p in (ROOT / "cloud").glob("*.py")]
    adapter.append(ROOT / "delegations" / "role_plan.py")
    assert [str(p) for p in adapter if _imports_cloudsim(p)] == []
