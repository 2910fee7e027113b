"""Deployments cooling off after a provider's 429.

A 429 is the provider asking one account (ours, or a customer's own key) to slow down,
often for a second; it says nothing of the provider's health, so it never counts against a
circuit breaker. Instead the provider × model × credential cools: routing skips it, and
fails over to the next deployment, until the provider's `Retry-After` (or
GATEWAYZ_COOLING_SECONDS) has passed. Kept per process, not in Redis: another process
learns of it from its own 429, one request later, and nothing is written per request.
"""

from __future__ import annotations

import time

from django.conf import settings

from providers.catalog import Deployment

# Past this many entries, expired ones are swept when another is added.
_SWEEP_AT = 1024
# The event loop's timers are of millisecond grain (libuv's), so a retry that paused for
# exactly the Retry-After may wake a hair early: it finds the deployment cooled.
_SLACK = 0.005

_until: dict[tuple[str, str, str], float] = {}  # (provider, model, credential) -> monotonic


def _key(deployment: Deployment, family: str) -> tuple[str, str, str]:
    # The credential is part of the key: a customer's key being throttled says nothing of
    # the platform's key at the same provider, and the other way round.
    return deployment.provider, family, deployment.api_key


def cooling_start(deployment: Deployment, family: str, retry_after: float | None) -> None:
    seconds = settings.GATEWAYZ_COOLING_SECONDS if retry_after is None else retry_after
    if seconds <= 0:
        return
    now = time.monotonic()
    if len(_until) >= _SWEEP_AT:
        for key in [k for k, until in _until.items() if until <= now]:
            del _until[key]
    _until[_key(deployment, family)] = now + seconds


def cooling_left(deployment: Deployment, family: str) -> float:
    """Seconds until the deployment takes requests again (0: it does now)."""
    if not _until:  # the common case: nothing is cooling, one truth test
        return 0.0
    until = _until.get(_key(deployment, family))
    if until is None:
        return 0.0
    left = until - time.monotonic()
    if left <= _SLACK:
        del _until[_key(deployment, family)]
        return 0.0
    return left
