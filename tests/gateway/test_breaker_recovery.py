"""A breaker that has recovered closes, and while its probes are out the requests that
arrive wait for their verdict instead of being refused: a fault that has ended costs no
customer a 503 once the cooldown is over."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from gateway.guards.breaker_rules import (
    CLOSED,
    HALF_OPEN,
    Breaker,
    Policy,
    probe_claimed,
    transition,
)
from tests.support.staff import breakers_shown, staff_key

P = Policy(failures=3, cooldown_seconds=10, successes=2, probe_seconds=30)


@pytest.mark.smoke
def test_probes_in_a_row_each_claimed_anew_close_it():
    opened = Breaker()
    for _ in range(3):
        opened = transition(opened, False, 1, 1000.0, P, "boom")
    b = opened
    for n in range(P.successes):
        claimed = probe_claimed(b, 1010.0 + n, P)
        assert claimed is not None and claimed.state == HALF_OPEN
        b = transition(claimed, True, 1, 1010.5 + n, P, "")
    assert b.state == CLOSED and b == Breaker()


def _chat(
    gateway: str, key: str, content: str, model: str = "test/recovering", timeout: float = 30
) -> httpx.Response:
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json={"model": model, "messages": [{"role": "user", "content": content}]},
        timeout=timeout,
    )


def test_after_a_fault_ends_every_request_is_served_and_the_breaker_closes(
    own_gateway, make_account
):
    # given: a breaker opened by a provider's 503s, with production's two probes to close
    gateway = own_gateway(
        GATEWAYZ_BREAKER_FAILURES="3",
        GATEWAYZ_BREAKER_MIN_REQUESTS="1000",
        GATEWAYZ_BREAKER_COOLDOWN_SECONDS="1",
        GATEWAYZ_BREAKER_SUCCESSES="2",
    )
    account, staff = make_account(credit=Decimal("100")), staff_key(make_account)
    fault = "!mock " + json.dumps({"status": 503})
    while breakers_shown(gateway, staff).get("mock-c|test/recovering", {}).get("state") != "open":
        assert _chat(gateway, account.key, fault).status_code == 502

    # when: the upstream has healed, and after the cooldown 100 requests come, 10 at a time
    time.sleep(1.1)
    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: _chat(gateway, account.key, "hi"), range(100)))

    # then: all are served, and the breaker has closed
    assert [a.status_code for a in answers] == [200] * 100
    assert "mock-c|test/recovering" not in breakers_shown(gateway, staff)


def test_a_probe_whose_client_left_is_handed_back(own_gateway, make_account):
    # given: an open breaker past its cooldown, and a probe its client leaves mid-wait
    gateway = own_gateway(
        GATEWAYZ_BREAKER_FAILURES="3",
        GATEWAYZ_BREAKER_MIN_REQUESTS="1000",
        GATEWAYZ_BREAKER_COOLDOWN_SECONDS="1",
        GATEWAYZ_PROBE_WAIT_SECONDS="2",
        GATEWAYZ_RETRY_ROUNDS="0",
    )
    account, staff = make_account(), staff_key(make_account)
    fault = "!mock " + json.dumps({"status": 503, "only_model": "recovering-probe-c"})
    while (
        breakers_shown(gateway, staff).get("mock-c|test/recovering-probe", {}).get("state")
        != "open"
    ):
        _chat(gateway, account.key, fault, model="test/recovering-probe")
    time.sleep(1.1)
    slow = "!mock " + json.dumps({"delay": 1.5})
    with pytest.raises(httpx.ReadTimeout):
        _chat(gateway, account.key, slow, model="test/recovering-probe", timeout=0.5)

    # when: the next request comes; then: it probes at once and is served (not left waiting
    # for a verdict that would never come, then refused)
    answer = _chat(gateway, account.key, "hi", model="test/recovering-probe")
    assert answer.status_code == 200
