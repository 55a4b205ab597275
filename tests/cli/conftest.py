"""`pap` against a live portal and cloudsim: company B's staff Alice holds an active,
assigned delegation of company A's role; pap runs as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from api.services import api_token_create
from delegations.models import Delegation
from tests.fixtures.partner import PartnerWorld

# pap from this checkout, whether or not `-e ./cli` is installed in the environment.
CLI_SOURCE = Path(__file__).resolve().parents[2] / "cli"


@dataclass
class Pap:
    world: PartnerWorld
    delegation: Delegation
    portal: str
    home: Path
    token: str

    @property
    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("ALIBABA_CLOUD_", "PAP_", "DJANGO_"))
        }
        env.update(
            {
                "PAP_CONFIG_DIR": str(self.home / "pap"),
                "PAP_NO_KEYRING": "1",
                "HOME": str(self.home),
                "NO_PROXY": "*",
                "PYTHONPATH": str(CLI_SOURCE),
            }
        )
        return env

    def sign_in(self, token: str | None = None, portal: str | None = None) -> None:
        config = self.home / "pap" / "config.json"
        config.parent.mkdir(parents=True, exist_ok=True)
        config.write_text(
            json.dumps({"portal": portal or self.portal, "token": token or self.token})
        )
        config.chmod(0o600)

    def run(self, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pap", *args],
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@pytest.fixture
def pap(partner_world_tx: PartnerWorld, live_server: Any, tmp_path: Path) -> Iterator[Pap]:
    world = partner_world_tx
    delegation = world.active_delegation()
    world.assign(delegation, world.alice)
    world.drain()
    token = api_token_create(
        user=world.alice,
        name="pap tests",
        scopes=["read", "request", "credentials"],
        expires_in_days=1,
        organisation=world.partner,
    ).raw
    helper = Pap(
        world=world, delegation=delegation, portal=live_server.url, home=tmp_path, token=token
    )
    helper.sign_in()
    yield helper
