"""The pure functions behind the history pages: trust-policy diffs, before → after, cloud
request ids, staff/credential event shapes, and text that cannot hide what it says."""

import datetime as dt
import json
from types import SimpleNamespace

import pytest
from django.utils import translation

from auditor.presentation import (
    ASSIGNED,
    CREDENTIAL_ISSUED,
    UNASSIGNED,
    classify_access_event,
    cloud_request_ids,
    credential_expiration,
    describe_event,
    mark_invisible,
    person_of,
    trust_policy_diff,
    value_changes,
)

B = "acs:ram::12345678:root"
C = "acs:ram::87654321:root"
ALICE = "acs:ram::12345678:user/alice"


def trust(*principals: str, services: tuple[str, ...] = ()) -> dict:
    principal: dict = {"RAM": list(principals)}
    if services:
        principal["Service"] = list(services)
    return {
        "Version": "1",
        "Statement": [{"Action": "sts:AssumeRole", "Effect": "Allow", "Principal": principal}],
    }


def event(**fields) -> SimpleNamespace:
    defaults = {
        "action": "member.added",
        "outcome": "success",
        "actor_id": None,
        "actor_label": "",
        "actor_organisation_label": "",
        "target_type": "",
        "target_id": "",
        "target_label": "",
        "before": None,
        "after": None,
        "metadata": {},
    }
    return SimpleNamespace(**{**defaults, **fields})


# --- trust policy diff -----------------------------------------------------------------------


def test_a_principal_added_to_a_trust_policy_keeps_the_others():
    diff = trust_policy_diff(trust(B), trust(B, C))
    assert diff.principals_added == (C,)
    assert diff.principals_removed == ()
    assert diff.principals_kept == (B,)
    assert diff.changed and diff.recognised


def test_removed_principals_and_services_are_named():
    diff = trust_policy_diff(trust(B, C, services=("oos.aliyuncs.com",)), trust(C))
    assert diff.principals_removed == ("Service: oos.aliyuncs.com", B)
    assert diff.principals_kept == (C,)


def test_documents_given_as_json_text_and_single_statements_are_read():
    before = json.dumps(trust(B))
    after = {"Statement": {"Effect": "Allow", "Principal": {"RAM": ALICE}}}
    diff = trust_policy_diff(before, after)
    assert diff.principals_added == (ALICE,)
    assert diff.principals_removed == (B,)


def test_deny_statements_are_not_mistaken_for_trust():
    after = trust(B)
    after["Statement"].append({"Effect": "Deny", "Principal": {"RAM": [C]}})
    assert trust_policy_diff(trust(B), after).principals_added == (f"Deny {C}",)


def test_policies_attached_and_detached_are_a_diff_too():
    before = {"policies": [{"type": "System", "name": "AliyunECSReadOnlyAccess"}]}
    after = {
        "policies": [
            {"type": "System", "name": "AliyunECSFullAccess"},
            "Custom:ops-extra",
        ],
        "trust_policy": trust(B),
    }
    diff = trust_policy_diff(before, after)
    assert diff.policies_added == ("AliyunECSFullAccess (System)", "Custom:ops-extra")
    assert diff.policies_removed == ("AliyunECSReadOnlyAccess (System)",)
    assert diff.principals_added == (B,)


def test_the_workers_change_summary_is_read_as_a_diff():
    summary = {"role_name": "ecs-admin", "principals_added": [C], "principals_removed": [B]}
    diff = trust_policy_diff(None, summary)
    assert (diff.principals_added, diff.principals_removed) == ((C,), (B,))


@pytest.mark.parametrize(
    "before, after",
    [
        (None, None),
        ({"status": "active"}, {"status": "revoked"}),
        ("not json {", "{also not"),
        ({"Statement": "nonsense"}, {"Statement": [1, "x", None]}),
        ([1, 2], {"principals": "not-a-list-but-one"}),
    ],
)
def test_anything_else_gives_a_diff_without_inventing_principals(before, after):
    diff = trust_policy_diff(before, after)
    assert all(isinstance(p, str) for p in diff.principals_added + diff.principals_removed)
    if not isinstance(after, dict) or "principals" not in after:
        assert not diff.changed


def test_identical_documents_are_no_change():
    diff = trust_policy_diff(trust(B, C), trust(C, B))
    assert not diff.changed and diff.principals_kept == (B, C)


# --- before → after --------------------------------------------------------------------------


def test_value_changes_lists_only_changed_fields():
    changes = value_changes(
        {"status": "active", "version": 3}, {"status": "revoking", "version": 4}
    )
    assert [(c.field, c.before, c.after) for c in changes] == [
        ("status", "active", "revoking"),
        ("version", "3", "4"),
    ]
    assert value_changes({"a": 1}, {"a": 1}) == []
    assert [c.before for c in value_changes(None, {"end_cause": ""})] == ["—"]
    assert [c.after for c in value_changes(None, {"end_cause": ""})] == ["(empty)"]


def test_long_values_are_shortened():
    [change] = value_changes({"x": "a" * 1000}, {"x": "b"})
    assert len(change.before) <= 300 and change.before.endswith("…")


# --- cloud request ids -----------------------------------------------------------------------


def test_cloud_request_ids_come_from_the_events_data_once_each():
    after = {"outcome": "ok", "request_id": "REQ-1"}
    metadata = {"request_ids": ["REQ-2", "REQ-1"], "nested": {"cloud_request_id": "REQ-3"}}
    assert cloud_request_ids(after, metadata) == ["REQ-1", "REQ-2", "REQ-3"]
    assert cloud_request_ids(None, {"request_id": ""}) == []


# --- staff and credential events ------------------------------------------------------------


@pytest.mark.parametrize(
    "action, expected",
    [
        ("staff.assigned", ASSIGNED),
        ("staff.unassigned", UNASSIGNED),
        ("credentials.issued", CREDENTIAL_ISSUED),
        ("staff.ram_user_linked", None),
        ("credentials.issue_started", None),
        ("credentials.uri_created", None),
        ("delegation.approved", None),
        ("member.removed", None),
        # Names the portal never writes give nobody access, however they read.
        ("delegation.staff_assigned", None),
        ("credential.issued", None),
    ],
)
def test_access_events_are_the_ones_the_registry_marks(action, expected):
    assert classify_access_event(event(action=action)) == expected


def test_refused_attempts_give_access_to_nobody():
    assert classify_access_event(event(action="credentials.issued", outcome="denied")) is None


def test_the_person_comes_from_metadata_then_the_target_or_the_actor():
    explicit = event(
        action="staff.assigned",
        target_label="ecs-admin for Company B",
        metadata={"person": "alice@b.example", "person_id": 7, "ram_user": "alice"},
    )
    assert person_of(explicit, ASSIGNED).key == "id:7"
    assert person_of(explicit, ASSIGNED).ram_user == "alice"
    assignment = event(action="staff.assigned", target_label="Bob Builder")
    assert person_of(assignment, ASSIGNED).label == "Bob Builder"
    own = event(action="credentials.issued", actor_label="Alice <alice@b.example>", actor_id=3)
    assert person_of(own, CREDENTIAL_ISSUED).key == "id:3"


def test_credential_expiration_is_parsed_as_utc():
    issued = event(metadata={"expiration": "2026-03-01T10:00:00Z"})
    assert credential_expiration(issued) == dt.datetime(2026, 3, 1, 10, tzinfo=dt.UTC)
    assert credential_expiration(event(metadata={"expiration": "soon"})) is None
    assert credential_expiration(event(metadata={"expiration": 12})) is None


# --- descriptions ----------------------------------------------------------------------------


def test_an_approval_says_who_and_whether_with_mfa():
    approved = event(
        action="delegation.approved",
        actor_label="Ada Admin <ada@a.example>",
        metadata={"with_mfa": True, "note": "ok"},
        before={"status": "requested"},
        after={"status": "approved"},
    )
    described = describe_event(approved)
    assert (
        described.title
        == "Ada Admin <ada@a.example> approved this access with two-factor authentication"
    )
    assert described.mfa is True
    assert [(c.field, c.before, c.after) for c in described.changes] == [
        ("status", "requested", "approved")
    ]
    without = describe_event(event(action="delegation.approved", metadata={"with_mfa": False}))
    assert without.mfa is False and "two-factor" not in without.title


def test_a_cloud_call_shows_its_trust_change_and_request_id():
    call = event(
        action="cloud.call_result",
        after={"outcome": "ok", "request_id": "4F2C-REQ", "error_code": ""},
        metadata={
            "cloud_action": "UpdateRole",
            "target": "acs:ram::11223344:role/ecs-admin",
            "request": {
                "role_name": "ecs-admin",
                "principals_added": [C],
                "principals_removed": [],
            },
        },
    )
    described = describe_event(call)
    assert described.title == "UpdateRole: ok"
    assert described.policy_diff.principals_added == (C,)
    assert described.cloud_request_ids == ("4F2C-REQ",)
    detach = event(
        action="cloud.call_intent",
        metadata={
            "cloud_action": "DetachPolicyFromRole",
            "request": {"policy_type": "System", "policy_name": "AliyunECSFullAccess"},
        },
    )
    assert describe_event(detach).policy_diff.policies_removed == ("AliyunECSFullAccess (System)",)


def test_a_failed_or_denied_event_is_marked_as_such():
    assert describe_event(event(action="delegation.approve_denied", outcome="denied")).category == (
        "denied"
    )
    failed = describe_event(
        event(action="delegation.failed", metadata={"failed_phase": "applying", "error_code": "X"})
    )
    assert failed.title == "Failed while applying: X"


def test_an_unknown_action_still_reads():
    described = describe_event(event(action="member.role_changed", target_label="bob@a.example"))
    assert described.title == "member.role_changed — bob@a.example"


# --- invisible characters --------------------------------------------------------------------


def test_bidi_and_zero_width_characters_are_shown_as_markers_and_html_is_escaped():
    label = "Evil\u202eexe.txt\u200b<script>alert(1)</script>\ufeff"
    html = str(mark_invisible(label))
    assert "\u202e" not in html and "\u200b" not in html and "\ufeff" not in html
    assert "[U+202E]" in html and "[U+200B]" in html and "[U+FEFF]" in html
    assert "RIGHT-TO-LEFT OVERRIDE" in html
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_plain_text_passes_unchanged_apart_from_escaping():
    assert str(mark_invisible("Zoë & Co")) == "Zoë &amp; Co"
    assert str(mark_invisible(None)) == ""


def test_facts_read_in_the_viewers_language_labels_and_stored_factor_names_alike():
    """Fact labels are translatable, and the English factor names an MFA reset stores read
    in Chinese on a Chinese page (the event itself keeps them in English)."""
    reset = event(
        action="mfa.reset_by_operator",
        metadata={"reason": "lost phone", "removed": "recovery codes, authenticator app"},
    )
    finished = event(
        action="runbook.target_finished",
        metadata={"execution_id": "exec-1", "oos_status": "Success", "region_id": "cn-hangzhou"},
    )
    with translation.override("zh-hans"):
        reset_facts = {str(fact.label): fact.value for fact in describe_event(reset).facts}
        target_labels = {str(fact.label) for fact in describe_event(finished).facts}
    assert reset_facts["已移除的认证方式"] == "恢复码, 身份验证器应用"
    assert {"运维编排状态", "地域"} <= target_labels
    assert {str(fact.label) for fact in describe_event(reset).facts} >= {"Second factors removed"}
