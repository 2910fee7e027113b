"""Liveness and readiness, as a load balancer sees them."""

from __future__ import annotations

import httpx
import pytest
from django.conf import settings

from tests.support.servers import free_port

pytestmark = pytest.mark.smoke


def test_it_is_alive_without_touching_anything(gateway):
    response = httpx.get(f"{gateway}/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_it_is_ready_when_its_dependencies_answer(gateway):
    response = httpx.get(f"{gateway}/health/readiness")

    body = response.json()
    assert response.status_code == 200, body
    expected = {"database", "broker"} | ({"redis"} if settings.REDIS_URL else set())
    assert set(body["checks"]) == expected
    assert all(check["status"] == "ok" for check in body["checks"].values())


@pytest.mark.skipif(not settings.REDIS_URL, reason="the embedded lane has no Redis to lose")
def test_it_is_not_ready_without_redis_and_says_so(start_gateway):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    gateway = start_gateway(REDIS_URL=nowhere, CELERY_BROKER_URL=nowhere)

    response = httpx.get(f"{gateway}/health/readiness", timeout=10)

    body = response.json()
    assert response.status_code == 503
    assert body["status"] == "unavailable"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "down" and body["checks"]["redis"]["error"]
    assert httpx.get(f"{gateway}/health").status_code == 200  # alive all the same
