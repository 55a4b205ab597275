"""A fixed-window rate limit in Django's cache (the same cache allauth counts sign-ins in).

Keys are hashed before they reach the cache, so a credentials-URI key never lands in Redis.
"""

from __future__ import annotations

import hashlib
import math
import time

from django.core.cache import cache


def parse_rate(rate: str) -> tuple[int, int]:
    """ "30/60" → (30 uses, per 60 seconds)."""
    count_text, _, seconds_text = (rate or "").partition("/")
    count, seconds = int(count_text), int(seconds_text or 60)
    if count < 1 or seconds < 1:
        raise ValueError(f"A rate is <count>/<seconds> with both positive; got {rate!r}.")
    return count, seconds


def rate_limit_consume(*, scope: str, key: str, rate: str) -> float | None:
    """Count one use of `scope` by `key`. Returns None when allowed, else the seconds until the
    window resets."""
    limit, window = parse_rate(rate)
    now = time.time()
    bucket = int(now // window)
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:32]
    cache_key = f"portal:ratelimit:{scope}:{digest}:{bucket}"
    if cache.add(cache_key, 1, timeout=window + 1):
        used = 1
    else:
        try:
            used = cache.incr(cache_key)
        except ValueError:  # expired between add and incr
            cache.set(cache_key, 1, timeout=window + 1)
            used = 1
    if used > limit:
        return max(1.0, math.ceil((bucket + 1) * window - now))
    return None
