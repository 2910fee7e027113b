"""Circuit breakers, one per provider × model: the rules, pure functions of a breaker's state
(kept and shared by gateway.guards.breaker_board, shown and reset by gateway.guards.breaker_staff).

The rules live in one pure function, `transition`, whichever the store:
- closed → open after `failures` consecutive failures, or when the failures in the current
  window reach `error_rate` of at least `min_requests` requests;
- open → half-open after the cooldown: one request, claimed by one process, probes;
- half-open → closed after `successes` probes succeed; → open again on a failure, with the
  cooldown doubled, up to `max_cooldown_seconds`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from django.conf import settings

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True, slots=True)
class Policy:
    failures: int = 5
    window_seconds: float = 60.0
    min_requests: int = 20
    error_rate: float = 0.5
    cooldown_seconds: float = 15.0
    max_cooldown_seconds: float = 600.0
    successes: int = 2
    probe_seconds: float = 30.0  # a probe that has not reported by then is presumed lost


def policy() -> Policy:
    return Policy(**settings.GATEWAYZ_BREAKER)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Breaker:
    state: str = CLOSED
    consecutive: int = 0  # failures in a row
    window_start: float = 0.0
    requests: int = 0  # in the current window
    failures: int = 0  # in the current window
    opened_at: float = 0.0
    cooldown: float = 0.0
    probe_until: float = 0.0  # half-open: a probe is out until then
    probe_successes: int = 0
    last_error: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == CLOSED and not self.consecutive and not self.failures

    def retry_at(self) -> float:
        return self.opened_at + self.cooldown

    def routable(self, now: float) -> bool | None:
        """True: route to it; False: skip it; None: only as a probe (claim one first)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return None if now >= self.retry_at() else False
        return None if now >= self.probe_until else False

    def probing(self, now: float) -> bool:
        """Half-open with a probe out: its verdict is due within moments, so a request
        may wait for it rather than be refused."""
        return self.state == HALF_OPEN and now < self.probe_until


def transition(b: Breaker, ok: bool, count: int, now: float, p: Policy, error: str) -> Breaker:
    """`count` outcomes, all successes or all failures, recorded at `now`."""
    if now - b.window_start >= p.window_seconds:
        b = replace(b, window_start=now, requests=0, failures=0)
    b = replace(b, requests=b.requests + count, failures=b.failures + (0 if ok else count))
    if ok:
        b = replace(b, consecutive=0)
        if b.state == HALF_OPEN:
            b = replace(b, probe_successes=b.probe_successes + count, probe_until=0.0)
            if b.probe_successes >= p.successes:
                b = Breaker()  # closed, its history forgiven
        return b
    b = replace(b, consecutive=b.consecutive + count, last_error=error[:200])
    if b.state == HALF_OPEN:
        cooldown = min(max(b.cooldown, p.cooldown_seconds) * 2, p.max_cooldown_seconds)
        return _opened(b, now, cooldown)
    if b.state == CLOSED and (
        b.consecutive >= p.failures
        or (b.requests >= p.min_requests and b.failures >= p.error_rate * b.requests)
    ):
        return _opened(b, now, p.cooldown_seconds)
    return b  # open already: late reports of requests sent before it opened


def _opened(b: Breaker, now: float, cooldown: float) -> Breaker:
    log.warning("circuit opened for %.0f s after: %s", cooldown, b.last_error)
    return replace(b, state=OPEN, opened_at=now, cooldown=cooldown, probe_successes=0)


def probe_claimed(b: Breaker, now: float, p: Policy) -> Breaker | None:
    """The breaker with a probe out, or None when no probe may go now. The successes of
    earlier probes still count: half-open closes after `successes` probes in a row."""
    if b.routable(now) is not None:
        return None
    successes = b.probe_successes if b.state == HALF_OPEN else 0
    return replace(b, state=HALF_OPEN, probe_until=now + p.probe_seconds, probe_successes=successes)


def probe_returned(b: Breaker) -> Breaker | None:
    """A probe that said nothing of the deployment's health (the provider asked us to slow
    down, the request itself was refused, the customer's own key was used): the next
    request may probe at once instead of waiting `probe_seconds` for it."""
    if b.state != HALF_OPEN or not b.probe_until:
        return None
    return replace(b, probe_until=0.0)


def breaker_key(provider: str, model: str) -> str:
    return f"{provider}|{model}"
