"""Only the cloud door's SDK modules import the Alibaba Cloud SDKs.

The door (`cloud.client.CloudClient`) is assembled from one module per part of the API; each of
those may import the SDK, nothing else in the portal may: not `cloud.policies`, `cloud.errors`
or `cloud.console`, which must stay plain Python the rest of the portal can use freely.
"""

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
ALLOWED = {
    Path("cloud/sdk.py"),
    Path("cloud/sts.py"),
    Path("cloud/ram_roles.py"),
    Path("cloud/ram_policies.py"),
    Path("cloud/ram_users.py"),
    Path("cloud/actiontrail.py"),
    Path("cloud/oos.py"),
}


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


def test_only_the_cloud_doors_import_the_sdks() -> None:
    offenders = {
        str(relative): imports
        for relative in _portal_python_files()
        if relative not in ALLOWED and (imports := _sdk_imports(ROOT / relative))
    }
    assert offenders == {}


def test_the_allowed_modules_are_the_cloud_doors_and_each_imports_the_sdk() -> None:
    # A stale entry (a module renamed or emptied of SDK imports) would leave a hole in the list.
    files = _portal_python_files()
    assert Path("delegations/role_plan.py") in files
    for allowed in ALLOWED:
        assert allowed.parts[0] == "cloud" and allowed in files
        assert _sdk_imports(ROOT / allowed), f"{allowed} no longer imports the SDK"
    everything = [name for allowed in ALLOWED for name in _sdk_imports(ROOT / allowed)]
    assert any(name.startswith("alibabacloud_ram20150501") for name in everything)
    assert any(name.startswith("alibabacloud_sts20150401") for name in everything)


def test_the_client_that_callers_import_reaches_the_sdk_only_through_the_doors() -> None:
    assert _sdk_imports(ROOT / "cloud/client.py") == []
    for plain in ("cloud/policies.py", "cloud/errors.py", "cloud/console.py", "cloud/values.py"):
        assert Path(plain) not in ALLOWED


def test_the_check_catches_an_sdk_import_outside_the_doors(tmp_path: Path) -> None:
    stray = tmp_path / "stray.py"
    stray.write_text(
        "import importlib\n"
        "from alibabacloud_ram20150501 import models\n"
        "import Tea.exceptions\n"
        "importlib.import_module('alibabacloud_sts20150401.client')\n",
        encoding="utf-8",
    )
    assert _sdk_imports(stray) == [
        "alibabacloud_ram20150501",
        "Tea.exceptions",
        "alibabacloud_sts20150401.client",
    ]


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
