"""Every request leaves a record, so "why did my request fail" has an answer: a known key's
refusals are in its owner's request log and in the metrics; a failed request names the
provider that failed it and every attempt; an unknown key is counted, and logged at most
once per interval however many come."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from accounts.models import ApiKey
from billing.models import RequestLog
from tests.support.waits import settled


def _chat(gateway: str, key: str, content: str = "hi", model: str = "test/echo") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": content}]}
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        timeout=10,
        headers={"authorization": f"Bearer {key}"},
    )


def _counted(gateway: str, endpoint: str, status: int) -> float:
    text = httpx.get(f"{gateway}/metrics", timeout=10).text
    total = 0.0
    wanted = (f'status="{status}"', f'endpoint="{endpoint}"')
    for line in text.splitlines():
        if line.startswith("gatewayz_requests_total{") and all(w in line for w in wanted):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.mark.parametrize(
    ("fields", "status", "code"),
    [
        ({"expires_at": timezone.now() - timedelta(hours=1)}, 401, "invalid_api_key"),
        ({"allowed_ips": ["203.0.113.0/24"]}, 403, "ip_not_allowed"),
    ],
)
def test_a_known_keys_refusal_is_in_its_owners_request_log(
    gateway, make_account, fields, status, code
):
    account = make_account()
    ApiKey.objects.filter(pk=account.key_id).update(**fields)  # before any process caches it
    before = _counted(gateway, "chat.completions", status)

    response = _chat(gateway, account.key)

    assert response.status_code == status
    log = settled(response.headers["x-request-id"])
    assert (log.user_id, log.api_key_id, log.status, log.cost) == (
        account.user.pk,
        account.key_id,
        status,
        0,
    )
    assert log.error_type == response.json()["error"]["code"] == code
    assert _counted(gateway, "chat.completions", status) == before + 1


def test_a_failed_request_names_the_provider_that_failed_it(gateway, make_account):
    account = make_account()
    content = "!mock " + json.dumps({"status": 503})

    response = _chat(gateway, account.key, content, model="test/multi")

    assert response.status_code == 502
    log = settled(response.headers["x-request-id"])
    assert log.provider == log.attempts[-1]["provider"] and len(log.attempts) >= 3


def test_unknown_keys_are_counted_and_logged_once_per_interval(own_gateway, tmp_path, live_db):
    path = tmp_path / "gateway.log"
    gateway = own_gateway(log=path)
    before = _counted(gateway, "chat.completions", 401)

    for n in range(20):
        assert _chat(gateway, f"gw_live_{'x' * 40}{n:02d}").status_code == 401

    assert _counted(gateway, "chat.completions", 401) == before + 20
    time.sleep(0.2)
    lines = [line for line in path.read_text().splitlines() if "unknown or revoked key" in line]
    assert len(lines) == 1
    assert not RequestLog.objects.filter(status=401, user=None).exists()
