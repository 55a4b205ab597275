"""Content negotiation for the API: answers are `application/json`, errors
`application/problem+json` (RFC 9457), and a client may accept either to get both.

A client that accepts only `application/problem+json` (RFC 9457 §3 suggests sending it to
say "I read problem details") still reads JSON: problem+json is JSON under a `+json` suffix
(RFC 6839). Its errors are exactly what it asked for; its successes come as
`application/json`, the API's one representation, which RFC 9110 §12.5.1 lets a server send
instead of a 406 (a 406 would itself be a problem document and hide the real answer). A 406
is left for clients that accept neither type, such as a browser asking for HTML.

A media range with `q=0` is "not acceptable" (RFC 9110 §12.4.2), not the lowest preference:
such ranges are dropped before matching (DRF reads `q` only for ordering).
"""

from typing import Any

from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.utils.mediatypes import _MediaType

# Here, not in `api.problems`: DRF imports this module while `api.problems` is loading.
JSON_CONTENT_TYPE = "application/json"
PROBLEM_CONTENT_TYPE = "application/problem+json"


def _acceptable(token: str) -> bool:
    quality = _MediaType(token).params.get("q", "1")
    try:
        return float(quality) > 0
    except ValueError:
        return True  # a malformed weight is no refusal


class JsonOrProblemNegotiation(DefaultContentNegotiation):
    """DRF's negotiation without the ranges weighted `q=0`, falling back to the JSON renderer
    for a client that accepts problem documents but not `application/json` itself."""

    def get_accept_list(self, request: Request) -> list[str]:
        return [token for token in super().get_accept_list(request) if _acceptable(token)]

    def select_renderer(
        self, request: Request, renderers: Any, format_suffix: str | None = None
    ) -> tuple[Any, str]:
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except NotAcceptable:
            problem = _MediaType(PROBLEM_CONTENT_TYPE)
            if not any(_MediaType(token).match(problem) for token in self.get_accept_list(request)):
                raise
            for renderer in renderers:
                if renderer.media_type == JSON_CONTENT_TYPE:
                    return renderer, renderer.media_type
            raise
