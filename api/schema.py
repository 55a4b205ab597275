"""drf-spectacular: how the bearer token appears in the OpenAPI schema (loaded by apps.ready)."""

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


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
