"""A provider's 429 is one account asked to slow down, not a sick provider: the deployment
cools for its Retry-After (routing fails over meanwhile) and its circuit breaker never
counts it. Each test starts its own gateway, whose breakers open as production's do."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import openai

from tests.support.staff import breakers_shown, staff_key
from tests.support.waits import settled

PRODUCTION_BREAKERS = {"GATEWAYZ_BREAKER_FAILURES": "5", "GATEWAYZ_BREAKER_MIN_REQUESTS": "20"}


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=30)


def _ask(gateway: str, key: str, model: str, fault: dict | None = None):
    content = "!mock " + json.dumps(fault) if fault else "hello"
    return _client(gateway, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}]
    )


def _post(gateway: str, key: str, model: str, fault: dict) -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": "!mock " + json.dumps(fault)}]}
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json=body,
        timeout=30,
    )


def test_a_throttled_provider_recovers_without_opening_its_breaker(own_gateway, make_account):
    # given: a provider that answers 429 with Retry-After: 1 to its next ten requests
    gateway = own_gateway(**PRODUCTION_BREAKERS)
    account, staff = make_account(), staff_key(make_account)
    fault = {"status": 429, "retry_after": 1, "times": 10, "key": uuid.uuid4().hex}

    # when: clients keep asking until the provider has refused ten times
    throttled = 0
    while throttled < 10:
        response = _post(gateway, account.key, "test/throttled", fault)
        if response.status_code == 200:  # its refusals ran out within this request's retry
            break
        assert (response.status_code, response.headers["retry-after"]) == (429, "1")
        log = settled(response.headers["x-request-id"])
        assert log.error_type == "upstream_rate_limited"
        throttled += sum(1 for a in log.attempts if a["status"] == 429)

    # then: once its Retry-After has passed, the next request is served at the first try
    time.sleep(1.05)
    raw = _ask(gateway, account.key, "test/throttled", fault)
    assert raw.parse().choices[0].message.content.startswith("You said")
    assert [a["status"] for a in settled(raw.headers["x-request-id"]).attempts] == [200]
    assert "mock-c|test/throttled" not in breakers_shown(gateway, staff)


def test_a_429_fails_over_and_the_throttled_deployment_is_skipped_while_it_cools(
    own_gateway, make_account
):
    gateway = own_gateway(**PRODUCTION_BREAKERS)
    account, staff = make_account(), staff_key(make_account)
    fault = {"status": 429, "retry_after": 30, "only_model": "throttled-a"}

    first = _ask(gateway, account.key, "test/throttled-pair", fault)
    assert first.headers["x-gatewayz-provider"] == "mock-b"
    attempts = settled(first.headers["x-request-id"]).attempts
    assert [(a["provider"], a["status"], a["error"]) for a in attempts] == [
        ("mock-a", 429, "upstream_rate_limited"),
        ("mock-b", 200, ""),
    ]

    # mock-a asked for 30 s: the next requests go straight to mock-b, mock-a is not asked.
    for _ in range(6):
        raw = _ask(gateway, account.key, "test/throttled-pair")
        assert [a["provider"] for a in settled(raw.headers["x-request-id"]).attempts] == ["mock-b"]
    assert "mock-a|test/throttled-pair" not in breakers_shown(gateway, staff)


def test_when_every_deployment_cools_the_client_gets_429_with_the_time_left(
    own_gateway, make_account
):
    gateway = own_gateway(GATEWAYZ_RETRY_AFTER_MAX_SECONDS="1", **PRODUCTION_BREAKERS)
    account = make_account()
    fault = {"status": 429, "retry_after": 20}

    for _ in range(3):
        try:
            _ask(gateway, account.key, "test/throttled", fault)
        except openai.RateLimitError as error:
            caught = error
        else:
            raise AssertionError("a throttled provider's request was served")
    # The later ones were answered without asking the provider again.
    log = settled(caught.response.headers["x-request-id"])
    assert log.attempts == [] and log.error_type == "upstream_rate_limited"
    assert 18 <= int(caught.response.headers["retry-after"]) <= 20
    assert caught.response.json()["error"]["type"] == "rate_limit_error"
