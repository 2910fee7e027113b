"""The OpenAI SDK, unchanged, against a live gateway routed to the mock upstream."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import openai
import pytest
import redis
from django.conf import settings

from billing.models import CreditAccount, CreditHold, LedgerEntry
from billing.redis_credit import avail_key, from_pico
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

IN, OUT = Decimal("1.00"), Decimal("2.00")  # test/echo's prices per 1M tokens


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def _cost(prompt: int, completion: int) -> Decimal:
    return (prompt * IN + completion * OUT) / Decimal(1_000_000)


def test_it_answers_and_charges_exactly(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)

    raw = client.chat.completions.with_raw_response.create(
        model="test/echo", messages=[{"role": "user", "content": "hello there"}]
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == "You said: hello there"
    usage = completion.usage
    assert usage is not None
    expected = _cost(usage.prompt_tokens, usage.completion_tokens)
    assert Decimal(raw.headers["x-gatewayz-cost"]) == expected
    assert usage.model_extra["cost"] == float(expected)
    assert raw.headers["x-gatewayz-provider"] == "mock"
    assert raw.headers["x-gatewayz-model"] == "test/echo"
    log = settled(raw.headers["x-request-id"])
    assert (log.status, log.provider, log.served_model, log.stream) == (
        200,
        "mock",
        "test/echo",
        False,
    )
    assert (log.prompt_tokens, log.completion_tokens, log.cost) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        expected,
    )
    assert log.api_key_id == account.key_id and log.total_latency_ms > 0
    entry = LedgerEntry.objects.get(reference=log.request_id)
    assert entry.amount == -expected
    account_row = CreditAccount.objects.get(user=account.user)
    assert account_row.balance == Decimal("1") - expected
    assert account_row.held == 0
    assert not CreditHold.objects.filter(request_id=log.request_id).exists()


def test_it_resolves_aliases(gateway, make_account):
    client = _client(gateway, make_account().key)
    raw = client.chat.completions.with_raw_response.create(
        model="echo-alias", messages=[{"role": "user", "content": "hi"}]
    )
    assert raw.headers["x-gatewayz-model"] == "test/echo"


def test_it_streams_with_usage_when_asked(gateway, make_account):
    account = make_account()
    client = _client(gateway, account.key)

    with client.chat.completions.with_streaming_response.create(
        model="test/echo",
        messages=[{"role": "user", "content": "!mock " + json.dumps({"chunks": 20})}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == " ".join(f"w{i}" for i in range(20))
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert all(c.usage is None for c in chunks[:-1])
    expected = _cost(last.usage.prompt_tokens, last.usage.completion_tokens)
    assert last.usage.model_extra["cost"] == float(expected)
    log = settled(request_id)
    assert log.stream and log.cost == expected and log.ttft_ms is not None


def test_it_hides_usage_but_still_charges_when_not_asked(gateway, make_account):
    account = make_account()
    client = _client(gateway, account.key)

    with client.chat.completions.with_streaming_response.create(
        model="test/echo", messages=[{"role": "user", "content": "one two three"}], stream=True
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())

    assert all(c.choices for c in chunks)  # no usage chunk
    assert all("usage" not in c.model_fields_set for c in chunks)
    log = settled(request_id)
    assert log.completion_tokens == 5 and log.cost == _cost(log.prompt_tokens, 5)


def test_it_works_with_the_async_client(gateway, make_account):
    key = make_account().key

    async def use_async_client() -> tuple[str | None, str]:
        client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)
        completion = await client.chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "async hello"}]
        )
        stream = await client.chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "async stream"}], stream=True
        )
        parts = [c.choices[0].delta.content or "" async for c in stream if c.choices]
        await client.close()
        return completion.choices[0].message.content, "".join(parts)

    assert asyncio.run(use_async_client()) == ("You said: async hello", "You said: async stream")


def test_it_relays_tool_calls(gateway, make_account):
    client = _client(gateway, make_account().key)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    directive = {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    messages = [{"role": "user", "content": "!mock " + json.dumps(directive)}]

    completion = client.chat.completions.create(model="test/echo", messages=messages, tools=tools)
    stream = client.chat.completions.create(
        model="test/echo", messages=messages, tools=tools, stream=True
    )
    fragments = [
        c.choices[0].delta.tool_calls[0].function.arguments or ""
        for c in stream
        if c.choices and c.choices[0].delta.tool_calls
    ]

    call = completion.choices[0].message.tool_calls[0]
    assert completion.choices[0].finish_reason == "tool_calls"
    assert (call.function.name, json.loads(call.function.arguments)) == (
        "get_weather",
        {"city": "Paris"},
    )
    assert json.loads("".join(fragments)) == {"city": "Paris"}


def test_it_forwards_parameters_and_the_providers_credential_only(gateway, make_account):
    account = make_account()
    client = _client(gateway, account.key)
    completion = client.chat.completions.create(
        model="test/echo",
        messages=[
            {"role": "system", "content": "Answer in JSON."},  # as JSON mode requires
            {"role": "user", "content": '!mock {"echo_request": true}'},
        ],
        seed=7,
        temperature=0.2,
        logprobs=True,
        stop=["END"],
        response_format={"type": "json_object"},
        extra_body={"provider_specific": {"x": 1}},
    )
    seen = json.loads(completion.choices[0].message.content)

    assert seen["headers"]["authorization"] == "Bearer sk-test-upstream"
    assert account.key not in json.dumps(seen)
    body = seen["body"]
    assert body["model"] == "echo"  # the provider's own model id
    assert (body["seed"], body["temperature"], body["logprobs"], body["stop"]) == (
        7,
        0.2,
        True,
        ["END"],
    )
    assert body["response_format"] == {"type": "json_object"}
    assert body["provider_specific"] == {"x": 1}
    # The client set no limit, and none is added: the body is forwarded as sent.
    assert "max_tokens" not in body and "max_completion_tokens" not in body


def test_a_provider_billing_past_the_hold_is_charged_what_it_reported(gateway, make_account):
    # The rule changed (issue 19, item 18): the charge used to be capped at the hold, so we
    # paid the provider for tokens the customer was never charged. Now the reported usage is
    # charged, priced exactly, even when it takes the balance below zero; then every request
    # is refused with 402 until the account is topped up.
    account = make_account(credit=Decimal("0.01"))
    client = _client(gateway, account.key)
    content = '!mock {"completion_tokens": 100000}'  # a provider over-reporting its output

    raw = client.chat.completions.with_raw_response.create(
        model="test/echo", messages=[{"role": "user", "content": content}], max_tokens=10
    )

    usage = raw.parse().usage
    assert usage is not None and usage.completion_tokens == 100000
    charged = _cost(usage.prompt_tokens, 100000)  # 0.2 and a bit: far past the 0.01 balance
    held = (len(raw.http_request.content) * IN + 10 * OUT) / Decimal(1_000_000)
    assert charged > held
    log = settled(raw.headers["x-request-id"])
    assert log.cost == charged == Decimal(raw.headers["x-gatewayz-cost"])
    assert LedgerEntry.objects.get(reference=log.request_id).amount == -charged
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("0.01") - charged < 0
    if settings.REDIS_URL:  # Redis' `avail` took the same charge: below zero too
        avail = redis.Redis.from_url(settings.REDIS_URL).get(avail_key(account.user.pk))
        assert from_pico(avail) == Decimal("0.01") - charged

    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "hi"}], max_tokens=1
        )
    assert (refused.value.status_code, refused.value.code) == (402, "insufficient_credits")


def test_a_stream_billed_past_its_hold_is_charged_what_it_reported(gateway, make_account):
    account = make_account(credit=Decimal("0.01"))
    client = _client(gateway, account.key)
    content = '!mock {"completion_tokens": 50000, "prompt_tokens": 7}'

    with client.chat.completions.with_streaming_response.create(
        model="test/echo",
        messages=[{"role": "user", "content": content}],
        max_tokens=5,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        request_id = response.headers["x-request-id"]
        chunks = list(response.parse())

    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens == 50000
    charged = _cost(7, 50000)
    assert Decimal(str(usage.model_extra["cost"])) == charged
    assert settled(request_id).cost == charged
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("0.01") - charged
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "hi"}], max_tokens=1
        )
    assert refused.value.status_code == 402


def test_it_lists_and_retrieves_models(gateway, make_account):
    client = _client(gateway, make_account().key)
    ids = {m.id for m in client.models.list()}
    model = client.models.retrieve("test/echo")

    assert {"test/echo", "test/failover", "test/output-only"} <= ids
    assert "test/unserved" not in ids  # its provider has no credential here
    assert model.id == "test/echo" and model.object == "model"
    assert model.model_extra["pricing"]["input"] == "1.000000"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("test/nope")


def test_it_raises_the_sdks_own_errors(gateway, make_account):
    poor = _client(gateway, make_account(credit=Decimal("0.000001")).key)
    client = _client(gateway, make_account().key)
    hello = [{"role": "user", "content": "hi"}]

    with pytest.raises(openai.AuthenticationError):
        _client(gateway, "gw_live_" + "x" * 43).chat.completions.create(
            model="test/echo", messages=hello
        )
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="nope/nothing", messages=hello)
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="test/echo", messages=[])
    with pytest.raises(openai.APIStatusError) as poor_error:
        poor.chat.completions.create(model="test/echo", messages=hello)
    with pytest.raises(openai.APIStatusError) as stream_error:
        client.chat.completions.create(
            model="test/echo",
            stream=True,
            messages=[{"role": "user", "content": '!mock {"status": 500}'}],
        )

    assert not_found.value.code == "model_not_found"
    assert bad.value.param == "messages"
    assert (poor_error.value.status_code, poor_error.value.code) == (402, "insufficient_credits")
    assert stream_error.value.status_code == 502
