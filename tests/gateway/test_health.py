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
    expected = {"database", "broker"} | ({"redis", "limits"} if settings.REDIS_URL else set())
    assert set(body["checks"]) == expected
    assert all(check["status"] == "ok" for check in body["checks"].values())


@pytest.mark.skipif(not settings.REDIS_URL, reason="the embedded lane has no Redis to lose")
def test_without_redis_it_is_degraded_but_serves_and_says_so(own_gateway, make_account):
    port = free_port()
    nowhere = f"redis://127.0.0.1:{port}/0"
    gateway = own_gateway(REDIS_URL=nowhere, CELERY_BROKER_URL=nowhere)
    account = make_account()
    answer = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {account.key}"},
        timeout=10,
    )

    response = httpx.get(f"{gateway}/health/readiness", timeout=10)

    assert answer.status_code == 200, answer.text  # served on the database and the process
    body = response.json()
    # Still ready: a Redis outage must not take every replica out of the load balancer.
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "down" and body["checks"]["redis"]["error"]
    assert body["checks"]["broker"]["status"] == "down"
    assert body["checks"]["limits"]["status"] == "down"
    # Named by its kind: an error's text names hosts and ports, not the public's business.
    assert str(port) not in response.text and "refused" not in response.text.lower()
