"""The API's tenant crawl: the OpenAPI schema is generated and validated, then every
operation in it is called as every persona of companies A and B with ids of another
organisation's objects. A foreign id answers exactly as a missing id does, nothing answers
5xx, every error is problem+json, no answer shows the foreign data, and the foreign objects
are unchanged afterwards."""

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

from accounts.models import Organisation, User
from api.models import SERVICE_ACCOUNT_SCOPES
from api.problems import PROBLEM_CONTENT_TYPE
from api.services import service_account_create
from tests.api.conftest import ALL_SCOPES, Api

# The foreign world of the pages' own crawl: company C's delegation to D, a link, a finding.
from tests.delegations.test_isolation import FOREIGN_MARKERS, foreign, snapshot  # noqa: F401

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
    assert len(operations()) >= 18


def _fill(path: str, value: str) -> str:
    return (
        path.replace("{delegation_id}", value)
        .replace("{assignment_id}", value)
        .replace("{extension_id}", value)
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
BODY = OBJECT | {400}
DECISION = BODY | {409}
PROBLEMS = {
    ("get", "/api/v1/me/"): AUTHENTICATED,
    ("get", "/api/v1/delegations/"): AUTHENTICATED,
    ("post", "/api/v1/delegations/"): BODY | {429},
    ("post", "/api/v1/delegations/offer/"): DECISION,
    ("get", "/api/v1/delegations/{delegation_id}/"): OBJECT,
    ("post", "/api/v1/delegations/{delegation_id}/approve/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/reject/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/revoke/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/withdraw/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/approval/withdraw/"): OBJECT | {409},
    ("get", "/api/v1/delegations/{delegation_id}/assignments/"): OBJECT,
    ("post", "/api/v1/delegations/{delegation_id}/assignments/"): BODY,
    ("delete", "/api/v1/delegations/{delegation_id}/assignments/{assignment_id}/"): OBJECT,
    ("get", "/api/v1/delegations/{delegation_id}/extensions/"): OBJECT,
    ("post", "/api/v1/delegations/{delegation_id}/extensions/"): BODY,
    ("get", "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/"): OBJECT,
    ("post", "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/approve/"): DECISION,
    ("post", "/api/v1/delegations/{delegation_id}/extensions/{extension_id}/reject/"): DECISION,
    ("get", "/api/v1/delegations/{delegation_id}/timeline/"): OBJECT | {400},
    ("get", "/api/v1/assignments/"): AUTHENTICATED,
    ("get", "/api/v1/catalog-roles/"): AUTHENTICATED,
    ("get", "/api/v1/cloud-accounts/"): AUTHENTICATED,
    ("get", "/api/v1/access/"): AUTHENTICATED,
    ("get", "/api/v1/access/{delegation_id}/"): OBJECT,
    ("post", "/api/v1/access/{delegation_id}/console/"): OBJECT | {429},
    ("post", "/api/v1/access/{delegation_id}/credentials/"): BODY | {429},
    ("get", "/api/v1/audit/events/"): AUTHENTICATED | {400, 404},
    ("get", "/api/v1/audit/access-report/"): AUTHENTICATED | {400},
    ("post", "/api/v1/device/code/"): {400, 406, 429},
    ("post", "/api/v1/device/token/"): {400, 406},
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
