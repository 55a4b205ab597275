"""ActionTrail (API 2020-07-06): what happened in an account, through the official SDK.

One `lookup_events` call is one request (one page), newest events first or oldest first; the
caller follows `next_token`. Requests from one client (in any of its threads) are paced to
ActionTrail's limit (2 queries per second, configurable with `ALIBABA_ACTIONTRAIL_QPS`), so
a paging loop never provokes throttling by itself. Events come back as the plain dictionaries
ActionTrail sends: their shape is the ingestion's to check.

ActionTrail is regional: a client reads one region's trail. The endpoint setting may name the
region (`actiontrail.{region}.aliyuncs.com`), and every request carries it in the
`x-acs-region-id` header too (as Alibaba's core SDK does for its requests), which is how
cloudsim, one endpoint for every region, tells the regions apart.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from alibabacloud_actiontrail20200706 import models as trail_models
from alibabacloud_actiontrail20200706.client import Client as _TrailSdkClient
from alibabacloud_tea_openapi import utils_models as openapi_models
from django.conf import settings

from cloud.sdk import DEFAULT_REGION, InvalidResponse, SdkTransport, body_of, optional_text
from cloud.values import CloudCredentials

MAX_PAGE_SIZE = 50
# ActionTrail's LookupAttribute keys the portal filters by.
ATTRIBUTE_KEYS = frozenset(
    {
        "ServiceName",
        "EventName",
        "User",
        "EventId",
        "ResourceType",
        "ResourceName",
        "EventRW",
        "EventAccessKeyId",
        "SourceIpAddress",
        "EventType",
        "RoleName",
    }
)


@dataclass(frozen=True)
class EventPage:
    events: list[dict[str, Any]]
    next_token: str | None
    request_id: str | None = None


@dataclass
class Pacer:
    """At most `per_second` requests per second from one client (a minimum gap between them).
    `clock` and `sleep` are injectable so tests can check the pacing without waiting."""

    per_second: float
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _last: float | None = field(default=None, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def wait(self) -> None:
        if self.per_second <= 0:
            return
        gap = 1.0 / self.per_second
        with self._lock:
            now = self.clock()
            if self._last is not None and now < self._last + gap:
                self.sleep(self._last + gap - now)
                now = self._last + gap
            self._last = now


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class ActionTrailClient(SdkTransport):
    """LookupEvents for one account's credentials. Create one per task; its lookups may run in
    several threads at once (they share the pacer, as the account shares ActionTrail's limit)."""

    def __init__(
        self,
        credentials: CloudCredentials,
        *,
        region_id: str = DEFAULT_REGION,
        endpoint: str | None = None,
        pacer: Pacer | None = None,
        **options: Any,
    ) -> None:
        super().__init__(credentials, region_id=region_id, **options)
        self.region_id = region_id
        self._trail_endpoint = (endpoint or settings.ALIBABA_ACTIONTRAIL_ENDPOINT).replace(
            "{region}", region_id
        )
        self._trail = _TrailSdkClient(
            self._sdk_config(
                endpoint=self._trail_endpoint,
                global_parameters=openapi_models.GlobalParameters(
                    headers={"x-acs-region-id": region_id}
                ),
            )
        )
        self.pacer = pacer or Pacer(per_second=settings.ALIBABA_ACTIONTRAIL_QPS)

    def lookup_events(
        self,
        *,
        start: datetime,
        end: datetime,
        next_token: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
        attributes: dict[str, str] | None = None,
        oldest_first: bool = False,
    ) -> EventPage:
        """One page of events between `start` and `end`, newest first (ActionTrail's default
        direction, BACKWARD) or `oldest_first` (FORWARD); `next_token` continues either."""
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("LookupEvents needs aware datetimes.")
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"A page holds 1 to {MAX_PAGE_SIZE} events.")
        unknown = set(attributes or {}) - ATTRIBUTE_KEYS
        if unknown or len(attributes or {}) > 2:
            raise ValueError("LookupEvents takes at most two known attributes.")
        request = trail_models.LookupEventsRequest(
            start_time=_iso(start),
            end_time=_iso(end),
            max_results=str(page_size),
            next_token=next_token or None,
            direction="FORWARD" if oldest_first else None,
            lookup_attribute=[
                trail_models.LookupEventsRequestLookupAttribute(key=key, value=value)
                for key, value in (attributes or {}).items()
            ]
            or None,
        )

        def read(response: Any, request_id: str | None) -> EventPage:
            body = body_of(response, request_id)
            events = body.events if body.events is not None else []
            if not isinstance(events, list):
                raise InvalidResponse("Events", request_id)
            token = optional_text(body.next_token)
            if token is not None and token == next_token:
                raise InvalidResponse("NextToken (it did not advance)", request_id)
            return EventPage(
                events=[event for event in events if isinstance(event, dict)],
                next_token=token,
                request_id=request_id,
            )

        def send() -> Any:
            self.pacer.wait()
            return self._trail.lookup_events(request)

        return self._call("LookupEvents", f"{_iso(start)}..{_iso(end)}", send, read, mutating=False)
