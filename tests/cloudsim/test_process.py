"""cloudsim as a process: the CLI commands, --demo, persistence across restarts, startup flags."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from alibabacloud_ram20150501 import models as ram
from alibabacloud_tea_openapi.exceptions import ServerException

from tests.cloudsim.conftest import Keys, Sdk, trust_policy
from tests.fixtures.cloudsim import REPO_ROOT, CloudSim, CloudSimError


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cloudsim", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def sim_factory(tmp_path):
    started: list[CloudSim] = []

    def start(*, data_dir: Path | None = None, demo: bool = False, args=(), env=None) -> CloudSim:
        sim = CloudSim(
            data_dir=data_dir or tmp_path / "data", demo=demo, extra_args=list(args), env=env
        )
        started.append(sim)
        return sim.start()

    yield start
    for sim in started:
        sim.stop()


def test_management_commands_then_serve(tmp_path, sim_factory):
    data = str(tmp_path / "data")
    account = _cli("account", "create", "--data", data, "--uid", "5551234", "--alias", "acme")
    assert account.returncode == 0, account.stderr
    created = json.loads(account.stdout)
    assert (created["uid"], created["alias"]) == ("5551234", "acme")
    assert created["root"]["access_key_id"].startswith("LTAI")

    user = _cli(
        "user",
        "create",
        "--data",
        data,
        "--uid",
        "5551234",
        "--name",
        "ops",
        "--password",
        "Secret-123",
    )
    assert user.returncode == 0, user.stderr
    user_doc = json.loads(user.stdout)
    assert user_doc["principal_name"] == "ops@acme.onaliyun.com" and user_doc["console_login"]
    assert "Secret-123" not in user.stdout

    key = _cli("access-key", "create", "--data", data, "--uid", "5551234", "--user", "ops")
    assert key.returncode == 0, key.stderr
    key_doc = json.loads(key.stdout)

    for args, message in (
        (("account", "create", "--data", data, "--uid", "5551234", "--alias", "other"), "exists"),
        (("account", "create", "--data", data, "--uid", "12ab", "--alias", "x-y-z"), "uid"),
        (("account", "create", "--data", data, "--uid", "777", "--alias", "acme"), "alias"),
        (("user", "create", "--data", data, "--uid", "999", "--name", "x"), "does not exist"),
        (("user", "create", "--data", data, "--uid", "5551234", "--name", "bad name"), "name"),
        (("access-key", "create", "--data", data, "--uid", "5551234", "--user", "ghost"), "ghost"),
    ):
        failed = _cli(*args)
        assert failed.returncode == 2
        assert message in json.loads(failed.stderr)["error"]

    sim = sim_factory(data_dir=Path(data))
    sdk = Sdk(sim)
    ops = Keys(key_doc["access_key_id"], key_doc["access_key_secret"])
    assert sdk.caller(ops).arn == "acs:ram::5551234:user/ops"
    root = Keys(created["root"]["access_key_id"], created["root"]["access_key_secret"])
    assert sdk.caller(root).arn == "acs:ram::5551234:root"


def test_demo_seed_and_credentials_file(tmp_path, sim_factory):
    sim = sim_factory(demo=True)
    path = sim.data_dir / "demo-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    document = json.loads(path.read_text())
    assert document["endpoint"] == sim.url
    aliases = [a["alias"] for a in document["accounts"]]
    assert aliases == ["company-a", "company-b", "company-a-staging"]
    company_a, company_b, staging = document["accounts"]
    assert staging["uid"] == "11223355" and staging["users"] == []
    assert company_a["uid"] == "11223344" and company_a["users"] == []
    assert company_b["uid"] == "12345678"
    assert [u["name"] for u in company_b["users"]] == ["Alice", "Bob", "AAA", "portal-broker"]
    for entry in [company_a["root"], *company_b["users"]]:
        assert set(entry) >= {"access_key_id", "access_key_secret"}
    assert all(u["password"] for u in company_b["users"])
    assert set(company_a) == {"uid", "alias", "root", "users"}

    sdk = Sdk(sim)
    b_root = Keys(company_b["root"]["access_key_id"], company_b["root"]["access_key_secret"])
    for user in company_b["users"]:
        keys = Keys(user["access_key_id"], user["access_key_secret"])
        assert sdk.caller(keys).arn == f"acs:ram::12345678:user/{user['name']}"
        attached = (
            sdk.ram(b_root)
            .list_policies_for_user(ram.ListPoliciesForUserRequest(user_name=user["name"]))
            .body.policies.policy
        )
        # Staff have nothing until their admin grants it; the portal's broker manages RAM.
        # and runs runbooks through OOS.
        broker = ["AliyunRAMFullAccess", "AliyunOOSFullAccess"]
        expected = broker if user["name"] == "portal-broker" else []
        assert [p.policy_name for p in attached] == expected

    token_file = sim.data_dir / "operator-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert token_file.read_text().strip() == sim.operator_token


def test_state_survives_a_restart(sim_factory):
    sim = sim_factory(demo=True)
    sdk = Sdk(sim)
    a_root = Keys(*sim.root_key("company-a"))
    b_root = Keys(*sim.root_key("company-b"))
    alice = Keys(*sim.user_key("company-b", "Alice"))
    role = sdk.create_role(
        a_root, "ecs-admin", trust_policy("acs:ram::12345678:root"), max_session_duration=7200
    ).body.role
    sdk.attach_to_role(a_root, "ecs-admin", "AliyunECSFullAccess")
    sdk.attach_to_user(b_root, "Alice", "AliyunSTSAssumeRoleAccess")
    session = sdk.assume(alice, role.arn, "before-restart")
    token = sim.operator_token
    old_credentials = sim.credentials

    sim.restart()
    sdk = Sdk(sim)
    assert sim.operator_token == token
    assert sim.credentials["accounts"] == old_credentials["accounts"]
    assert sim.credentials["endpoint"] == sim.url
    fetched = sdk.ram(a_root).get_role(ram.GetRoleRequest(role_name="ecs-admin")).body.role
    assert (fetched.role_id, fetched.max_session_duration) == (role.role_id, 7200)
    [policy] = (
        sdk.ram(a_root)
        .list_policies_for_role(ram.ListPoliciesForRoleRequest(role_name="ecs-admin"))
        .body.policies.policy
    )
    assert policy.policy_name == "AliyunECSFullAccess"
    assert sdk.caller(session).arn == "acs:ram::11223344:assumed-role/ecs-admin/before-restart"
    assert sdk.assume(alice, role.arn, "after-restart")
    # The call log continues its numbering across the restart.
    numbers = [c["seq"] for c in sim.calls()]
    assert numbers == sorted(numbers) and len(numbers) == len(set(numbers))


def test_faults_from_flags_and_environment(sim_factory):
    sim = sim_factory(
        demo=True,
        args=[
            "--fault",
            "GetCallerIdentity:internal",
            "--seed",
            "11",
            "--latency-ms",
            "1-2",
            "--operator-token",
            "my-operator-token",
        ],
        env={"CLOUDSIM_FAULTS": "GetRole:throttle:1,ListRoles:latency:1:5"},
    )
    assert sim.operator_token == "my-operator-token"
    state = sim.request("GET", "/_sim/faults")
    assert state["seed"] == 11 and state["latency_ms"] == "1-2"
    assert [(f["action"], f["kind"]) for f in state["faults"]] == [
        ("GetRole", "throttle"),
        ("ListRoles", "latency"),
        ("GetCallerIdentity", "internal"),
    ]
    with pytest.raises(ServerException):
        Sdk(sim).caller(Keys(*sim.root_key("company-a")))


def test_operator_token_from_environment(sim_factory):
    sim = sim_factory(env={"CLOUDSIM_OPERATOR_TOKEN": "from-env-token"})
    assert sim.operator_token == "from-env-token"


@pytest.mark.parametrize("spec", ["GetRole:nonsense", "GetRole", "GetRole:throttle:1.5"])
def test_bad_fault_flag_stops_startup(tmp_path, spec):
    result = _cli("--port", "0", "--data", str(tmp_path / "d"), "--fault", spec)
    assert result.returncode == 2
    assert "fault" in result.stderr.lower() or "probability" in result.stderr.lower()


def test_startup_failure_is_reported(tmp_path, sim_factory):
    first = sim_factory(data_dir=tmp_path / "one")
    port = int(first.endpoint.rsplit(":", 1)[1])
    second = CloudSim(data_dir=tmp_path / "two", demo=False)
    with pytest.raises(CloudSimError, match="did not start"):
        second.start(port)


def test_help_runs():
    result = _cli("--help")
    assert result.returncode == 0 and "--fault" in result.stdout
