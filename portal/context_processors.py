from django.conf import settings
from django.http import HttpRequest


def portal(request: HttpRequest) -> dict:
    return {
        "PORTAL_EMBEDDED": settings.PORTAL_EMBEDDED,
        "PORTAL_REQUIRE_MFA": settings.PORTAL_REQUIRE_MFA,
    }
