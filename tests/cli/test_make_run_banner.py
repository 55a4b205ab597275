"""`make run` tells people how to try pap from the checkout."""

import subprocess
import sys
from pathlib import Path

from demo import embedded

ROOT = Path(__file__).resolve().parents[2]


def test_the_banner_shows_how_to_try_pap(tmp_path: Path) -> None:
    config = embedded.load_config({"PORTAL_DATA_DIR": str(tmp_path), "PORTAL_PORT": "18005"})
    text = "\n".join(
        embedded.banner(config, seed_output=[], console_sign_ins=[], operator_url="x", env={})
    )
    assert "-m pap login --portal http://127.0.0.1:18005/" in text
    assert "http://127.0.0.1:18005/api/v1/docs/" in text


def test_pap_runs_from_the_checkout_without_installing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pap", "--help"],
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "cli"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "configure-aliyun" in result.stdout
