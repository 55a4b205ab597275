"""Fault injection per API action, seeded and reproducible.

Spec syntax (CLI ``--fault``, env ``CLOUDSIM_FAULTS`` comma-separated, or strings in the admin
JSON): ``Action:kind[:probability[:arg]]``. ``Action`` is an API action name (``GetRole``) or
``*`` for every action. Kinds:

=============  ==========================================================================
latency        sleep ``arg`` ms (``50``) or a random ms in a range (``20-80``), then proceed
throttle       400 ``Throttling.User``
throttle429    429 ``Throttling.User`` with ``x-acs-retry-after: arg`` ms (default 1000)
internal       500 ``InternalError``
badgateway     502 with an HTML (non-JSON) body
drop           the connection is closed without a response (a reset)
hang           no response for ``arg`` seconds (default 30), then the connection is closed
lost           the call is applied and committed, then the connection is closed
stale          for ``arg`` seconds (default 5) after a trust-policy write, GetRole returns the
               previous document (probability applies per read inside the window)
=============  ==========================================================================

Each (action, kind) rule draws from its own ``random.Random(f"{seed}:{action}:{kind}")``, so
the n-th call of an action gets the same decision in every run with the same seed, however
calls of other actions interleave. A rule may also carry ``count`` (JSON only): it fires at
most that many times.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

KINDS = (
    "latency",
    "throttle",
    "throttle429",
    "internal",
    "badgateway",
    "drop",
    "hang",
    "lost",
    "stale",
)
# Kinds that replace the response; at most one of them applies to a call (first match wins).
RESPONSE_KINDS = ("throttle", "throttle429", "internal", "badgateway", "drop", "hang", "lost")


class FaultSpecError(ValueError):
    """A fault specification that cannot be understood."""


@dataclass
class FaultRule:
    action: str
    kind: str
    probability: float = 1.0
    arg: str | None = None
    count: int | None = None
    fired: int = 0
    rng: random.Random = field(default_factory=random.Random, repr=False)

    def to_json(self) -> dict:
        return {
            "action": self.action,
            "kind": self.kind,
            "probability": self.probability,
            "arg": self.arg,
            "count": self.count,
            "fired": self.fired,
        }

    def latency_seconds(self) -> float:
        low, high = parse_latency(self.arg or "0")
        return (low if low == high else self.rng.uniform(low, high)) / 1000.0

    def arg_float(self, default: float) -> float:
        if self.arg in (None, ""):
            return default
        return float(self.arg)  # validated when the rule was built


def parse_latency(text: str) -> tuple[float, float]:
    try:
        if "-" in text:
            low_text, high_text = text.split("-", 1)
            low, high = float(low_text), float(high_text)
        else:
            low = high = float(text)
    except ValueError:
        raise FaultSpecError(f"latency must be ms or min-max ms, got {text!r}") from None
    if low < 0 or high < low or high > 600_000:
        raise FaultSpecError(f"latency range {text!r} is invalid")
    return low, high


def build_rule(
    *,
    action: str,
    kind: str,
    probability: float | str | None = None,
    arg: str | None = None,
    count: int | None = None,
) -> FaultRule:
    action = (action or "").strip()
    if not action or not (action == "*" or action.isalnum()):
        raise FaultSpecError(f"fault action must be an API action name or *, got {action!r}")
    kind = (kind or "").strip().lower()
    if kind not in KINDS:
        raise FaultSpecError(f"unknown fault kind {kind!r}; use one of {', '.join(KINDS)}")
    try:
        prob = 1.0 if probability in (None, "") else float(probability)
    except (TypeError, ValueError):
        raise FaultSpecError(f"probability must be a number, got {probability!r}") from None
    if not 0.0 <= prob <= 1.0:
        raise FaultSpecError(f"probability must be within 0..1, got {prob}")
    arg = None if arg in (None, "") else str(arg).strip()
    if kind == "latency":
        parse_latency(arg or "0")
    elif kind in ("throttle429", "hang", "stale") and arg is not None:
        try:
            value = float(arg)
        except ValueError:
            raise FaultSpecError(f"{kind} argument must be a number, got {arg!r}") from None
        if value < 0 or value > 3600 * 1000:
            raise FaultSpecError(f"{kind} argument {arg!r} is out of range")
    if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 0):
        raise FaultSpecError(f"count must be a non-negative integer, got {count!r}")
    return FaultRule(action=action, kind=kind, probability=prob, arg=arg, count=count)


def parse_spec(spec: str) -> FaultRule:
    parts = spec.strip().split(":")
    if len(parts) < 2 or len(parts) > 4:
        raise FaultSpecError(f"fault spec must be Action:kind[:probability[:arg]], got {spec!r}")
    action, kind = parts[0], parts[1]
    probability = parts[2] if len(parts) > 2 else None
    arg = parts[3] if len(parts) > 3 else None
    return build_rule(action=action, kind=kind, probability=probability, arg=arg)


def parse_specs(text: str) -> list[FaultRule]:
    return [parse_spec(item) for item in text.split(",") if item.strip()]


@dataclass(frozen=True)
class FaultDecision:
    """What to do with one call: added latency, then at most one response fault."""

    latency: float = 0.0
    kind: str | None = None
    arg: str | None = None
    rule: FaultRule | None = None

    @property
    def retry_after_ms(self) -> int:
        return int(float(self.arg)) if self.arg else 1000

    @property
    def hang_seconds(self) -> float:
        return float(self.arg) if self.arg else 30.0


class FaultSet:
    """The active fault rules; thread-safe, replaced atomically by the admin endpoint."""

    def __init__(
        self, *, seed: int = 0, rules: list[FaultRule] | None = None, latency_ms: str | None = None
    ) -> None:
        self._lock = threading.Lock()
        self.seed = seed
        self.rules: list[FaultRule] = []
        self.latency_ms: str | None = None
        self.replace(rules or [], seed=seed, latency_ms=latency_ms)

    def _seed_rule(self, rule: FaultRule) -> None:
        rule.rng = random.Random(f"{self.seed}:{rule.action}:{rule.kind}")
        rule.fired = 0

    def replace(
        self, rules: list[FaultRule], *, seed: int | None = None, latency_ms: str | None = None
    ) -> None:
        if latency_ms not in (None, ""):
            parse_latency(str(latency_ms))
        with self._lock:
            if seed is not None:
                self.seed = seed
            self._global_rng = random.Random(f"{self.seed}:*:global-latency")
            self.latency_ms = None if latency_ms in (None, "") else str(latency_ms)
            for rule in rules:
                self._seed_rule(rule)
            self.rules = list(rules)

    def add(self, rules: list[FaultRule]) -> None:
        with self._lock:
            for rule in rules:
                self._seed_rule(rule)
            self.rules.extend(rules)

    def clear(self) -> None:
        self.replace([], latency_ms=None)

    def to_json(self) -> dict:
        with self._lock:
            return {
                "seed": self.seed,
                "latency_ms": self.latency_ms,
                "faults": [rule.to_json() for rule in self.rules],
            }

    def _fires(self, rule: FaultRule) -> bool:
        if rule.count is not None and rule.fired >= rule.count:
            return False
        # Draw even for probability 1 so the random sequence does not depend on it.
        hit = rule.rng.random() < rule.probability
        if hit:
            rule.fired += 1
        return hit

    def decide(self, action: str) -> FaultDecision:
        with self._lock:
            latency = 0.0
            if self.latency_ms:
                low, high = parse_latency(self.latency_ms)
                latency += (low if low == high else self._global_rng.uniform(low, high)) / 1000
            chosen: FaultRule | None = None
            for rule in self.rules:
                if rule.action not in ("*", action) or rule.kind == "stale":
                    continue
                if rule.kind == "latency":
                    if self._fires(rule):
                        latency += rule.latency_seconds()
                elif chosen is None and self._fires(rule):
                    chosen = rule
            if chosen is None:
                return FaultDecision(latency=latency)
            return FaultDecision(latency=latency, kind=chosen.kind, arg=chosen.arg, rule=chosen)

    def stale_window(self, action: str) -> float:
        """Seconds of stale reads for this call (0 when no stale rule fires)."""
        with self._lock:
            for rule in self.rules:
                if rule.kind == "stale" and rule.action in ("*", action) and self._fires(rule):
                    return rule.arg_float(5.0)
        return 0.0
