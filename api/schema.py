"""drf-spectacular: how the bearer token and the problem documents appear in the OpenAPI
schema (the bearer scheme is loaded by apps.ready, the schema class by REST_FRAMEWORK).

Every operation lists the problem+json answers it can give, with the one `Problem` schema:
406 everywhere (content negotiation), 401 and 403 where a token is checked, 404 where the
path names an object, 400, 413 and 415 where a body is read, 503 where an authenticated
write records its audit event, and whatever else a view declares in `problem_statuses` (a 404
for a name in the body, a 409 for a decision, a 429 for a budget, a 503 for an open view that
writes the audit log). A 405 (a method the path does not take) concerns the path, not an
operation: the API's description says it once (SPECTACULAR_SETTINGS).
"""

import copy
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent

from api.problems import PROBLEM_CONTENT_TYPE, PROBLEM_TYPES, problem_type


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.BearerTokenAuthentication"
    name = "PersonalAccessToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "pap_<prefix>_<secret>",
            "description": "A personal access token, a service account's token or pap login's.",
        }


# Per status: which problem types (slugs of `type`) answer with it, and what it means.
PROBLEM_RESPONSES: dict[int, str] = {
    400: "`validation` (`errors` names each field's problems), `malformed` or `unknown-fields`.",
    401: "`unauthenticated`: no token, or one unknown, expired, revoked or whose membership ended.",
    403: "`forbidden` (role, organisation kind or service account), `insufficient-scope` "
    "(`required_scope` names it), `decisions-disabled`, `mfa-required`, `no-access` or "
    "`credentials-refused`.",
    404: "`not-found`, or `no-access` with `reason` none: nothing with this id (or name) exists "
    "for your organisation.",
    406: "`not-acceptable`: accept application/json or application/problem+json.",
    409: "`conflict`: the object is no longer in the state you acted on.",
    413: "`too-large`: the body is larger than the portal accepts (see the API's description).",
    415: "`unsupported-media-type`: send the body as application/json.",
    429: "`rate-limited`: try again after `Retry-After` seconds.",
    503: "`audit-unavailable`: the audit log could not record the change, so nothing was "
    "changed; try again.",
}
BODY_METHODS = ("POST", "PUT", "PATCH")
WRITE_METHODS = (*BODY_METHODS, "DELETE")
# The values of a problem's `type` (SPECTACULAR_SETTINGS names their enum ProblemTypeEnum).
PROBLEM_TYPE_URIS = sorted(problem_type(slug) for slug in PROBLEM_TYPES)
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": {
            "schema": {"type": "string"},
            "description": 'The bearer challenge: `Bearer realm="api"`.',
        }
    },
    429: {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds to wait before trying again.",
        }
    },
    503: {
        "Retry-After": {
            "schema": {"type": "integer"},
            "description": "Seconds to wait before trying again.",
        }
    },
}
PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": (
        "A problem document (RFC 9457, application/problem+json). Branch on `type`, which is "
        "stable and resolves to a description of the problem; `title` is fixed per type, "
        "`detail` describes this occurrence in the request's language. Some types add "
        "members: `errors` (validation), `required_scope`, `reason`, `delegation_status`, "
        "`request_url`, `code`."
    ),
    "properties": {
        "type": {"type": "string", "enum": PROBLEM_TYPE_URIS},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": {},
            "description": "`validation`: the messages per field.",
        },
    },
    "required": ["type", "title", "status", "detail"],
    "additionalProperties": {},
}


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's schema plus each operation's problem+json answers."""

    def _problem_statuses(self) -> set[int]:
        statuses = {406}
        authenticated = bool(getattr(self.view, "authentication_classes", None))
        if authenticated:
            statuses |= {401, 403}
        if "{" in self.path:
            statuses.add(404)
        if self.method in BODY_METHODS and self.get_request_serializer() is not None:
            statuses |= {400, 413, 415}
        # An authenticated write goes through a service that records it in the audit log in
        # the same transaction (`ApiView`), and a ledger that refuses the event undoes it.
        if authenticated and self.method in WRITE_METHODS:
            statuses.add(503)
        declared = getattr(self.view, "problem_statuses", {})
        statuses.update(declared.get(self.method, ()))
        return statuses

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        # Copies: drf-spectacular's postprocessing edits the schema it was given in place.
        component = ResolvedComponent(
            name="Problem",
            type=ResolvedComponent.SCHEMA,
            schema=copy.deepcopy(PROBLEM_SCHEMA),
            object="Problem",
        )
        self.registry.register_on_missing(component)
        for status in sorted(self._problem_statuses()):
            answer = responses.setdefault(str(status), {"description": PROBLEM_RESPONSES[status]})
            answer.setdefault("content", {})[PROBLEM_CONTENT_TYPE] = {"schema": component.ref}
            if status in _HEADERS:
                answer.setdefault("headers", {}).update(copy.deepcopy(_HEADERS[status]))
        return responses
