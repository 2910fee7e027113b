"""POST /v1/messages/count_tokens through the official anthropic SDK: free, but guarded as
inference is (it calls providers on our account): the key's restrictions, rate limits and
concurrency apply, and it is written to the request log at a cost of zero. (Its metrics:
tests/monitoring/test_metrics.py.)"""

from __future__ import annotations

import asyncio
import json
import time
from decimal import Decimal

import anthropic
import pytest

from accounts.models import ApiKey
from billing.models import CreditAccount, LedgerEntry
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

ENDPOINT = "messages.count_tokens"
SAY = [{"role": "user", "content": "count these five words"}]


def _client(gateway: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0, timeout=20)


def _account(make_account, **fields):
    account = make_account(credit=Decimal("1"))
    # Set before the key's first use, so no gateway process has cached it yet.
    ApiKey.objects.filter(pk=account.key_id).update(**fields)
    return account


def _clear_of_minute_end(margin: float = 4.0) -> None:
    """Fixed windows: a test that counts within one minute must not straddle two."""
    left = 60 - time.time() % 60
    if left < margin:
        time.sleep(left + 0.1)


def test_a_count_is_logged_at_no_cost(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    raw = _client(gateway, account.key).messages.with_raw_response.count_tokens(
        model="test/claude",
        messages=SAY,  # type: ignore[arg-type]
    )

    assert raw.parse().input_tokens == 4 + 3  # the mock: words + 3 per message
    assert raw.headers["x-gatewayz-provider"] == "mock-anthropic"
    log = settled(raw.headers["request-id"])
    assert (log.endpoint, log.status, log.requested_model, log.served_model, log.provider) == (
        ENDPOINT,
        200,
        "test/claude",
        "test/claude",
        "mock-anthropic",
    )
    assert (log.cost, log.prompt_tokens, log.completion_tokens) == (0, 0, 0)
    assert [a["provider"] for a in log.attempts] == ["mock-anthropic"]
    assert not LedgerEntry.objects.filter(reference=log.request_id).exists()
    row = CreditAccount.objects.get(user=account.user)
    assert (row.balance, row.held) == (Decimal("1"), 0)


def test_an_estimate_is_logged_too_and_needs_no_credit(gateway, make_account):
    account = make_account(credit=Decimal("0"))

    raw = _client(gateway, account.key).messages.with_raw_response.count_tokens(
        model="test/echo",
        messages=SAY,  # type: ignore[arg-type]
    )

    assert raw.headers["x-gatewayz-token-count"] == "estimate" and raw.parse().input_tokens > 0
    log = settled(raw.headers["request-id"])
    assert (log.endpoint, log.status, log.provider, log.cost, log.attempts) == (
        ENDPOINT,
        200,
        "",
        0,
        [],
    )


def test_a_key_whose_model_rule_forbids_the_model_cannot_count_with_it(gateway, make_account):
    account = _account(make_account, allowed_models=["test/echo"])
    client = _client(gateway, account.key)

    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client.messages.count_tokens(model="test/claude", messages=SAY)  # type: ignore[arg-type]

    error = caught.value
    assert error.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert "test/claude" in error.message
    log = settled(error.request_id)  # type: ignore[arg-type]
    assert (log.endpoint, log.status, log.error_type, log.cost, log.attempts) == (
        ENDPOINT,
        403,
        "model_not_allowed",
        0,
        [],
    )
    assert client.messages.count_tokens(model="test/echo", messages=SAY).input_tokens > 0  # type: ignore[arg-type]


def test_counts_are_held_to_the_keys_request_limit(gateway, make_account):
    account = _account(make_account, limit_rpm=2)
    _clear_of_minute_end()
    client = _client(gateway, account.key)

    first = client.messages.with_raw_response.count_tokens(model="test/claude", messages=SAY)  # type: ignore[arg-type]
    client.messages.count_tokens(model="test/claude", messages=SAY)  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError) as caught:
        client.messages.count_tokens(model="test/claude", messages=SAY)  # type: ignore[arg-type]
    # The same limit as inference: the key's minute is spent for messages too.
    with pytest.raises(anthropic.RateLimitError):
        client.messages.create(model="test/claude", max_tokens=10, messages=SAY)  # type: ignore[arg-type]

    assert (
        first.headers["anthropic-ratelimit-requests-limit"],
        first.headers["anthropic-ratelimit-requests-remaining"],
    ) == ("2", "1")
    refused = caught.value
    assert "2 requests per minute" in refused.message
    assert 1 <= int(refused.response.headers["retry-after"]) <= 60
    log = settled(refused.request_id)  # type: ignore[arg-type]
    assert (log.endpoint, log.status, log.cost, log.attempts) == (ENDPOINT, 429, 0, [])


def test_counts_are_held_to_the_keys_concurrency_limit(gateway, make_account):
    account = _account(make_account, limit_concurrent=1)
    slow = [{"role": "user", "content": "!mock " + json.dumps({"delay": 1.0})}]

    async def scenario() -> tuple[int, int, int]:
        client = anthropic.AsyncAnthropic(base_url=gateway, api_key=account.key, max_retries=0)

        async def count(messages: list) -> int:
            try:
                await client.messages.count_tokens(model="test/claude", messages=messages)
            except anthropic.APIStatusError as refused:
                return refused.status_code
            return 200

        in_flight = asyncio.create_task(count(slow))
        await asyncio.sleep(0.4)
        meanwhile = await count(SAY)
        return await in_flight, meanwhile, await count(SAY)

    slow_code, meanwhile, after = asyncio.run(scenario())

    assert (slow_code, meanwhile, after) == (200, 429, 200)
