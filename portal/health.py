"""Liveness and readiness probes for load balancers and compose health checks."""

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core.broker import bounded_broker_connection, publish_timeout
from portal.celery import app as celery_app


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _check_database() -> str | None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any driver error means "not ready"
        return f"database unreachable: {type(exc).__name__}"
    return None


def _check_broker() -> str | None:
    """One connection attempt bounded like a publish (`PORTAL_BROKER_PUBLISH_TIMEOUT_SECONDS`):
    a probe that waits out kombu's retries would time out in the load balancer instead of
    saying why."""
    timeout = publish_timeout()
    try:
        with bounded_broker_connection(celery_app, timeout):
            pass
    except Exception as exc:  # kombu raises transport-specific errors
        return f"broker unreachable: {type(exc).__name__}"
    return None


@never_cache
@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    problems = [p for p in (_check_database(), _check_broker()) if p]
    if problems:
        return JsonResponse({"status": "unavailable", "reasons": problems}, status=503)
    return JsonResponse({"status": "ready"})
