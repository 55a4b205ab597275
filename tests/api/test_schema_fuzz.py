"""The API fuzzed against its own OpenAPI document (schemathesis).

Every operation of the schema the portal generates is called with requests schemathesis
derives from it: its coverage phase (boundary values, each required part left out, wrong
types, methods no path takes) and a few fuzzed ones, valid and invalid. Each request is sent
by company A's owner admin and by company B's partner admin (personal tokens with every
scope, MFA-fresh) through the portal's WSGI handler, in the delegation world: A's `ecs-admin`
role, B on A's allow-list, a requested and an active delegation, an extension asked and a
staff member assigned. A path's ids are the world's, a foreign company's, or schemathesis's.

For every answer: never a 5xx; the status, content type, body and headers the schema
documents (a method a path does not take is a 405 naming the ones it does); invalid input is
refused with a 4xx; an error changed nothing; a foreign object is never found or shown.

Bounded for CI: derandomised (the same requests on every run), a few fuzzed examples per
operation, no shrinking (a failure prints the request as curl)."""

import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from accounts.models import User
from audit.models import AuditEvent
from delegations.models import (
    Delegation,
    DelegationApproval,
    DelegationExtension,
    OutboxMessage,
    StaffAssignment,
)
from delegations.partner.services import staff_assign
from tests.api.conftest import ALL_SCOPES
from tests.api.test_extensions import asked  # noqa: F401
from tests.delegations.factories import CatalogRoleFactory
from tests.delegations.test_isolation import FOREIGN_MARKERS, foreign  # noqa: F401

pytestmark = pytest.mark.django_db

# The document /api/v1/schema/ serves, generated in this process as the other schema tests do.
SCHEMA = schemathesis.openapi.from_dict(
    SchemaGenerator().get_schema(request=None, public=True),
    config=schemathesis.Config.from_dict(
        {"phases": {"coverage": {"enabled": True}, "fuzzing": {"enabled": True}}}
    ),
)
APP = get_wsgi_application()
PERSONAS = ("owner_admin", "partner_admin")
# Where a path's ids come from: the world's objects, a foreign company's, or schemathesis.
SOURCES = ("requested", "active", "foreign", "generated")
# The test puts its own token and ids in every request: an invalid value schemathesis drew
# there never reaches the portal, so only the body and the query are judged for refusal.
REPLACED = (ParameterLocation.PATH, ParameterLocation.HEADER)


def invalid_input_is_refused(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """schemathesis's negative_data_rejection (an invalid request is a 4xx), for requests
    whose invalid part the test sends as drawn."""
    meta = case.meta
    if meta is not None and any(
        info.mode.is_negative for location, info in meta.components.items() if location in REPLACED
    ):
        return None
    return negative_data_rejection(ctx, response, case)


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    unsupported_method,
    missing_required_header,
    invalid_input_is_refused,
]


@pytest.fixture
def in_the_test_transaction() -> Iterator[None]:
    """Requests go through the real WSGI handler, which closes the database connection when a
    request starts and ends: in a test, the test's transaction. Django's test client unplugs
    the same two receivers."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(
    make_request: Callable[..., Delegation],
    active: Delegation,
    asked: DelegationExtension,  # noqa: F811
    partner_admin: User,
    partner_staff: User,
    foreign: dict,  # noqa: F811
    decisions_on: None,
) -> dict[str, dict[str, str]]:
    """The ids each source puts in a path. The requested delegation is of a second role (a
    partner has one delegation of a role at a time)."""
    requested = make_request(
        catalog_role=CatalogRoleFactory(
            cloud_account=active.catalog_role.cloud_account, role_name="ecs-reader"
        )
    )
    staffed = staff_assign(delegation=active, user=partner_staff, assigned_by=partner_admin)
    own = {
        "extension_id": str(asked.pk),
        "assignment_id": str(staffed.pk),
        # The owner B reached with A's partner link.
        "owner": active.owner.slug,
    }
    return {
        "requested": {**own, "delegation_id": str(requested.pk)},
        "active": {**own, "delegation_id": str(active.pk)},
        "foreign": {
            "delegation_id": str(foreign["delegation"].pk),
            "extension_id": str(foreign["delegation"].pk),
            "assignment_id": str(foreign["link"].pk),
            "owner": foreign["delegation"].owner.slug,
        },
    }


@pytest.fixture
def tokens(
    request: pytest.FixtureRequest, make_token: Callable[..., str], world: dict
) -> dict[str, str]:
    return {
        persona: make_token(request.getfixturevalue(persona), scopes=ALL_SCOPES, with_mfa=True)
        for persona in PERSONAS
    }


def written() -> tuple:
    """What a refused request must leave as it was."""
    return (
        sorted(Delegation.objects.values_list("id", "status", "version", "ends_at")),
        sorted(DelegationExtension.objects.values_list("id", "status")),
        sorted(StaffAssignment.objects.values_list("id", "ended_at", "session_policy")),
        DelegationApproval.objects.count(),
        OutboxMessage.objects.count(),
        # A refusal is audited on purpose (outcome "denied"); a change would be a success.
        AuditEvent.objects.filter(outcome=AuditEvent.Outcome.SUCCESS).count(),
    )


def source_of(case: schemathesis.Case) -> str:
    """Where this request's ids come from: a function of what schemathesis drew, so the same
    requests go to the same objects on every run (coverage's examples take no extra draw)."""
    drawn = repr(sorted((case.path_parameters or {}).items())).encode()
    return SOURCES[zlib.crc32(drawn) % len(SOURCES)]


@SCHEMA.parametrize()
@settings(
    max_examples=15,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],
    # The world is made once per operation and shared by its examples, on purpose.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
def test_every_operation_answers_as_its_schema_says(
    case: schemathesis.Case,
    world: dict[str, dict[str, str]],
    tokens: dict[str, str],
    in_the_test_transaction: None,
) -> None:
    source = source_of(case)
    if case.path_parameters and source != "generated":
        # A path parameter the world has no object for keeps the drawn value.
        case.path_parameters = {
            name: world[source].get(name, drawn) for name, drawn in case.path_parameters.items()
        }
    for persona in PERSONAS:
        before = written()
        response = case.call_and_validate(
            app=APP, headers={"Authorization": f"Bearer {tokens[persona]}"}, checks=CHECKS
        )
        status = response.status_code
        if status >= 400:
            assert written() == before, (persona, status, response.text)
        # (OPTIONS, which DRF answers for any path of a view, looks nothing up.)
        if (
            source == "foreign"
            and case.path_parameters
            and case.method.upper() == case.operation.method.upper()
        ):
            assert status >= 400, (persona, status, response.text)
        leaked = [marker for marker in FOREIGN_MARKERS if marker in response.text]
        assert not leaked, (persona, leaked)
