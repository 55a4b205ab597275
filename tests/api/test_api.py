"""The REST API per endpoint: tokens and scopes, tenancy (a foreign id is 404), problem+json
errors, and writes audited with source api:token:<prefix>."""

import datetime as dt
import uuid
from collections.abc import Callable

import pytest
from django.utils import timezone
from rest_framework import serializers

from accounts.models import Membership, Organisation, User
from accounts.services import membership_remove
from api import serializers as api_serializers
from api.models import ApiToken
from api.problems import PROBLEM_CONTENT_TYPE
from api.services import api_token_revoke, token_prefix_of
from audit.context import current_origin
from audit.models import AuditEvent
from delegations.approvals.services import approval_rule_set
from delegations.lifecycle.starting import delegation_withdraw
from delegations.models import CatalogRole, Delegation, PartnerLink
from tests.personas import enable_totp, make_member

pytestmark = pytest.mark.django_db

ME = "/api/v1/me/"
DELEGATIONS = "/api/v1/delegations/"


def problem(response: object, status: int, slug: str) -> dict:
    assert response.status_code == status, response.content  # type: ignore[attr-defined]
    assert response["Content-Type"] == PROBLEM_CONTENT_TYPE  # type: ignore[index]
    body = response.json()  # type: ignore[attr-defined]
    assert body["type"] == f"/api/v1/problems/{slug}"
    assert body["status"] == status
    assert body["title"] and body["detail"]
    return body


# --- authentication -------------------------------------------------------------------------


def test_no_token_is_401_problem_with_bearer_challenge(api: Callable) -> None:
    response = api(None).get(ME)
    problem(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("raw", ["pap_deadbeef_nope", "not-a-token", "pap_", "pap_x_y"])
def test_unknown_or_malformed_token_is_401(api: Callable, raw: str) -> None:
    problem(api(raw).get(ME), 401, "unauthenticated")


def test_an_admin_without_mfa_cannot_use_the_api_while_the_organisation_requires_it(
    api: Callable, make_token: Callable, company_a: Organisation, settings: object
) -> None:
    # A token made before the rule (or while acting for another organisation) does not get
    # round it: the API asks what the web's middleware asks.
    admin = make_member(company_a, Membership.Role.ADMIN, mfa=False)
    staff = make_member(company_a, Membership.Role.STAFF, mfa=False)
    settings.PORTAL_REQUIRE_MFA = False  # type: ignore[attr-defined]
    admin_token, staff_token = make_token(admin), make_token(staff, scopes=("read",))
    assert api(admin_token).get(ME).status_code == 200
    settings.PORTAL_REQUIRE_MFA = True  # type: ignore[attr-defined]
    body = problem(api(admin_token).get(ME), 403, "forbidden")
    assert "two-factor" in body["detail"]
    assert api(staff_token).get(ME).status_code == 200
    enable_totp(admin)
    assert api(admin_token).get(ME).status_code == 200


def test_asking_for_a_format_the_api_does_not_speak_is_a_406_not_acceptable_problem(
    api: Callable, make_token: Callable, owner_admin: User
) -> None:
    caller = api(make_token(owner_admin))
    response = caller.client.get(ME, headers={**caller.headers, "Accept": "text/html"})
    body = problem(response, 406, "not-acceptable")
    assert "application/json" in body["detail"]


PROBLEMS_ONLY = [
    "application/problem+json",
    "application/problem+json, */*;q=0",
    "application/json;q=0, application/problem+json",
]


@pytest.mark.parametrize("accept", PROBLEMS_ONLY)
def test_a_client_that_accepts_problem_documents_gets_its_errors_as_they_are(
    api: Callable, make_token: Callable, owner_admin: User, accept: str
) -> None:
    # RFC 9457 §3: a client says it reads problem details by accepting
    # application/problem+json. Its 401 and 404 are those problems, not a 406 about the header.
    anonymous = api(None).client.get(ME, headers={"Accept": accept})
    problem(anonymous, 401, "unauthenticated")
    caller = api(make_token(owner_admin))
    missing = caller.client.get(
        f"{DELEGATIONS}{uuid.UUID(int=0)}/", headers={**caller.headers, "Accept": accept}
    )
    problem(missing, 404, "not-found")


@pytest.mark.parametrize("accept", PROBLEMS_ONLY)
def test_a_client_that_accepts_problem_documents_gets_its_answers_in_json(
    api: Callable, make_token: Callable, owner_admin: User, accept: str
) -> None:
    # A success is never a problem document. A client reading problem+json reads JSON (the
    # +json suffix, RFC 6839), so the answer is the API's one representation, as RFC 9110
    # §12.5.1 lets a server do instead of a 406 (which would carry no more than this).
    caller = api(make_token(owner_admin))
    response = caller.client.get(ME, headers={**caller.headers, "Accept": accept})
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json"
    assert response.json()["organisation"]["slug"] == "company-a"


@pytest.mark.parametrize(
    "accept", ["text/html", "application/xml, text/*", "*/*;q=0", "application/problem+json;q=0"]
)
def test_a_client_that_accepts_neither_json_nor_problems_gets_a_406(
    api: Callable, make_token: Callable, owner_admin: User, accept: str
) -> None:
    # q=0 is "not acceptable" (RFC 9110 §12.4.2), not the lowest preference.
    caller = api(make_token(owner_admin))
    response = caller.client.get(ME, headers={**caller.headers, "Accept": accept})
    body = problem(response, 406, "not-acceptable")
    assert "application/problem+json" in body["detail"]


def test_revoked_and_expired_tokens_are_401(
    api: Callable, make_token: Callable, owner_admin: User
) -> None:
    revoked = make_token(owner_admin)
    token = ApiToken.objects.get(prefix=token_prefix_of(revoked))
    api_token_revoke(token=token, revoked_by=owner_admin)
    problem(api(revoked).get(ME), 401, "unauthenticated")

    expired = make_token(owner_admin)
    ApiToken.objects.filter(prefix=token_prefix_of(expired)).update(
        expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    problem(api(expired).get(ME), 401, "unauthenticated")


def test_a_wrong_secret_with_a_real_prefix_is_401(
    api: Callable, make_token: Callable, owner_admin: User
) -> None:
    raw = make_token(owner_admin)
    problem(api(raw[:-4] + "AAAA").get(ME), 401, "unauthenticated")


def test_me_names_the_caller_and_records_last_use(
    api: Callable, make_token: Callable, owner_admin: User, company_a: Organisation
) -> None:
    raw = make_token(owner_admin, scopes=("read",))
    body = api(raw).get(ME).json()
    assert body["organisation"]["slug"] == "company-a"
    assert body["role"] == "admin"
    assert body["scopes"] == ["read"]
    token = ApiToken.objects.get(prefix=body["token_prefix"])
    assert token.last_used_at is not None and token.last_used_ip == "127.0.0.1"


def test_a_removed_members_tokens_die_with_the_membership(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    owner_admin_2: User,
    company_a: Organisation,
) -> None:
    raw = make_token(owner_admin_2, organisation=company_a)
    assert api(raw).get(ME).status_code == 200
    membership_remove(
        membership=Membership.objects.get(user=owner_admin_2, organisation=company_a),
        removed_by=owner_admin,
    )
    problem(api(raw).get(ME), 401, "unauthenticated")
    assert ApiToken.objects.get(prefix=token_prefix_of(raw)).status == "revoked"


# --- delegations: reads and tenancy ----------------------------------------------------------


def test_owner_lists_its_delegations_paginated_and_filtered(
    api: Callable, make_token: Callable, owner_admin: User, requested: Delegation
) -> None:
    client = api(make_token(owner_admin, scopes=("read",)))
    body = client.get(DELEGATIONS, limit=1).json()
    assert body["count"] == 1
    assert body["results"][0]["id"] == str(requested.pk)
    assert body["results"][0]["status"] == "requested"
    assert client.get(DELEGATIONS, status="active").json()["count"] == 0


def test_a_foreign_delegation_is_404_for_every_operation(
    api: Callable,
    make_token: Callable,
    foreign_owner_admin: User,
    company_c: Organisation,
    requested: Delegation,
) -> None:
    from api.services import api_decisions_set

    api_decisions_set(organisation=company_c, changed_by=foreign_owner_admin, allow=True)
    client = api(make_token(foreign_owner_admin, with_mfa=True))
    problem(client.get(f"{DELEGATIONS}{requested.pk}/"), 404, "not-found")
    for action in ("approve", "reject", "revoke"):
        response = client.post(f"{DELEGATIONS}{requested.pk}/{action}/", {"reason": "x"})
        problem(response, 404, "not-found")
    requested.refresh_from_db()
    assert requested.status == Delegation.Status.REQUESTED


def test_partner_staff_are_pointed_to_their_access(
    api: Callable, make_token: Callable, partner_staff: User
) -> None:
    problem(api(make_token(partner_staff)).get(DELEGATIONS), 403, "forbidden")


# --- writes: scopes, bad input, decisions ----------------------------------------------------


def test_a_scope_not_held_is_403(
    api: Callable, make_token: Callable, partner_admin: User, link_a: tuple[PartnerLink, str]
) -> None:
    client = api(make_token(partner_admin, scopes=("read",)))
    body = problem(
        client.post(DELEGATIONS, {"partner_link_code": link_a[1]}), 403, "insufficient-scope"
    )
    assert body["required_scope"] == "request"


def test_unknown_fields_are_refused_by_name_and_nothing_is_written(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    allow_b: None,
    ecs_admin: object,
    link_a: tuple[PartnerLink, str],
) -> None:
    client = api(make_token(partner_admin, scopes=("read", "request")))
    body = problem(
        client.post(
            DELEGATIONS,
            {
                "partner_link_code": link_a[1],
                "catalog_role": "ecs-admin",
                "reason": "Patching",
                "status": "active",
                "partner": "x",
            },
        ),
        400,
        "validation",
    )
    assert set(body["errors"]) == {"status", "partner"}
    assert not Delegation.objects.exists()


def test_wrong_types_and_malformed_json_are_400(
    api: Callable, make_token: Callable, partner_admin: User
) -> None:
    client = api(make_token(partner_admin, scopes=("read", "request")))
    body = problem(
        client.post(DELEGATIONS, {"partner_link_code": ["a"], "reason": 3}), 400, "validation"
    )
    assert "catalog_role" in body["errors"]
    response = client.client.post(
        DELEGATIONS, "{not json", content_type="application/json", headers=client.headers
    )
    problem(response, 400, "malformed")


def test_a_number_for_a_text_is_400_and_nothing_is_decided(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    requested: Delegation,
    decisions_on: None,
) -> None:
    # Found by the schema fuzz: {"note": 0} approved the request with the note "0".
    client = api(make_token(owner_admin, with_mfa=True))
    url = f"{DELEGATIONS}{requested.pk}/approve/"
    for body, field in (({"note": 0}, "note"), ({"expected_version": "1"}, "expected_version")):
        assert list(problem(client.post(url, body), 400, "validation")["errors"]) == [field]
    requested.refresh_from_db()
    assert requested.status == Delegation.Status.REQUESTED


def _input_serializers() -> list[type]:
    found, waiting = [], list(api_serializers.StrictSerializer.__subclasses__())
    while waiting:
        found.append(waiting.pop())
        waiting += found[-1].__subclasses__()
    return sorted(found, key=lambda cls: cls.__name__)


@pytest.mark.parametrize("serializer", _input_serializers(), ids=lambda cls: cls.__name__)
def test_every_input_takes_a_text_field_only_as_text_and_a_number_only_as_a_number(
    serializer: type,
) -> None:
    fields = serializer().fields
    wrong = {
        name: 7 if isinstance(field, serializers.CharField) else "7"
        for name, field in fields.items()
        if isinstance(field, serializers.CharField | serializers.IntegerField)
    }
    assert wrong, serializer
    checked = serializer(data=wrong)
    assert not checked.is_valid()
    assert set(wrong) <= set(checked.errors), checked.errors


def test_a_huge_body_is_413(api: Callable, make_token: Callable, partner_admin: User) -> None:
    client = api(make_token(partner_admin, scopes=("read", "request")))
    problem(client.post(DELEGATIONS, {"reason": "x" * 300_000}), 413, "too-large")


def test_partner_admin_requests_through_a_link_code_audited_as_the_token(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    allow_b: None,
    ecs_admin: object,
    link_a: tuple[PartnerLink, str],
) -> None:
    raw = make_token(partner_admin, scopes=("read", "request"))
    response = api(raw).post(
        DELEGATIONS,
        {"partner_link_code": link_a[1], "catalog_role": "ecs-admin", "reason": "Patching"},
    )
    assert response.status_code == 201, response.content
    delegation = Delegation.objects.get(pk=response.json()["id"])
    assert delegation.status == Delegation.Status.REQUESTED
    event = AuditEvent.objects.get(action="delegation.requested")
    assert event.source == f"api:token:{token_prefix_of(raw)}"
    assert event.actor_id == partner_admin.pk
    # The audit origin of the API request does not outlive it.
    assert current_origin().source == "system"


def test_a_request_through_the_api_is_decided_by_the_roles_auto_approval_rule_too(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    owner_admin: User,
    allow_b: None,
    ecs_admin: CatalogRole,
    link_a: tuple[PartnerLink, str],
) -> None:
    approval_rule_set(
        catalog_role=ecs_admin, approvals_required=1, auto_approve_max_hours=8, set_by=owner_admin
    )
    client = api(make_token(partner_admin, scopes=("read", "request")))
    body = {"partner_link_code": link_a[1], "catalog_role": "ecs-admin", "reason": "Patching"}
    # Beyond the rule's hours it waits for the owner's approvers, as on the web.
    long = client.post(DELEGATIONS, {**body, "ends_at": _hours_from_now(9)})
    assert long.json()["status"] == Delegation.Status.REQUESTED
    delegation_withdraw(
        delegation=Delegation.objects.get(pk=long.json()["id"]), withdrawn_by=partner_admin
    )
    short = client.post(DELEGATIONS, {**body, "ends_at": _hours_from_now(4)})
    assert short.status_code == 201, short.content
    assert short.json()["status"] == Delegation.Status.APPROVED
    assert AuditEvent.objects.filter(
        action="delegation.auto_approved", target_id=short.json()["id"]
    ).exists()


def _hours_from_now(hours: int) -> str:
    return (timezone.now() + dt.timedelta(hours=hours)).isoformat()


def test_a_wrong_link_code_is_400_and_creates_nothing(
    api: Callable, make_token: Callable, partner_admin: User, allow_b: None, ecs_admin: object
) -> None:
    client = api(make_token(partner_admin, scopes=("read", "request")))
    body = problem(
        client.post(
            DELEGATIONS,
            {
                "partner_link_code": "AAAAA-BBBBB-CCCCC-DDDDD",
                "catalog_role": "ecs-admin",
                "reason": "x",
            },
        ),
        400,
        "validation",
    )
    assert "partner_link_code" in body["errors"]
    assert not Delegation.objects.exists()


@pytest.mark.usefixtures("fixed_rate_window")
def test_too_many_link_codes_are_429_with_retry_after(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    allow_b: None,
    ecs_admin: object,
    settings: object,
) -> None:
    settings.PORTAL_PARTNER_LINK_CODE_RATE = "1/600"  # type: ignore[attr-defined]
    client = api(make_token(partner_admin, scopes=("read", "request")))
    body = {"partner_link_code": "AAAAA-BBBBB-CCCCC-DDDDD", "catalog_role": "x", "reason": "x"}
    client.post(DELEGATIONS, body)
    response = client.post(DELEGATIONS, body)
    problem(response, 429, "rate-limited")
    assert 1 <= int(response["Retry-After"]) <= 600


def test_withdraw_by_the_partner(
    api: Callable, make_token: Callable, partner_admin: User, requested: Delegation
) -> None:
    client = api(make_token(partner_admin, scopes=("read", "request")))
    response = client.post(f"{DELEGATIONS}{requested.pk}/withdraw/")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "withdrawn"


def test_decisions_are_off_until_the_organisation_allows_them(
    api: Callable, make_token: Callable, owner_admin_2: User, requested: Delegation
) -> None:
    client = api(make_token(owner_admin_2, with_mfa=True))
    problem(client.post(f"{DELEGATIONS}{requested.pk}/approve/"), 403, "decisions-disabled")
    requested.refresh_from_db()
    assert requested.status == Delegation.Status.REQUESTED


def test_decisions_need_a_fresh_mfa_token(
    api: Callable,
    make_token: Callable,
    owner_admin_2: User,
    requested: Delegation,
    decisions_on: None,
) -> None:
    problem(
        api(make_token(owner_admin_2, with_mfa=False)).post(
            f"{DELEGATIONS}{requested.pk}/approve/"
        ),
        403,
        "mfa-required",
    )
    stale = make_token(owner_admin_2, with_mfa=True)
    ApiToken.objects.filter(prefix=token_prefix_of(stale)).update(
        created_at=timezone.now() - dt.timedelta(hours=13)
    )
    problem(api(stale).post(f"{DELEGATIONS}{requested.pk}/approve/"), 403, "mfa-required")


def test_approve_then_conflict_on_a_second_decision(
    api: Callable,
    make_token: Callable,
    owner_admin_2: User,
    owner_admin: User,
    requested: Delegation,
    decisions_on: None,
) -> None:
    raw = make_token(owner_admin_2, with_mfa=True)
    response = api(raw).post(f"{DELEGATIONS}{requested.pk}/approve/", {"note": "ok"})
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "approved"
    event = AuditEvent.objects.get(action="delegation.approved")
    assert event.source == f"api:token:{token_prefix_of(raw)}"
    other = api(make_token(owner_admin, with_mfa=True))
    problem(other.post(f"{DELEGATIONS}{requested.pk}/reject/", {"reason": "no"}), 409, "conflict")


def test_an_auditor_token_cannot_decide(
    api: Callable, make_token: Callable, auditor: User, requested: Delegation, decisions_on: None
) -> None:
    client = api(make_token(auditor, with_mfa=True))
    problem(client.post(f"{DELEGATIONS}{requested.pk}/approve/"), 403, "forbidden")
    assert client.get(f"{DELEGATIONS}{requested.pk}/").status_code == 200


# --- audit reads ------------------------------------------------------------------------------


def test_audit_events_need_the_audit_scope_and_are_the_organisations(
    api: Callable,
    make_token: Callable,
    auditor: User,
    foreign_owner_admin: User,
    requested: Delegation,
) -> None:
    problem(
        api(make_token(auditor, scopes=("read",))).get("/api/v1/audit/events/"),
        403,
        "insufficient-scope",
    )
    body = api(make_token(auditor, scopes=("audit",))).get("/api/v1/audit/events/").json()
    assert "delegation.requested" in {event["action"] for event in body["results"]}
    foreign = api(make_token(foreign_owner_admin, scopes=("audit",)))
    assert "delegation.requested" not in {
        event["action"] for event in foreign.get("/api/v1/audit/events/").json()["results"]
    }
    problem(foreign.get("/api/v1/audit/events/", delegation=str(requested.pk)), 404, "not-found")


@pytest.mark.parametrize("value", ["99999999999999999999999", "9223372036854775808", "\u00b2"])
@pytest.mark.parametrize("name", ["before", "limit"])
def test_an_out_of_range_or_non_ascii_audit_cursor_is_400_not_a_server_error(
    api: Callable, make_token: Callable, auditor: User, requested: Delegation, name: str, value: str
) -> None:
    client = api(make_token(auditor, scopes=("audit",)))
    body = problem(client.get("/api/v1/audit/events/", **{name: value}), 400, "validation")
    assert name in body["errors"]
    timeline = client.get(f"{DELEGATIONS}{requested.pk}/timeline/", after=value)
    problem(timeline, 400, "validation")


def test_the_problem_types_resolve(api: Callable) -> None:
    body = api(None).get("/api/v1/problems/decisions-disabled").json()
    assert body["type"] == "/api/v1/problems/decisions-disabled"


def test_the_timeline_and_access_report_for_auditors(
    api: Callable,
    make_token: Callable,
    auditor: User,
    partner_staff: User,
    requested: Delegation,
    cloud_account_a: object,
) -> None:
    client = api(make_token(auditor, scopes=("audit",)))
    timeline = client.get(f"{DELEGATIONS}{requested.pk}/timeline/").json()
    assert "delegation.requested" in {event["action"] for event in timeline["results"]}
    report = client.get(
        "/api/v1/audit/access-report/",
        account=cloud_account_a.account_uid,  # type: ignore[attr-defined]
        since="2026-01-01",
        until="2030-01-01",
    )
    assert report.status_code == 200, report.content
    assert report.json()["delegations_considered"] == 1
    problem(client.get("/api/v1/audit/access-report/", account="nope"), 400, "validation")
    staff = api(make_token(partner_staff, scopes=("audit",)))
    problem(staff.get(f"{DELEGATIONS}{requested.pk}/timeline/"), 403, "forbidden")


def test_partner_admin_assigns_and_unassigns_staff(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    partner_staff: User,
    requested: Delegation,
) -> None:
    Delegation.objects.filter(pk=requested.pk).update(status=Delegation.Status.ACTIVE)
    client = api(make_token(partner_admin, scopes=("read", "request")))
    url = f"{DELEGATIONS}{requested.pk}/assignments/"
    problem(client.post(url, {"user": "nobody@example.com"}), 400, "validation")
    created = client.post(url, {"user": partner_staff.email})
    assert created.status_code == 201, created.content
    assert [a["user"] for a in client.get(url).json()] == [partner_staff.email]
    gone = client.delete(f"{url}{created.json()['id']}/")
    assert gone.status_code == 204
    assert client.get(url).json() == []
    event = AuditEvent.objects.get(action="staff.assigned")
    assert event.source.startswith("api:token:")


def test_partner_admin_lists_every_staff_assignment_of_the_organisation(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    partner_staff: User,
    owner_admin: User,
    requested: Delegation,
    partner_admin_d: User,
) -> None:
    Delegation.objects.filter(pk=requested.pk).update(status=Delegation.Status.ACTIVE)
    admin = api(make_token(partner_admin, scopes=("read", "request")))
    assert admin.get("/api/v1/assignments/").json()["results"] == []
    admin.post(f"{DELEGATIONS}{requested.pk}/assignments/", {"user": partner_staff.email})

    listed = admin.get("/api/v1/assignments/").json()
    assert listed["count"] == 1
    [row] = listed["results"]
    assert row["user"] == partner_staff.email
    assert row["delegation"] == str(requested.pk)
    assert row["role_name"] == requested.catalog_role.role_name
    assert row["owner"] == requested.owner.slug
    # Another partner's admin sees none of them; staff and owners are refused.
    other = api(make_token(partner_admin_d, scopes=("read",)))
    assert other.get("/api/v1/assignments/").json()["results"] == []
    problem(api(make_token(partner_staff)).get("/api/v1/assignments/"), 403, "forbidden")
    problem(api(make_token(owner_admin)).get("/api/v1/assignments/"), 403, "forbidden")


def test_no_token_reaches_a_log_line(
    api: Callable, make_token: Callable, owner_admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    raw = make_token(owner_admin)
    # django.request logs every 4xx with its path (the settings keep only its errors; here
    # every level is captured, the strictest case).
    with caplog.at_level("DEBUG"), caplog.at_level("DEBUG", logger="django.request"):
        api(raw).get(ME)
        api(raw).get(f"{DELEGATIONS}not-a-uuid/")
        api(raw + "x").get(ME)  # refused: django.request logs the 401
        api(raw).post(DELEGATIONS, {"bad": 1})
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert caplog.records
    secret = raw.split("_", 2)[2]
    assert secret not in text


def test_an_unlimited_token_acts_for_the_organisation_the_header_names(
    api: Callable,
    make_token: Callable,
    partner_admin: User,
    company_a: Organisation,
    company_c: Organisation,
) -> None:
    from tests.factories import MembershipFactory

    MembershipFactory(user=partner_admin, organisation=company_a, role="auditor")
    client = api(make_token(partner_admin, scopes=("read",)))
    assert client.get(ME).json()["organisation"]["slug"] == "company-a"  # the first by name
    client.headers["X-Portal-Organisation"] = "company-b"
    assert client.get(ME).json()["organisation"]["slug"] == "company-b"
    client.headers["X-Portal-Organisation"] = company_c.slug
    problem(client.get(ME), 401, "unauthenticated")
    limited = api(make_token(partner_admin, scopes=("read",), organisation=company_a))
    limited.headers["X-Portal-Organisation"] = "company-b"
    assert limited.get(ME).json()["organisation"]["slug"] == "company-a"


def test_a_request_names_an_owner_reached_before_instead_of_a_code(
    api: Callable, make_token: Callable, partner_admin: User, requested: Delegation
) -> None:
    client = api(make_token(partner_admin, scopes=("read", "request")))
    body = {"owner": "company-a", "catalog_role": "ecs-admin", "reason": "Again"}
    problem(client.post(DELEGATIONS, body), 400, "validation")  # the open request is a duplicate
    assert client.post(f"{DELEGATIONS}{requested.pk}/withdraw/").status_code == 200
    created = client.post(DELEGATIONS, body)
    assert created.status_code == 201, created.content
    assert created.json()["owner"]["slug"] == "company-a"
    unknown = problem(client.post(DELEGATIONS, {**body, "owner": "company-c"}), 400, "validation")
    assert "owner" in unknown["errors"]
    both = {**body, "partner_link_code": "X"}
    problem(client.post(DELEGATIONS, both), 400, "validation")


def test_an_unknown_api_path_is_a_problem_too(api: Callable) -> None:
    problem(api(None).get("/api/v1/no-such-thing/"), 404, "not-found")
    problem(api(None).post("/api/v1/delegations/x/y/z"), 404, "not-found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/delegations/y%0A%C3%B8%3A%0A%23/approve/",  # found by the schema fuzz
        "/api/v1/no-such%0Athing/",
        "/api/v1/%0A",
        "/api/v1/me/%0D%0A",
    ],
)
def test_an_unknown_api_path_with_a_line_break_is_a_problem_too(
    api: Callable, make_token: Callable, owner_admin: User, path: str
) -> None:
    # A decoded line break in the path is still a path under /api/v1/, not the HTML 404 page.
    problem(api(None).get(path), 404, "not-found")
    problem(api(make_token(owner_admin)).post(path, {"note": "x"}), 404, "not-found")


def test_catalogue_roles_and_cloud_accounts_are_the_owner_s_own(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    partner_admin: User,
    ecs_admin: object,
    foreign_role: object,
) -> None:
    client = api(make_token(owner_admin, scopes=("read",)))
    roles = client.get("/api/v1/catalog-roles/").json()
    assert [role["role_name"] for role in roles["results"]] == ["ecs-admin"]
    accounts = client.get("/api/v1/cloud-accounts/").json()
    assert len(accounts) == 1 and "access_key_id" not in accounts[0]
    assert accounts[0]["account_uid"] == ecs_admin.cloud_account.account_uid  # type: ignore[attr-defined]
    partner = api(make_token(partner_admin, scopes=("read",)))
    problem(partner.get("/api/v1/catalog-roles/"), 403, "forbidden")
    assert partner.get("/api/v1/cloud-accounts/").json() == []


def test_an_owner_offers_access_with_a_fresh_mfa_token(
    api: Callable,
    make_token: Callable,
    owner_admin: User,
    company_b: Organisation,
    allow_b: None,
    ecs_admin: object,
    decisions_on: None,
) -> None:
    client = api(make_token(owner_admin, scopes=("read", "decide"), with_mfa=True))
    body = {"partner": "company-b", "catalog_role": "ecs-admin", "reason": "Support contract"}
    response = client.post("/api/v1/delegations/offer/", body)
    assert response.status_code == 201, response.content
    assert response.json()["status"] == "approved"
    assert response.json()["partner"]["slug"] == "company-b"
    problem(
        client.post("/api/v1/delegations/offer/", {**body, "partner": "nobody"}), 404, "not-found"
    )
