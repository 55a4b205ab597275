"""The API's tenant crawl: the OpenAPI schema is generated and validated, then every
operation in it is called as every persona of companies A and B with ids of another
organisation's objects. A foreign id answers exactly as a missing id does, nothing answers
5xx, every error is problem+json, no answer shows the foreign data, and the foreign objects
are unchanged afterwards."""

import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from django.utils import timezone
from drf_spectacular.generators import SchemaGenerator

from accounts.models import Membership, Organisation, User
from api.models import SERVICE_ACCOUNT_SCOPES
from api.open_views import DEVICE_GRANT
from api.problems import PROBLEM_CONTENT_TYPE
from api.services import (
    device_authorization_decide,
    device_authorization_start,
    service_account_create,
)
from delegations.approvals.services import approval_rule_set
from delegations.lifecycle.automatic import delegation_mark_active
from delegations.lifecycle.extensions import extension_approve
from delegations.lifecycle.services import delegation_approve
from delegations.models import Delegation, DelegationExtension, PartnerLink, StaffAssignment
from delegations.partner.services import staff_assign
from tests.api.conftest import ALL_SCOPES, Api
from tests.api.test_extensions import asked  # noqa: F401
from tests.delegations.factories import CatalogRoleFactory
from tests.delegations.test_audit_unavailable import break_ledger

# The foreign world of the pages' own crawl: company C's delegation to D, a link, a finding.
from tests.delegations.test_isolation import FOREIGN_MARKERS, foreign, snapshot  # noqa: F401
from tests.personas import make_member

pytestmark = pytest.mark.django_db
MISSING = str(uuid.UUID(int=0))
PERSONAS = ["owner_admin", "auditor", "partner_admin", "partner_staff"]
# Person-less callers: each company's CI pipeline with every scope a service account may hold.
SERVICE_ACCOUNTS = {"service_account_a": "company_a", "service_account_b": "company_b"}


def test_the_schema_validates_without_warnings(tmp_path: Path) -> None:
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "s.yml"))


def operations() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, methods in schema["paths"].items():
        for method in methods:
            if method in ("get", "post", "put", "patch", "delete"):
                found.append((path, method))
    return found


def test_the_crawl_covers_every_operation() -> None:
    paths = {path for path, _ in operations()}
    assert "/api/v1/delegations/{delegation_id}/approve/" in paths
    assert "/api/v1/delegations/{delegation_id}/approval/withdraw/" in paths
    assert "/api/v1/access/{delegation_id}/credentials/" in paths
    assert "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/approve/" in paths
    assert (
        "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/approval/withdraw/" in paths
    )
    assert len(operations()) >= 18


def _fill(path: str, value: str) -> str:
    return (
        path.replace("{delegation_id}", value)
        .replace("{assignment_id}", value)
        .replace("{extension_id}", value)
        .replace("{owner}", value)
    )


def _token(request: pytest.FixtureRequest, persona: str, make_token: Callable[..., str]) -> str:
    if persona in SERVICE_ACCOUNTS:
        organisation: Organisation = request.getfixturevalue(SERVICE_ACCOUNTS[persona])
        admin: User = request.getfixturevalue(
            "owner_admin" if persona == "service_account_a" else "partner_admin"
        )
        return service_account_create(
            organisation=organisation,
            created_by=admin,
            name="crawler",
            scopes=SERVICE_ACCOUNT_SCOPES,
            expires_in_days=1,
        ).raw
    user: User = request.getfixturevalue(persona)
    return make_token(user, scopes=ALL_SCOPES, with_mfa=True)


@pytest.mark.parametrize("persona", [*PERSONAS, *SERVICE_ACCOUNTS])
def test_every_operation_as_every_persona_with_foreign_ids(
    request: pytest.FixtureRequest,
    foreign: dict,  # noqa: F811
    persona: str,
    requested: object,
    make_token: Callable[..., str],
    decisions_on: None,
    company_d: Organisation,
) -> None:
    client = Api(_token(request, persona, make_token))
    before = snapshot(foreign)
    delegation = foreign["delegation"]
    body = {
        "reason": "crawl",
        "partner": company_d.slug,
        "catalog_role": str(delegation.catalog_role_id),
        "user": "staff@delta-foreign.example",
        "partner_link_code": "AAAAA-BBBBB-CCCCC-DDDDD",
    }
    failures = []
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, method in operations():
        call = getattr(client, method)
        if "{" in path:
            missing = (
                call(_fill(path, MISSING)) if method != "post" else call(_fill(path, MISSING), body)
            )
            ids = [str(delegation.pk), str(foreign["link"].pk)]
            if "{owner}" in path:
                # The foreign owner by its slug: company D, not A or B, requested through its link.
                ids.append(delegation.owner.slug)
            answers = [
                call(_fill(path, foreign_id))
                if method != "post"
                else call(_fill(path, foreign_id), body)
                for foreign_id in ids
            ]
        else:
            missing = None
            answers = [call(path) if method != "post" else call(path, body)]
        for answer in answers:
            text = answer.content.decode(errors="replace")
            leaked = [marker for marker in FOREIGN_MARKERS if marker in text]
            wrong = missing is not None and answer.status_code != missing.status_code
            not_problem = (
                answer.status_code >= 400
                and path.startswith("/api/v1/")
                and "/device/" not in path
                and answer["Content-Type"] != PROBLEM_CONTENT_TYPE
            )
            undocumented = (
                answer.status_code >= 400
                and answer.status_code not in _problem_statuses(schema, path, method)
            )
            if answer.status_code >= 500 or leaked or wrong or not_problem or undocumented:
                failures.append((method, path, answer.status_code, leaked))
    assert not failures, failures
    assert snapshot(foreign) == before


# Every error each operation can answer, read from the views (scope and role checks, object
# lookups, bodies, cursors, budgets, decisions) and written out here rather than derived.
AUTHENTICATED = {401, 403, 406}
OBJECT = AUTHENTICATED | {404}
# A body: invalid (400), too large (413) or not JSON (415).
BODY = {400, 413, 415}
# Every authenticated write records its audit event; a ledger that refuses it is a 503.
WRITE = {503}
DECISION = OBJECT | BODY | WRITE | {409}
# A paged list: a malformed `limit` or `offset` is a 400.
PAGED = AUTHENTICATED | {400}
PROBLEMS = {
    ("get", "/api/v1/me/"): AUTHENTICATED,
    ("get", "/api/v1/delegations/"): PAGED,
    ("post", "/api/v1/delegations/"): AUTHENTICATED | BODY | WRITE | {404, 429},
    ("post", "/api/v1/delegations/offer/"): DECISION,
    ("get", "/api/v1/delegations/{delegation_id}/"): OBJECT,
    ("post", "/api/v1/delegations/{delegation_id}/approve/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/reject/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/revoke/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/withdraw/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/approval/withdraw/"): OBJECT | WRITE | {409},
    ("get", "/api/v1/delegations/{delegation_id}/assignments/"): OBJECT,
    ("post", "/api/v1/delegations/{delegation_id}/assignments/"): OBJECT | BODY | WRITE,
    ("delete", "/api/v1/delegations/{delegation_id}/assignments/{assignment_id}/"): OBJECT | WRITE,
    ("get", "/api/v1/delegations/{delegation_id}/extensions/"): OBJECT,
    ("post", "/api/v1/delegations/{delegation_id}/extensions/"): OBJECT | BODY | WRITE,
    ("get", "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/"): OBJECT,
    ("post", "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/approve/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/reject/"): DECISION,
    (
        "post",
        "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/approval/withdraw/",
    ): OBJECT | WRITE | {409},
    ("get", "/api/v1/delegations/{delegation_id}/timeline/"): OBJECT | {400},
    ("get", "/api/v1/assignments/"): PAGED,
    ("get", "/api/v1/catalog-roles/"): PAGED,
    ("get", "/api/v1/owners/{owner}/catalog-roles/"): OBJECT | {400},
    ("get", "/api/v1/cloud-accounts/"): AUTHENTICATED,
    ("get", "/api/v1/access/"): AUTHENTICATED,
    ("get", "/api/v1/access/{delegation_id}/"): OBJECT,
    ("post", "/api/v1/access/{delegation_id}/console/"): OBJECT | WRITE | {429},
    ("post", "/api/v1/access/{delegation_id}/credentials/"): OBJECT | BODY | WRITE | {429},
    ("get", "/api/v1/audit/events/"): AUTHENTICATED | {400, 404},
    ("get", "/api/v1/audit/access-report/"): AUTHENTICATED | {400},
    ("post", "/api/v1/device/code/"): BODY | {406, 429},
    ("post", "/api/v1/device/token/"): BODY | WRITE | {406},
}


def _problem_statuses(schema: dict, path: str, method: str) -> set[int]:
    """The statuses the schema says this operation answers with a problem document."""
    responses = schema["paths"][path][method]["responses"]
    return {
        int(status)
        for status, answer in responses.items()
        if PROBLEM_CONTENT_TYPE in answer.get("content", {})
    }


def test_every_operation_lists_the_problems_it_can_answer() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert {(method, path) for path, method in operations()} == set(PROBLEMS)
    wrong = {
        (method, path): (documented, expected)
        for (method, path), expected in PROBLEMS.items()
        if (documented := _problem_statuses(schema, path, method)) != expected
    }
    assert not wrong, wrong


def test_a_problem_answer_is_described_by_the_problem_schema() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    problem_schema = schema["components"]["schemas"]["Problem"]
    assert set(problem_schema["required"]) == {"type", "title", "status", "detail"}
    problem_types = _resolve(schema, problem_schema["properties"]["type"])["enum"]
    assert "/api/v1/problems/not-found" in problem_types
    me = schema["paths"]["/api/v1/me/"]["get"]["responses"]
    assert me["401"]["content"][PROBLEM_CONTENT_TYPE]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert "WWW-Authenticate" in me["401"]["headers"]
    assert "unauthenticated" in me["401"]["description"]
    credentials = schema["paths"]["/api/v1/access/{delegation_id}/credentials/"]["post"]
    assert "Retry-After" in credentials["responses"]["429"]["headers"]
    # The successes stay JSON; the device poll's OAuth error stays JSON beside the problem.
    assert list(me["200"]["content"]) == ["application/json"]
    poll = schema["paths"]["/api/v1/device/token/"]["post"]["responses"]["400"]["content"]
    assert set(poll) == {"application/json", PROBLEM_CONTENT_TYPE}


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


@pytest.mark.parametrize(
    ("path", "members", "query"),
    [
        ("/api/v1/delegations/", {"count", "next", "previous", "results"}, {"limit", "offset"}),
        ("/api/v1/catalog-roles/", {"count", "next", "previous", "results"}, {"limit", "offset"}),
        (
            "/api/v1/owners/{owner}/catalog-roles/",
            {"count", "next", "previous", "results"},
            {"limit", "offset"},
        ),
        ("/api/v1/assignments/", {"count", "next", "previous", "results"}, {"limit", "offset"}),
        ("/api/v1/audit/events/", {"next", "results"}, {"before", "limit"}),
        ("/api/v1/delegations/{delegation_id}/timeline/", {"next", "results"}, {"after"}),
    ],
)
def test_the_schema_describes_a_paged_list_as_the_page_object_it_answers(
    path: str, members: set[str], query: set[str]
) -> None:
    # A client generated from the schema must read {"results": [...], ...}, not an array.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    operation = schema["paths"][path]["get"]
    answer = _resolve(
        schema, operation["responses"]["200"]["content"]["application/json"]["schema"]
    )
    assert answer.get("type") == "object", answer
    assert members <= set(answer["properties"])
    assert _resolve(schema, answer["properties"]["results"])["type"] == "array"
    assert query <= {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


# --- the problems a body, a method or the audit log can cause ---------------------------------


def _with_body() -> list[tuple[str, str]]:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    return [
        (path, method)
        for path, method in operations()
        if "requestBody" in schema["paths"][path][method]
    ]


def test_an_oversized_body_is_a_413_problem_wherever_a_body_is_read() -> None:
    # Over DATA_UPLOAD_MAX_MEMORY_SIZE (256 KiB); refused before the token is even looked at.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    answers = {}
    for path, method in _with_body():
        response = getattr(Api(None), method)(_fill(path, MISSING), {"reason": "x" * 300_000})
        answers[(method, path)] = (response.status_code, response["Content-Type"])
    assert len(answers) >= 12
    assert set(answers.values()) == {(413, PROBLEM_CONTENT_TYPE)}, answers
    unlisted = [key for key in answers if 413 not in _problem_statuses(schema, key[1], key[0])]
    assert not unlisted, unlisted


@pytest.fixture
def staffed(active: Delegation, partner_admin: User, partner_staff: User) -> StaffAssignment:
    """`partner_staff` assigned to the active delegation."""
    return staff_assign(delegation=active, user=partner_staff, assigned_by=partner_admin)


def test_a_body_that_is_not_json_is_a_415_problem_wherever_a_body_is_read(
    request: pytest.FixtureRequest,
    make_token: Callable[..., str],
    decisions_on: None,
    active: Delegation,
    asked: DelegationExtension,  # noqa: F811
    staffed: StaffAssignment,
) -> None:
    # Each operation as the persona it is for, on real objects, so the body is read.
    ids = {"{delegation_id}": active.pk, "{extension_id}": asked.pk, "{assignment_id}": staffed.pk}
    callers = [None] + [_token(request, persona, make_token) for persona in PERSONAS]
    schema = SchemaGenerator().get_schema(request=None, public=True)
    unlisted, refused = [], set()
    for path, method in _with_body():
        filled = path
        for name, value in ids.items():
            filled = filled.replace(name, str(value))
        for raw in callers:
            client = Api(raw)
            response = client.client.post(
                filled, "reason=crawl", content_type="text/plain", headers=client.headers
            )
            if response.status_code not in _problem_statuses(schema, path, method):
                unlisted.append((method, path, response.status_code))
            if response.status_code == 415:
                assert response.json()["type"] == "/api/v1/problems/unsupported-media-type"
                refused.add((method, path))
    assert not unlisted, unlisted
    assert refused == set(_with_body_keys()), set(_with_body_keys()) - refused


def _with_body_keys() -> list[tuple[str, str]]:
    return [(method, path) for path, method in _with_body()]


def test_a_ledger_that_refuses_the_event_is_a_503_problem_for_every_write(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    make_token: Callable[..., str],
    decisions_on: None,
    company_b: Organisation,
    owner_admin: User,
    owner_admin_2: User,
    partner_admin: User,
    make_request: Callable[..., Delegation],
    active: Delegation,
    asked: DelegationExtension,  # noqa: F811
    staffed: StaffAssignment,
    link_a: tuple[PartnerLink, str],
) -> None:
    # Everything the writes need is made while the ledger still works: tokens, approvals
    # to withdraw (of roles needing two), a second staff member, a confirmed `pap login`.
    tokens = {
        persona: _token(request, persona, make_token)
        for persona in ("owner_admin", "partner_admin", "partner_staff")
    }
    tokens["owner_admin_2"] = make_token(owner_admin_2, with_mfa=True)
    # Beside the active delegation of ecs-admin (whose extension waits): a request of another
    # role, a third role to ask for and offer, and a fourth's active delegation to extend.
    account = active.catalog_role.cloud_account
    requested = make_request(
        catalog_role=CatalogRoleFactory(cloud_account=account, role_name="ecs-reader")
    )
    CatalogRoleFactory(cloud_account=account, role_name="ecs-operator")
    unextended = make_request(
        catalog_role=CatalogRoleFactory(cloud_account=account, role_name="ecs-auditor"),
        ends_at=timezone.now() + dt.timedelta(hours=4),
    )
    delegation_approve(delegation=unextended, approved_by=owner_admin, with_mfa=True)
    unextended = delegation_mark_active(delegation=unextended)
    approval_rule_set(catalog_role=requested.catalog_role, approvals_required=2, set_by=owner_admin)
    delegation_approve(delegation=requested, approved_by=owner_admin, with_mfa=True)
    # The waiting extension needs two approvals too, and has one to withdraw.
    approval_rule_set(catalog_role=active.catalog_role, approvals_required=2, set_by=owner_admin)
    extension_approve(extension=asked, approved_by=owner_admin, with_mfa=True)
    other_staff = make_member(company_b, Membership.Role.STAFF, email="second@company-b.example")
    device = device_authorization_start(client_name="pap")
    device_authorization_decide(
        authorization=device.authorization,
        user=partner_admin,
        organisation=company_b,
        approve=True,
        with_mfa=True,
    )
    waiting = f"/api/v1/delegations/{requested.pk}/"
    running = f"/api/v1/delegations/{active.pk}/"
    later = (unextended.ends_at + dt.timedelta(hours=8)).isoformat()  # type: ignore[operator]
    # (method, path in the schema): (persona, URL, body)
    writes: dict[tuple[str, str], tuple[str | None, str, dict]] = {
        ("post", "/api/v1/delegations/"): (
            "partner_admin",
            "/api/v1/delegations/",
            {"partner_link_code": link_a[1], "catalog_role": "ecs-operator", "reason": "Patching"},
        ),
        ("post", "/api/v1/delegations/offer/"): (
            "owner_admin",
            "/api/v1/delegations/offer/",
            {"partner": company_b.slug, "catalog_role": "ecs-operator", "reason": "Support"},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/approve/"): (
            "owner_admin_2",
            f"{waiting}approve/",
            {},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/reject/"): (
            "owner_admin_2",
            f"{waiting}reject/",
            {"reason": "No"},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/revoke/"): (
            "owner_admin",
            f"{running}revoke/",
            {"reason": "Done"},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/withdraw/"): (
            "partner_admin",
            f"{waiting}withdraw/",
            {},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/approval/withdraw/"): (
            "owner_admin",
            f"{waiting}approval/withdraw/",
            {},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/assignments/"): (
            "partner_admin",
            f"{running}assignments/",
            {"user": other_staff.email},
        ),
        ("delete", "/api/v1/delegations/{delegation_id}/assignments/{assignment_id}/"): (
            "partner_admin",
            f"{running}assignments/{staffed.pk}/",
            {},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/extensions/"): (
            "partner_admin",
            f"/api/v1/delegations/{unextended.pk}/extensions/",
            {"new_ends_at": later, "reason": "Cut-over moved"},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/approve/"): (
            "owner_admin_2",
            f"{running}extensions/{asked.pk}/approve/",
            {},
        ),
        ("post", "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/reject/"): (
            "owner_admin_2",
            f"{running}extensions/{asked.pk}/reject/",
            {"reason": "No"},
        ),
        (
            "post",
            "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/approval/withdraw/",
        ): (
            "owner_admin",
            f"{running}extensions/{asked.pk}/approval/withdraw/",
            {},
        ),
        ("post", "/api/v1/access/{delegation_id}/credentials/"): (
            "partner_staff",
            f"/api/v1/access/{active.pk}/credentials/",
            {},
        ),
        ("post", "/api/v1/device/token/"): (
            None,
            "/api/v1/device/token/",
            {"grant_type": DEVICE_GRANT, "device_code": device.device_code},
        ),
    }
    schema = SchemaGenerator().get_schema(request=None, public=True)
    answers = {}
    break_ledger(monkeypatch)
    for (method, path), (persona, url, body) in writes.items():
        client = Api(tokens[persona] if persona else None)
        response = client.delete(url) if method == "delete" else client.post(url, body)
        answers[(method, path)] = response.status_code
        if response.status_code == 503:
            assert response.json()["type"] == "/api/v1/problems/audit-unavailable"
            assert response["Retry-After"] == "30"
            assert 503 in _problem_statuses(schema, path, method), (method, path)
    assert set(answers.values()) == {503}, answers
    # Every operation listing a 503 was made to answer one, but the console: its federation
    # sign-in (the one way it writes) needs the cloud's federation service.
    listed = {(method, path) for path, method in operations()}
    listed = {key for key in listed if 503 in _problem_statuses(schema, key[1], key[0])}
    assert listed - set(writes) == {("post", "/api/v1/access/{delegation_id}/console/")}


def test_a_method_a_path_does_not_take_is_a_405_problem_said_once_in_the_description(
    request: pytest.FixtureRequest, make_token: Callable[..., str]
) -> None:
    # A 405 is about the path, so the schema says it once rather than under each operation.
    schema = SchemaGenerator().get_schema(request=None, public=True)
    assert "405 `method-not-allowed`" in schema["info"]["description"]
    assert not [key for key in PROBLEMS if 405 in _problem_statuses(schema, key[1], key[0])]
    # Every path answers one, to a caller its checks let through (PUT: no path takes it).
    callers = [None] + [_token(request, persona, make_token) for persona in PERSONAS]
    refused = set()
    for path in schema["paths"]:
        for raw in callers:
            client = Api(raw)
            response = client.client.put(
                _fill(path, MISSING), "{}", content_type="application/json", headers=client.headers
            )
            if response.status_code == 405:
                assert response["Content-Type"] == PROBLEM_CONTENT_TYPE
                assert response.json()["type"] == "/api/v1/problems/method-not-allowed"
                refused.add(path)
    assert refused == set(schema["paths"]), set(schema["paths"]) - refused
    # OPTIONS too, which no path lists: DRF answered it with the view's name and docstring.
    options_refused, options_answered = set(), set()
    for path in schema["paths"]:
        for raw in callers:
            client = Api(raw)
            response = client.client.options(_fill(path, MISSING), headers=client.headers)
            if response.status_code == 405:
                assert response.json()["type"] == "/api/v1/problems/method-not-allowed"
                options_refused.add(path)
            elif response.status_code < 400:
                options_answered.add(path)
    assert options_answered == set()
    assert options_refused == set(schema["paths"]), set(schema["paths"]) - options_refused
