"""Circuit breakers per provider × model: the rules (a pure function), then end to end
through the openai SDK: opened by failures, skipped by routing, probed after the cooldown,
closed again, shown and reset by staff, and shared by two server processes over Redis.

Only this module calls test/flaky and test/flaky-alone, so their breakers are its own.
"""

from __future__ import annotations

import json
import time

import httpx
import openai
import pytest
from django.conf import settings

from gateway.guards.breaker_rules import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    Breaker,
    Policy,
    probe_claimed,
    transition,
)
from tests.support.staff import breakers_shown, staff_key
from tests.support.waits import settled

P = Policy(
    failures=3,
    window_seconds=60,
    min_requests=10,
    error_rate=0.5,
    cooldown_seconds=10,
    max_cooldown_seconds=35,
    successes=2,
    probe_seconds=30,
)


def _run(b: Breaker, outcomes: str, now: float = 1000.0) -> Breaker:
    for o in outcomes:
        b = transition(b, o == "s", 1, now, P, "boom")
    return b


@pytest.mark.smoke
def test_consecutive_failures_open_it_and_a_success_in_between_resets_the_run():
    assert _run(Breaker(), "ff").state == CLOSED
    assert _run(Breaker(), "ffsff").state == CLOSED
    opened = _run(Breaker(), "fff")
    assert (opened.state, opened.opened_at, opened.cooldown) == (OPEN, 1000.0, 10)


@pytest.mark.smoke
def test_an_error_rate_over_the_window_opens_it_once_the_window_holds_enough():
    # Alternating: never 3 in a row, but half of 10 requests failed.
    assert _run(Breaker(), "sfsfsfsfs").state == CLOSED  # 9 requests: too few to judge
    assert _run(Breaker(), "sfsfsfsfsf").state == OPEN
    # The window restarts: old failures do not count against a new minute.
    b = _run(Breaker(), "sfsfsfsfs", now=1000.0)
    assert transition(b, False, 1, 1061.0, P, "x").state == CLOSED


@pytest.mark.smoke
def test_after_the_cooldown_one_probe_goes_and_successes_close_it():
    opened = _run(Breaker(), "fff")
    assert opened.routable(1005.0) is False
    assert opened.routable(1010.0) is None  # a probe may go
    probing = probe_claimed(opened, 1010.0, P)
    assert probing is not None and probing.state == HALF_OPEN
    assert probing.routable(1011.0) is False  # one probe at a time
    assert probe_claimed(probing, 1011.0, P) is None
    once = transition(probing, True, 1, 1012.0, P, "")
    assert once.state == HALF_OPEN and once.routable(1012.0) is None  # the next probe may go
    assert transition(once, True, 1, 1013.0, P, "") == Breaker()  # closed, history forgiven


@pytest.mark.smoke
def test_a_failed_probe_reopens_it_with_the_cooldown_doubled_up_to_the_cap():
    b = _run(Breaker(), "fff")
    cooldowns = []
    now = 1000.0
    for _ in range(3):
        now = b.retry_at()
        b = transition(probe_claimed(b, now, P), False, 1, now, P, "still down")
        cooldowns.append(b.cooldown)
    assert b.state == OPEN and cooldowns == [20, 35, 35]


def _ask(gateway: str, key: str, model: str, fault: dict | None = None):
    content = "!mock " + json.dumps(fault) if fault else "hello"
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=20)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}]
    )


def _providers_tried(raw) -> list[str]:
    return [a["provider"] for a in settled(raw.headers["x-request-id"]).attempts]


def _staff_key(make_account) -> str:
    return staff_key(make_account)


def _breakers(gateway: str, key: str) -> dict[str, dict]:
    return breakers_shown(gateway, key)


BREAKER_ENV = {
    "GATEWAYZ_BREAKER_FAILURES": "3",
    "GATEWAYZ_BREAKER_MIN_REQUESTS": "1000",
    "GATEWAYZ_BREAKER_COOLDOWN_SECONDS": "2",
    "GATEWAYZ_BREAKER_SUCCESSES": "1",
}
FAIL_A = {"status": 503, "only_model": "flaky-a"}


@pytest.mark.smoke
def test_an_open_breaker_is_skipped_then_probed_and_closed(own_gateway, make_account):
    gateway = own_gateway(**BREAKER_ENV)
    account, staff = make_account(), _staff_key(make_account)
    httpx.post(
        f"{gateway}/api/monitoring/circuit-breakers/mock-a/reset",
        headers={"authorization": f"Bearer {staff}"},
    )

    for _ in range(3):  # mock-a fails, mock-b serves: three failures in a row open mock-a
        assert _providers_tried(_ask(gateway, account.key, "test/flaky", FAIL_A)) == [
            "mock-a",
            "mock-b",
        ]
    shown = _breakers(gateway, staff)["mock-a|test/flaky"]
    assert (shown["state"], shown["consecutive_failures"]) == ("open", 3)
    assert "503" in shown["last_error"]

    # Open: routing goes straight to mock-b, without even a failed attempt at mock-a.
    assert _providers_tried(_ask(gateway, account.key, "test/flaky")) == ["mock-b"]

    time.sleep(2.1)  # the cooldown: the next request probes mock-a, which has recovered
    assert _providers_tried(_ask(gateway, account.key, "test/flaky")) == ["mock-a"]
    assert "mock-a|test/flaky" not in _breakers(gateway, staff)


@pytest.mark.smoke
def test_when_every_deployment_is_open_the_answer_is_a_quick_503_with_retry_after(
    own_gateway, make_account
):
    gateway = own_gateway(**BREAKER_ENV)
    account, staff = make_account(), _staff_key(make_account)
    fault = {"status": 503}

    for _ in range(2):  # each request tries mock-c twice (a retry): 4 failures open it
        with pytest.raises(openai.APIStatusError):
            _ask(gateway, account.key, "test/flaky-alone", fault)
    with pytest.raises(openai.APIStatusError) as caught:
        _ask(gateway, account.key, "test/flaky-alone", fault)

    response = caught.value.response
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "provider_circuit_open"
    assert 1 <= int(response.headers["retry-after"]) <= 2
    assert settled(response.headers["x-request-id"]).attempts == []

    # Staff reset it: served again at once.
    reset = httpx.post(
        f"{gateway}/api/monitoring/circuit-breakers/mock-c/reset",
        headers={"authorization": f"Bearer {staff}"},
    )
    assert "mock-c|test/flaky-alone" in reset.json()["reset"]
    assert _providers_tried(_ask(gateway, account.key, "test/flaky-alone")) == ["mock-c"]


@pytest.mark.skipif(not settings.REDIS_URL, reason="sharing needs Redis")
def test_a_breaker_opened_by_one_process_is_honoured_by_another(own_gateway, make_account):
    env = {**BREAKER_ENV, "GATEWAYZ_BREAKER_COOLDOWN_SECONDS": "30"}
    first, second = own_gateway(**env), own_gateway(**env)
    account, staff = make_account(), _staff_key(make_account)
    httpx.post(
        f"{first}/api/monitoring/circuit-breakers/mock-a/reset",
        headers={"authorization": f"Bearer {staff}"},
    )

    for _ in range(3):
        _ask(first, account.key, "test/flaky", FAIL_A)

    # The second process never saw mock-a fail; it skips it all the same.
    assert _providers_tried(_ask(second, account.key, "test/flaky")) == ["mock-b"]
    httpx.post(
        f"{second}/api/monitoring/circuit-breakers/mock-a/reset",
        headers={"authorization": f"Bearer {staff}"},
    )
    time.sleep(1.1)  # each process rereads the breakers within a second
    assert _providers_tried(_ask(first, account.key, "test/flaky")) == ["mock-a"]


def test_the_monitoring_api_is_for_staff_only(gateway, make_account):
    account = make_account()
    for method, path in (
        ("GET", "/api/monitoring/circuit-breakers"),
        ("POST", "/api/monitoring/circuit-breakers/mock-a/reset"),
    ):
        response = httpx.request(
            method, f"{gateway}{path}", headers={"authorization": f"Bearer {account.key}"}
        )
        assert response.status_code == 403
        assert httpx.request(method, f"{gateway}{path}").status_code in (401, 403)
