"""Every fault class a provider shows, through the official openai SDK: what the client
gets, which attempts were made (the request log's `attempts`), and what was billed.

test/multi is served by mock-a (echo-a), then mock-b (echo-b), then mock-c (echo-c); a
directive's `only_model` makes the fault hit one of them only, `times`/`key` only the first
requests (a provider that recovers).
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal

import openai
import pytest

from billing.models import CreditAccount
from tests.support.staff import failures_of, failures_reach, staff_key
from tests.support.waits import settled


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=20)


def _say(directive: dict) -> list[dict]:
    return [{"role": "user", "content": "!mock " + json.dumps(directive)}]


def _attempts(log) -> list[tuple[str, int, str]]:
    return [(a["provider"], a["status"], a["error"]) for a in log.attempts]


def _balance(account) -> Decimal:
    row = CreditAccount.objects.get(user=account.user)
    assert row.held == 0
    return row.balance


# fault on mock-a -> (what its attempt records: status, error code). A 429 fails over too,
# but cools the deployment instead of counting against its breaker: tests/gateway/test_cooling.py
FAULTS_THAT_FAIL_OVER = [
    ({"status": 500}, (500, "upstream_error")),
    ({"status": 502}, (502, "upstream_error")),
    ({"status": 503}, (503, "upstream_error")),
    ({"status": 401}, (401, "upstream_error")),  # our credential there, not the client's
    ({"status": 404, "message": "model not found"}, (404, "upstream_error")),
    ({"delay": 3}, (0, "upstream_timeout")),  # mock-a's read timeout is 2 s
    ({"malformed": True}, (200, "upstream_invalid_response")),
]


A_BREAKER = "mock-a|test/multi"  # never opens on the shared gateway (tests/conftest.py)


@pytest.mark.parametrize(("fault", "recorded"), FAULTS_THAT_FAIL_OVER)
def test_a_failing_provider_is_failed_over_before_the_first_byte(
    gateway, make_account, fault, recorded
):
    account, staff = make_account(), staff_key(make_account)
    failures = failures_of(gateway, staff, A_BREAKER)
    raw = _client(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/multi", messages=_say({**fault, "only_model": "echo-a"})
    )

    completion = raw.parse()
    assert raw.headers["x-gatewayz-provider"] == "mock-b"
    assert completion.model == "test/multi"  # the model asked for; mock-b served it
    log = settled(raw.headers["x-request-id"])
    assert (log.status, log.provider) == (200, "mock-b")
    assert _attempts(log) == [("mock-a", *recorded), ("mock-b", 200, "")]
    # Billed once, at the prices of the provider that served (mock-b: 0.50 / 1.00 per 1M).
    usage = completion.usage
    expected = (Decimal(usage.prompt_tokens) * Decimal("0.5") + usage.completion_tokens) / 10**6
    assert log.cost == expected
    assert _balance(account) == Decimal(10) - expected
    # Each of these counts against mock-a's breaker.
    assert failures_of(gateway, staff, A_BREAKER) == failures + 1


def test_a_stream_whose_first_token_is_slow_is_failed_over(gateway, make_account):
    account, staff = make_account(), staff_key(make_account)
    failures = failures_of(gateway, staff, A_BREAKER)
    stream = _client(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/multi",
        messages=_say({"first_chunk_delay": 3, "only_model": "echo-a", "reply": "hi there"}),
        stream=True,
    )

    text = "".join(c.choices[0].delta.content or "" for c in stream.parse() if c.choices)
    assert text == "hi there"
    log = settled(stream.headers["x-request-id"])
    # mock-a answered its headers, then no event came within its read timeout.
    assert _attempts(log) == [("mock-a", 200, "upstream_timeout"), ("mock-b", 200, "")]
    assert failures_of(gateway, staff, A_BREAKER) == failures + 1


def test_a_malformed_stream_is_failed_over(gateway, make_account):
    account = make_account()
    stream = _client(gateway, account.key).chat.completions.create(
        model="test/multi",
        messages=_say({"malformed": True, "only_model": "echo-a", "reply": "fine"}),
        stream=True,
    )
    # The malformed event was read before anything reached the client: mock-b answers.
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "fine"


def test_a_providers_error_about_the_request_is_returned_not_retried(gateway, make_account):
    account, staff = make_account(), staff_key(make_account)
    failures = failures_of(gateway, staff, A_BREAKER)
    with pytest.raises(openai.BadRequestError) as caught:
        _client(gateway, account.key).chat.completions.create(
            model="test/multi", messages=_say({"status": 400, "message": "bad temperature"})
        )

    assert "bad temperature" in caught.value.message
    log = settled(caught.value.response.headers["x-request-id"])
    assert _attempts(log) == [("mock-a", 400, "upstream_rejected")]
    assert (log.status, log.cost) == (400, 0)
    assert _balance(account) == Decimal(10)
    assert failures_of(gateway, staff, A_BREAKER) == failures  # the client's fault, not mock-a's


def test_a_transient_failure_is_retried_after_the_providers_retry_after(gateway, make_account):
    account = make_account()
    directive = {"status": 429, "retry_after": 1, "times": 1, "key": uuid.uuid4().hex}

    started = time.monotonic()
    raw = _client(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/single", messages=_say(directive)
    )

    assert raw.parse().choices[0].message.content.startswith("You said:")
    assert time.monotonic() - started >= 1.0  # it waited as the provider asked
    log = settled(raw.headers["x-request-id"])
    assert _attempts(log) == [("mock-a", 429, "upstream_rate_limited"), ("mock-a", 200, "")]
    # A 429 never counts against the breaker (tests/gateway/test_cooling.py).
    assert failures_of(gateway, staff_key(make_account), "mock-a|test/single") == 0


def test_a_retry_after_longer_than_a_client_should_wait_is_passed_on(gateway, make_account):
    account = make_account()
    with pytest.raises(openai.RateLimitError) as caught:
        _client(gateway, account.key).chat.completions.create(
            model="test/throttled-single", messages=_say({"status": 429, "retry_after": 30})
        )

    assert caught.value.response.headers["retry-after"] == "30"
    log = settled(caught.value.response.headers["x-request-id"])
    assert _attempts(log) == [("mock-a", 429, "upstream_rate_limited")]


def test_attempts_are_bounded_when_every_provider_keeps_failing(gateway, make_account):
    account, staff = make_account(), staff_key(make_account)
    before = {p: failures_of(gateway, staff, f"{p}|test/multi") for p in ("mock-b", "mock-c")}
    with pytest.raises(openai.APIStatusError) as caught:
        _client(gateway, account.key).chat.completions.create(
            model="test/multi", messages=_say({"status": 503})
        )

    assert caught.value.status_code == 502
    log = settled(caught.value.response.headers["x-request-id"])
    # Three deployments, then one retry (GATEWAYZ_MAX_ATTEMPTS = 4), all recorded.
    providers = [a[0] for a in _attempts(log)]
    assert providers == ["mock-a", "mock-b", "mock-c", "mock-a"]
    for provider, failures in before.items():
        assert failures_of(gateway, staff, f"{provider}|test/multi") == failures + 1
    assert (log.status, log.cost) == (502, 0)
    assert _balance(account) == Decimal(10)


def test_connect_refused_fails_over_and_is_recorded(gateway, make_account):
    account, staff = make_account(), staff_key(make_account)
    before = failures_of(gateway, staff, "dead|test/failover")
    raw = _client(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/failover", messages=[{"role": "user", "content": "hi"}]
    )

    log = settled(raw.headers["x-request-id"])
    assert _attempts(log) == [
        ("dead", 0, "upstream_unavailable"),
        ("wrongkey", 401, "upstream_error"),
        ("mock", 200, ""),
    ]
    assert failures_of(gateway, staff, "dead|test/failover") == before + 1


def test_a_stream_cut_midway_ends_with_an_error_event_and_is_billed_as_failed(
    gateway, make_account
):
    account, staff = make_account(), staff_key(make_account)
    stream = _client(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/multi", messages=_say({"chunks": 10, "cut_after": 4}), stream=True
    )

    with pytest.raises(openai.APIError) as caught:
        for _ in stream.parse():
            pass
    assert "ended the stream early" in caught.value.message
    log = settled(stream.headers["x-request-id"])
    assert (log.status, log.error_type) == (502, "upstream_stream_interrupted")
    assert _attempts(log) == [("mock-a", 200, "")]  # the attempt answered; its stream broke
    assert log.cost > 0 and _balance(account) == Decimal(10) - log.cost
    # The attempt answered (a success: any run of failures ends), then its stream broke.
    assert failures_reach(gateway, staff, A_BREAKER, 1) == 1


def test_what_arrived_before_a_cut_is_still_relayed():
    # aiohttp raises at once when a connection breaks, dropping what it had buffered: the
    # answer's blocks still yield it, then the error (the relay then ends the stream).
    from types import SimpleNamespace
    from unittest.mock import Mock

    import aiohttp

    from gateway.relay.upstream_attempt import UpstreamAnswer

    async def scenario() -> list[bytes]:
        content = aiohttp.StreamReader(Mock(), 2**16, loop=asyncio.get_running_loop())
        content.feed_data(b'data: {"w": 1}\n\n')
        content.set_exception(aiohttp.ClientPayloadError("connection lost"))
        answer = UpstreamAnswer(None, SimpleNamespace(content=content), 0.0, first=b"data: 0\n\n")
        got: list = []
        try:
            async for block in answer.blocks():
                got.append(block)
        except aiohttp.ClientPayloadError as cut:
            got.append(cut)
        return got

    *blocks, cut = asyncio.run(scenario())
    assert blocks == [b"data: 0\n\n", b'data: {"w": 1}\n\n']
    assert isinstance(cut, aiohttp.ClientPayloadError)
