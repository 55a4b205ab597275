"""The local webhook inbox: with `make run`, the seeded generic webhook channel posts here and
`/dev/webhooks/` shows what arrived, so chat notifications can be seen without the internet.

Only when the portal runs embedded or in DEBUG (otherwise 404), like `/dev/mail/`. The
receiving URL carries a token derived from SECRET_KEY: it takes posts from the portal's
worker, which has no CSRF token, and refuses (403) anyone who does not know the token.
Received bodies live in the cache (the last 50), never in the database.
"""

from __future__ import annotations

import hmac
import json
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from notifications.services import absolute_url
from notifications.signing import EVENT_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER
from notifications.webhook_urls import local_targets_allowed

CACHE_KEY = "notifications.dev_webhooks"
KEEP = 50
MAX_BODY_BYTES = 64 * 1024


def receive_token() -> str:
    return salted_hmac("notifications.dev_webhooks", "receive").hexdigest()[:32]


def receive_url() -> str:
    return absolute_url(reverse("dev_webhooks_receive", args=[receive_token()]))


def received() -> list[dict[str, Any]]:
    return list(cache.get(CACHE_KEY) or [])


@csrf_exempt
@never_cache
def receive(request: HttpRequest, token: str) -> HttpResponse:
    # The token first: without it nobody learns whether this inbox exists.
    if not hmac.compare_digest(token.encode(), receive_token().encode()):
        return HttpResponseForbidden()
    if not local_targets_allowed():
        raise Http404
    if request.method != "POST":
        return HttpResponse(status=405, headers={"Allow": "POST"})
    body = request.body[:MAX_BODY_BYTES]
    try:
        parsed: Any = json.loads(body)
    except ValueError:
        parsed = None
    entry = {
        "received_at": timezone.now().isoformat(),
        "event": request.headers.get(EVENT_HEADER, ""),
        "timestamp": request.headers.get(TIMESTAMP_HEADER, ""),
        "signature": request.headers.get(SIGNATURE_HEADER, ""),
        "body": json.dumps(parsed, indent=2, ensure_ascii=False)
        if parsed is not None
        else body.decode("utf-8", "replace"),
        "title": parsed.get("title", "") if isinstance(parsed, dict) else "",
    }
    cache.set(CACHE_KEY, [entry, *received()][:KEEP], timeout=None)
    return JsonResponse({"ok": True})


def _parsed_time(value: object) -> datetime | object:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return value


@never_cache
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    if not local_targets_allowed():
        raise Http404
    return render(
        request,
        "notifications/dev_webhooks.html",
        {
            # Times as datetimes, so the page shows them in the reader's zone.
            "entries": [
                {**entry, "received_at": _parsed_time(entry.get("received_at"))}
                for entry in received()
            ],
            # Without its token: the page shows where messages arrive, not how to post there.
            "receive_base": receive_url().removesuffix(f"{receive_token()}/"),
            "embedded": settings.PORTAL_EMBEDDED,
        },
    )
