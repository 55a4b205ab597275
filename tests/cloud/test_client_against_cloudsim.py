"""cloud.client with the official SDKs against a real cloudsim process.

Each test works in fresh accounts of its own; the session emulator is shared. Endpoints come
from Django settings (override_settings), exactly as in production.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from django.test import override_settings

from cloud.client import CloudClient, CloudCredentials
from cloud.errors import CloudError, ErrorCategory
from cloud.policies import (
    account_root_arn,
    assume_role_policy_for,
    build_trust_policy,
    canonical_policy,
    description_with_marker,
    has_marker,
    merge_trust_policy,
    policy_to_text,
    read_only_ecs_session_policy,
    role_arn,
    role_session_name_for,
    trust_policy_equal,
    trust_policy_principals,
)
from delegations.role_plan import (
    ActualRole,
    AttachPolicy,
    CreateRole,
    DeleteRole,
    DesiredRole,
    DetachPolicy,
    Plan,
    UpdateRole,
    plan_role_reconciliation,
)

ECS_FULL = ("System", "AliyunECSFullAccess")
RAM_READ = ("System", "AliyunRAMReadOnlyAccess")


@dataclass
class Recorder:
    intents: list[dict] = field(default_factory=list)
    calls: list[dict] = field(default_factory=list)

    def intent(self, **kwargs) -> None:
        self.intents.append(kwargs)

    def call(self, **kwargs) -> None:
        self.calls.append(kwargs)


@dataclass
class Account:
    uid: str
    alias: str
    credentials: CloudCredentials

    @property
    def root(self) -> str:
        return account_root_arn(self.uid)


@pytest.fixture
def cloud(cloudsim) -> Iterator:
    with override_settings(
        ALIBABA_RAM_ENDPOINT=cloudsim.endpoint,
        ALIBABA_STS_ENDPOINT=cloudsim.endpoint,
        ALIBABA_CLOUD_PROTOCOL="http",
        ALIBABA_CLOUD_CONNECT_TIMEOUT_MS=2000,
        ALIBABA_CLOUD_READ_TIMEOUT_MS=5000,
    ):
        yield cloudsim


@pytest.fixture
def new_account(cloud):
    def create() -> Account:
        created = cloud.create_account()
        root = created["root"]
        return Account(
            created["uid"],
            created["alias"],
            CloudCredentials(root["access_key_id"], root["access_key_secret"]),
        )

    return create


def user_credentials(cloudsim, account: Account, name: str) -> CloudCredentials:
    user = cloudsim.create_user(account.uid, name)
    return CloudCredentials(user["access_key_id"], user["access_key_secret"])


def unique(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(3)}"


def calls_of(cloudsim, seq: int, action: str) -> list[dict]:
    return [c for c in cloudsim.calls(seq) if c["action"] == action]


def mutating_calls_since(cloudsim, seq: int, account: str) -> list[dict]:
    return [c for c in cloudsim.calls(seq) if c["mutating"] and c.get("account") == account]


# --- identity, roles, policies -----------------------------------------------------------------
def test_caller_identity_names_the_account(new_account) -> None:
    owner = new_account()
    identity = CloudClient(owner.credentials).get_caller_identity()
    assert identity.account_id == owner.uid
    assert identity.arn == owner.root
    assert identity.request_id


def test_role_lifecycle_and_entity_answers(new_account) -> None:
    owner, partner = new_account(), new_account()
    client = CloudClient(owner.credentials)
    name = unique("ecs-admin")
    assert client.get_role(name) is None

    created = client.create_role(
        name,
        trust_document=build_trust_policy({partner.root}),
        description=description_with_marker("ECS for partners"),
        max_session_duration=3600,
    )
    assert created.arn == role_arn(owner.uid, name)
    read = client.get_role(name)
    assert read is not None and has_marker(read.description)
    assert trust_policy_principals(read.trust_document).ram == {partner.root}
    assert read.max_session_duration == 3600

    with pytest.raises(CloudError) as again:
        client.create_role(
            name,
            trust_document=build_trust_policy({partner.root}),
            description="x",
            max_session_duration=3600,
        )
    assert again.value.is_already_exists and again.value.code == "EntityAlreadyExists.Role"

    other = account_root_arn("99887766")
    merged = merge_trust_policy(
        read.trust_document, managed_wanted={partner.root, other}, managed_all_known=set()
    )
    updated = client.update_role_trust(name, merged)
    assert trust_policy_equal(updated.trust_document, merged)
    settings_changed = client.update_role(
        name, max_session_duration=7200, description=description_with_marker("new words")
    )
    assert settings_changed.max_session_duration == 7200
    assert trust_policy_principals(client.get_role(name).trust_document).ram == {
        partner.root,
        other,
    }

    assert client.list_policies_for_role(name) == []
    client.attach_policy_to_role(role_name=name, policy_type="System", policy_name=ECS_FULL[1])
    assert [p.key for p in client.list_policies_for_role(name)] == [ECS_FULL]
    with pytest.raises(CloudError) as twice:
        client.attach_policy_to_role(role_name=name, policy_type="System", policy_name=ECS_FULL[1])
    assert twice.value.is_already_exists and twice.value.code == "EntityAlreadyExists.Role.Policy"

    with pytest.raises(CloudError) as conflict:
        client.delete_role(name)
    assert conflict.value.is_delete_conflict and conflict.value.permanent

    client.detach_policy_from_role(role_name=name, policy_type="System", policy_name=ECS_FULL[1])
    with pytest.raises(CloudError) as detached:
        client.detach_policy_from_role(
            role_name=name, policy_type="System", policy_name=ECS_FULL[1]
        )
    assert detached.value.is_not_found and detached.value.code == "EntityNotExist.Role.Policy"

    assert client.delete_role(name)
    assert client.get_role(name) is None
    with pytest.raises(CloudError) as gone:
        client.delete_role(name)
    assert gone.value.code == "EntityNotExist.Role" and gone.value.http_status == 404


def test_bad_values_are_refused_by_the_cloud_too(new_account) -> None:
    """A policy the portal would send is well-formed; the cloud's own refusals map cleanly."""
    client = CloudClient(new_account().credentials)
    with pytest.raises(CloudError) as missing_policy:
        client.attach_policy_to_role(
            role_name=unique("none"), policy_type="System", policy_name="NoSuchPolicy"
        )
    assert missing_policy.value.is_not_found and missing_policy.value.permanent


def test_custom_policies_and_versions(new_account) -> None:
    client = CloudClient(new_account().credentials)
    system = client.list_policies("System")
    assert ECS_FULL in {p.key for p in system}
    assert all(p.policy_type == "System" for p in system)

    name = unique("portal-assume")
    first = assume_role_policy_for(["acs:ram::11223344:role/ecs-admin"])
    created = client.create_policy(policy_name=name, document=first, description="managed")
    assert created.key == ("Custom", name)
    assert client.get_policy(policy_type="Custom", policy_name=name).document is not None

    second = assume_role_policy_for(
        ["acs:ram::11223344:role/ecs-admin", "acs:ram::11223344:role/rds-ops"]
    )
    version = client.create_policy_version(policy_name=name, document=second)
    assert version.is_default
    fetched = client.get_policy(policy_type="Custom", policy_name=name)
    assert fetched.default_version == version.version_id
    assert canonical_policy(fetched.document, trust=False) == second
    versions = client.list_policy_versions(policy_type="Custom", policy_name=name)
    assert {v.version_id for v in versions} >= {"v1", version.version_id}
    for _ in range(6):  # past the 5-version limit, only with rotation
        client.create_policy_version(policy_name=name, document=first, rotate=True)
    assert len(client.list_policy_versions(policy_type="Custom", policy_name=name)) <= 5
    assert {p.policy_name for p in client.list_policies("Custom")} == {name}

    with pytest.raises(CloudError) as versions_left:
        client.delete_policy(name)
    assert versions_left.value.is_delete_conflict
    client.delete_policy(name, cascade=True)
    assert client.get_policy(policy_type="Custom", policy_name=name) is None


# --- the partner side: users, AssumeRole ----------------------------------------------------------
def test_partner_user_assumes_the_role_with_a_least_privilege_policy(cloud, new_account) -> None:
    owner, partner = new_account(), new_account()
    alice = user_credentials(cloud, partner, "Alice")
    bob = user_credentials(cloud, partner, "Bob")
    owner_client, partner_client = CloudClient(owner.credentials), CloudClient(partner.credentials)

    assert {u.user_name for u in partner_client.list_users()} == {"Alice", "Bob"}
    assert partner_client.get_user("Alice").user_name == "Alice"
    assert partner_client.get_user("Carol") is None

    name = unique("reader")
    arn = owner_client.create_role(
        name,
        trust_document=build_trust_policy({partner.root}),
        description=description_with_marker("read RAM"),
        max_session_duration=3600,
    ).arn
    owner_client.attach_policy_to_role(
        role_name=name, policy_type="System", policy_name=RAM_READ[1]
    )

    policy = unique("portal-assume")
    partner_client.create_policy(policy_name=policy, document=assume_role_policy_for([arn]))
    partner_client.attach_policy_to_user(
        user_name="Alice", policy_type="Custom", policy_name=policy
    )
    assert [p.key for p in partner_client.list_policies_for_user("Alice")] == [("Custom", policy)]

    session_name = role_session_name_for("alice@company-b")
    issued = CloudClient(alice).assume_role(
        role_arn=arn, session_name=session_name, duration_seconds=900
    )
    assert issued.access_key_id.startswith("STS.") and issued.request_id
    assert issued.assumed_role_arn == f"{arn}/{session_name}"
    remaining = (issued.expiration - datetime.now(UTC)).total_seconds()
    assert 800 < remaining <= 900
    session = CloudClient(
        CloudCredentials(issued.access_key_id, issued.access_key_secret, issued.security_token)
    )
    assert session.get_caller_identity().arn.endswith(f"assumed-role/{name}/{session_name}")
    assert session.get_role(name).name == name  # the role's RAM read permission works

    # A session policy narrows it: ECS-read only, so reading RAM is refused.
    narrowed = CloudClient(alice).assume_role(
        role_arn=arn,
        session_name=session_name,
        duration_seconds=900,
        policy=policy_to_text(read_only_ecs_session_policy()),
    )
    narrow_client = CloudClient(
        CloudCredentials(
            narrowed.access_key_id, narrowed.access_key_secret, narrowed.security_token
        )
    )
    with pytest.raises(CloudError) as refused:
        narrow_client.get_role(name)
    assert refused.value.code == "NoPermission" and refused.value.permanent

    with pytest.raises(CloudError) as bob_refused:
        CloudClient(bob).assume_role(role_arn=arn, session_name="bob@b", duration_seconds=900)
    assert bob_refused.value.code == "NoPermission" and bob_refused.value.http_status == 403

    partner_client.detach_policy_from_user(
        user_name="Alice", policy_type="Custom", policy_name=policy
    )
    with pytest.raises(CloudError):
        CloudClient(alice).assume_role(
            role_arn=arn, session_name=session_name, duration_seconds=900
        )


def test_too_long_a_session_is_refused_by_sts(new_account, cloud) -> None:
    owner = new_account()
    client = CloudClient(owner.credentials)
    user = user_credentials(cloud, owner, "ops")
    name = unique("short")
    arn = client.create_role(
        name,
        trust_document=build_trust_policy({owner.root}),
        description=description_with_marker(""),
        max_session_duration=3600,
    ).arn
    policy = unique("assume")
    client.create_policy(policy_name=policy, document=assume_role_policy_for([arn]))
    client.attach_policy_to_user(user_name="ops", policy_type="Custom", policy_name=policy)
    assert CloudClient(user).assume_role(role_arn=arn, session_name="ops@a", duration_seconds=3600)
    with pytest.raises(CloudError) as caught:
        CloudClient(user).assume_role(role_arn=arn, session_name="ops@a", duration_seconds=7200)
    assert caught.value.code == "InvalidParameter.DurationSeconds"
    assert caught.value.category is ErrorCategory.VALIDATION and caught.value.permanent


# --- credentials that do not work ---------------------------------------------------------------
def test_wrong_secret_and_unknown_key_are_configuration_errors(new_account) -> None:
    owner = new_account()
    wrong = CloudCredentials(owner.credentials.access_key_id, "not-the-secret")
    with pytest.raises(CloudError) as bad_signature:
        CloudClient(wrong).get_caller_identity()
    assert bad_signature.value.code == "SignatureDoesNotMatch"
    assert bad_signature.value.is_configuration and bad_signature.value.permanent
    with pytest.raises(CloudError) as unknown:
        CloudClient(CloudCredentials("LTAInobodyhasthis", "x")).get_role("r")
    assert unknown.value.code.startswith("InvalidAccessKeyId")
    assert unknown.value.is_configuration


# --- faults: one request per call, transient classification ------------------------------------
@pytest.mark.parametrize(
    ("fault", "category", "code", "status", "retry_after"),
    [
        ("GetRole:throttle", ErrorCategory.THROTTLING, "Throttling.User", 400, None),
        ("GetRole:throttle429:1:750", ErrorCategory.THROTTLING, "Throttling.User", 429, 750),
        ("GetRole:internal", ErrorCategory.SERVER, "InternalError", 500, None),
        ("GetRole:badgateway", ErrorCategory.TRANSPORT, None, None, None),
        ("GetRole:drop", ErrorCategory.TRANSPORT, None, None, None),
        ("GetRole:hang:1:2", ErrorCategory.TRANSPORT, None, None, None),
    ],
)
def test_transient_faults_are_classified_and_never_retried_by_the_sdk(
    cloudsim_faults, cloud, new_account, fault, category, code, status, retry_after
) -> None:
    owner = new_account()
    recorder = Recorder()
    with override_settings(ALIBABA_CLOUD_READ_TIMEOUT_MS=700):
        client = CloudClient(owner.credentials, call_recorder=recorder.call)
    before = cloudsim_faults.last_call_seq()
    cloudsim_faults.set_faults(fault)
    with pytest.raises(CloudError) as caught:
        client.get_role("ecs-admin")
    cloudsim_faults.clear_faults()
    error = caught.value
    assert (error.category, error.code, error.http_status) == (category, code, status)
    assert error.retry_after_ms == retry_after
    assert error.permanent is False
    if code is not None:
        assert error.request_id  # the cloud's id for the failed call
    # cloudsim logs a hung call when the hang ends, so wait for the entry; a retry by the SDK
    # would have been sent within one read timeout of the first and logged soon after it.
    deadline = time.monotonic() + 5
    while not calls_of(cloudsim_faults, before, "GetRole") and time.monotonic() < deadline:
        time.sleep(0.05)
    if "hang" in fault:
        time.sleep(1.0)
    assert len(calls_of(cloudsim_faults, before, "GetRole")) == 1
    assert recorder.calls == [
        {
            "action": "GetRole",
            "target": "role/ecs-admin",
            "request_id": error.request_id,
            "outcome": "failed",
            "error_code": code or category.value,
        }
    ]
    assert client.get_role("ecs-admin") is None  # the next call goes through


def test_a_lost_response_after_commit_is_transient_and_visible_on_reread(
    cloudsim_faults, cloud, new_account
) -> None:
    owner, partner = new_account(), new_account()
    client = CloudClient(owner.credentials)
    name = unique("lost")
    cloudsim_faults.set_faults({"action": "CreateRole", "kind": "lost", "count": 1})
    with pytest.raises(CloudError) as caught:
        client.create_role(
            name,
            trust_document=build_trust_policy({partner.root}),
            description=description_with_marker("x"),
            max_session_duration=3600,
        )
    assert caught.value.transient
    role = client.get_role(name)
    assert role is not None and has_marker(role.description)  # done, and provably ours


# --- the planner and the client together: apply, verify, idempotent -----------------------------
def apply_plan(client: CloudClient, plan: Plan) -> None:
    for op in plan.operations:
        if isinstance(op, CreateRole):
            client.create_role(
                op.role_name,
                trust_document=op.trust_document,
                description=op.description,
                max_session_duration=op.max_session_duration,
            )
        elif isinstance(op, UpdateRole):
            client.update_role(
                op.role_name,
                trust_document=op.trust_document,
                description=op.description,
                max_session_duration=op.max_session_duration,
            )
        elif isinstance(op, AttachPolicy):
            client.attach_policy_to_role(
                role_name=op.role_name, policy_type=op.policy_type, policy_name=op.policy_name
            )
        elif isinstance(op, DetachPolicy):
            client.detach_policy_from_role(
                role_name=op.role_name, policy_type=op.policy_type, policy_name=op.policy_name
            )
        elif isinstance(op, DeleteRole):
            client.delete_role(op.role_name)


def read_actual(client: CloudClient, name: str) -> ActualRole | None:
    role = client.get_role(name)
    return (
        None if role is None else ActualRole.from_cloud(role, client.list_policies_for_role(name))
    )


def reconcile(client: CloudClient, desired: DesiredRole) -> Plan:
    plan = plan_role_reconciliation(actual=read_actual(client, desired.role_name), desired=desired)
    assert isinstance(plan, Plan), plan
    apply_plan(client, plan)
    verify = plan_role_reconciliation(
        actual=read_actual(client, desired.role_name), desired=desired
    )
    assert isinstance(verify, Plan) and verify.is_empty, verify
    return plan


def test_reconciling_twice_makes_no_second_mutation(cloud, new_account) -> None:
    owner, b, c = new_account(), new_account(), new_account()
    client = CloudClient(owner.credentials)
    name = unique("ecs-admin")
    desired = DesiredRole(
        role_name=name,
        owner_account_uid=owner.uid,
        managed_principals_wanted=frozenset({b.root}),
        managed_principals_known=frozenset({b.root}),
        policies_wanted=frozenset({ECS_FULL}),
        managed_policies_known=frozenset({ECS_FULL}),
        description="ECS for partners",
    )
    first = reconcile(client, desired)
    assert [op.action for op in first.operations] == ["CreateRole", "AttachPolicyToRole"]

    before = cloud.last_call_seq()
    assert reconcile(client, desired).is_empty
    assert mutating_calls_since(cloud, before, owner.uid) == []

    # Someone adds a principal by hand; the portal adds C and revokes B and keeps it.
    by_hand = "acs:ram::55555555:user/ops"
    current = client.get_role(name).trust_document
    client.update_role_trust(
        name, merge_trust_policy(current, managed_wanted={by_hand}, managed_all_known=set())
    )
    both = DesiredRole(
        **{
            **desired.__dict__,
            "managed_principals_wanted": frozenset({c.root}),
            "managed_principals_known": frozenset({b.root, c.root}),
        }
    )
    plan = reconcile(client, both)
    assert [op.action for op in plan.operations] == ["UpdateRole"]
    assert trust_policy_principals(client.get_role(name).trust_document).ram == {c.root, by_hand}

    # The last partner goes; someone unmanaged is still trusted, so the role stays.
    gone = DesiredRole(**{**both.__dict__, "managed_principals_wanted": frozenset()})
    reconcile(client, gone)
    assert trust_policy_principals(client.get_role(name).trust_document).ram == {by_hand}

    # Without them, the role is detached and deleted, detaches first.
    client.update_role_trust(
        name,
        merge_trust_policy(
            client.get_role(name).trust_document,
            managed_wanted={c.root},
            managed_all_known={by_hand},
        ),
    )
    before = cloud.last_call_seq()
    plan = reconcile(client, gone)
    assert [op.action for op in plan.operations] == ["DetachPolicyFromRole", "DeleteRole"]
    assert [c["action"] for c in mutating_calls_since(cloud, before, owner.uid)] == [
        "DetachPolicyFromRole",
        "DeleteRole",
    ]
    assert client.get_role(name) is None


def test_a_kept_role_is_parked_in_a_trust_policy_the_cloud_accepts(new_account) -> None:
    owner, b = new_account(), new_account()
    client = CloudClient(owner.credentials)
    name = unique("kept")
    desired = DesiredRole(
        role_name=name,
        owner_account_uid=owner.uid,
        managed_principals_wanted=frozenset({b.root}),
        managed_principals_known=frozenset({b.root}),
        delete_when_empty=False,
    )
    reconcile(client, desired)
    reconcile(client, DesiredRole(**{**desired.__dict__, "managed_principals_wanted": frozenset()}))
    assert trust_policy_principals(client.get_role(name).trust_document).ram == {owner.root}


def test_a_foreign_same_named_role_is_refused(new_account) -> None:
    owner, b = new_account(), new_account()
    client = CloudClient(owner.credentials)
    name = unique("handmade")
    client.create_role(
        name,
        trust_document=build_trust_policy({b.root}),
        description="made in the console",
        max_session_duration=3600,
    )
    result = plan_role_reconciliation(
        actual=read_actual(client, name),
        desired=DesiredRole(
            role_name=name, owner_account_uid=owner.uid, managed_principals_wanted={b.root}
        ),
    )
    assert not isinstance(result, Plan) and result.code == "role_not_created_by_portal"


# --- recording and secrecy ----------------------------------------------------------------------
def test_recorders_see_every_call_with_the_clouds_request_ids(cloud, new_account) -> None:
    owner, b = new_account(), new_account()
    recorder = Recorder()
    client = CloudClient(
        owner.credentials, call_recorder=recorder.call, intent_recorder=recorder.intent
    )
    name = unique("rec")
    before = cloud.last_call_seq()
    client.get_role(name)
    client.create_role(
        name,
        trust_document=build_trust_policy({b.root}),
        description=description_with_marker(""),
        max_session_duration=3600,
    )
    client.delete_role(name)
    logged = [c for c in cloud.calls(before) if c.get("account") == owner.uid]
    assert [(c["action"], c["request_id"]) for c in logged] == [
        (r["action"], r["request_id"]) for r in recorder.calls
    ]
    assert [r["outcome"] for r in recorder.calls] == ["failed", "succeeded", "succeeded"]
    assert recorder.calls[0]["error_code"] == "EntityNotExist.Role"
    assert recorder.intents == [
        {"action": "CreateRole", "target": f"role/{name}"},
        {"action": "DeleteRole", "target": f"role/{name}"},
    ]


def test_no_secret_in_logs_reprs_errors_or_the_call_log(cloud, new_account, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    owner, partner = new_account(), new_account()
    alice = user_credentials(cloud, partner, "Alice")
    owner_client = CloudClient(owner.credentials)
    name = unique("secret")
    arn = owner_client.create_role(
        name,
        trust_document=build_trust_policy({partner.root}),
        description=description_with_marker(""),
        max_session_duration=3600,
    ).arn
    partner_client = CloudClient(partner.credentials)
    policy = unique("assume")
    partner_client.create_policy(policy_name=policy, document=assume_role_policy_for([arn]))
    partner_client.attach_policy_to_user(
        user_name="Alice", policy_type="Custom", policy_name=policy
    )
    before = cloud.last_call_seq()
    issued = CloudClient(alice).assume_role(
        role_arn=arn, session_name="alice@b", duration_seconds=900
    )
    session = CloudClient(
        CloudCredentials(issued.access_key_id, issued.access_key_secret, issued.security_token)
    )
    with pytest.raises(CloudError) as denied:
        session.delete_role(name)
    secrets_ = [
        owner.credentials.access_key_secret,
        alice.access_key_secret,
        issued.access_key_secret,
        issued.security_token,
    ]
    texts = [
        caplog.text,
        repr(issued),
        str(issued),
        repr(session),
        repr(alice),
        repr(denied.value),
        str(denied.value),
        repr(cloud.calls(before)),
    ]
    for secret in secrets_:
        for text in texts:
            assert secret not in text
    assert "cloud call AssumeRole" in caplog.text
