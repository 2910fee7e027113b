"""POST /v1/chat/completions on a model served over the Anthropic protocol (test/claude),
through the official openai SDK: translated both ways, streams and tools included."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.support.waits import settled

pytestmark = pytest.mark.smoke

IN, OUT, READ, WRITE = Decimal("3.00"), Decimal("15.00"), Decimal("0.30"), Decimal("3.75")
MILLION = Decimal(1_000_000)
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def _mock(**directive: Any) -> str:
    return "!mock " + json.dumps(directive)


def test_a_completion_is_translated_and_billed_with_cache_prices(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    content = _mock(reply="bonjour", cached_tokens=300, cache_creation_tokens=50)

    raw = _client(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/claude",
        messages=[{"role": "system", "content": "be kind"}, {"role": "user", "content": content}],
    )
    completion = raw.parse()

    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == "test/claude"
    choice = completion.choices[0]
    assert (choice.message.content, choice.finish_reason) == ("bonjour", "stop")
    usage = completion.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == 300
    fresh = usage.prompt_tokens - 350  # OpenAI's prompt_tokens counts cache reads and writes
    expected = (fresh * IN + 300 * READ + 50 * WRITE + usage.completion_tokens * OUT) / MILLION
    assert Decimal(raw.headers["x-gatewayz-cost"]) == expected
    log = settled(raw.headers["x-request-id"])
    assert (log.provider, log.cached_tokens, log.cache_write_tokens, log.cost) == (
        "mock-anthropic",
        300,
        50,
        expected,
    )


def test_a_stream_is_translated_to_chunks_with_usage_at_the_end(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    stream = _client(gateway, account.key).chat.completions.create(
        model="test/claude",
        messages=[{"role": "user", "content": "tell me more"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: tell me more"
    assert chunks[0].choices[0].delta.role == "assistant"
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.model_extra["cost"] > 0
    assert all(c.id == chunks[0].id for c in chunks)


def test_tools_round_trip_through_the_translation(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    call = {"name": "get_weather", "arguments": {"city": "Lyon"}}
    messages: list[Any] = [{"role": "user", "content": _mock(tool_call=call)}]

    first = client.chat.completions.create(
        model="test/claude", messages=messages, tools=[WEATHER], tool_choice="auto"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    tool_call = choice.message.tool_calls[0]  # type: ignore[index]
    assert tool_call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(tool_call.function.arguments) == {"city": "Lyon"}  # type: ignore[union-attr]

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": tool_call.id, "content": "sunny"},
        {"role": "user", "content": "and tomorrow?"},
    ]
    second = client.chat.completions.create(model="test/claude", messages=messages, tools=[WEATHER])

    assert second.choices[0].message.content == "You said: and tomorrow?"


def test_a_streamed_tool_call_assembles_in_the_sdk(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    call = {"name": "get_weather", "arguments": {"city": "Rio de Janeiro"}}

    stream = _client(gateway, account.key).chat.completions.create(
        model="test/claude",
        messages=[{"role": "user", "content": _mock(tool_call=call)}],
        tools=[WEATHER],
        stream=True,
    )
    chunks = list(stream)

    deltas = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert deltas[0].id and deltas[0].function.name == "get_weather"  # type: ignore[union-attr]
    arguments = "".join(d.function.arguments or "" for d in deltas)  # type: ignore[union-attr]
    assert json.loads(arguments) == {"city": "Rio de Janeiro"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


def test_reasoning_effort_becomes_thinking_and_comes_back_as_reasoning(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    completion = _client(gateway, account.key).chat.completions.create(
        model="test/claude",
        messages=[{"role": "user", "content": "think first"}],
        max_tokens=4000,
        reasoning_effort="low",
    )

    message = completion.choices[0].message
    assert message.content == "You said: think first"
    assert message.model_extra["reasoning_content"] == "Thinking about: think first"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"response_format": {"type": "json_schema"}}, "response_format.json_schema"),
        ({"response_format": {"type": "xml"}}, "response_format.type"),
    ],
)
def test_what_anthropic_cannot_do_is_a_clear_400(gateway, make_account, extra, param):
    account = make_account(credit=Decimal("1"))
    body = {"model": "test/claude", "messages": [{"role": "user", "content": "x"}], **extra}

    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.key}"},
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert settled(response.headers["x-request-id"]).cost == 0


def test_an_error_mid_stream_ends_with_an_openai_error_event(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    content = _mock(reply="a b c d", stream_error="overloaded_error", error_after=2)
    body = {
        "model": "test/claude",
        "stream": True,
        "messages": [{"role": "user", "content": content}],
    }

    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.key}"},
    )

    events = [b.removeprefix("data: ") for b in response.text.strip().split("\n\n")]
    assert "[DONE]" not in events
    error = json.loads(events[-1])["error"]
    assert error["type"] == "server_error"  # OpenAI's type for a 5xx
    assert "overloaded" in error["message"] and "mock fault" not in error["message"]
    log = settled(response.headers["x-request-id"])
    assert log.status == 502 and log.cost > 0  # billed for what was produced


def test_a_cut_stream_is_billed_and_ends_with_an_error_event(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    body = {
        "model": "test/claude",
        "stream": True,
        "messages": [{"role": "user", "content": _mock(reply="w x y z", cut_after=2)}],
    }

    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.key}"},
    )

    last = json.loads(response.text.strip().split("\n\n")[-1].removeprefix("data: "))
    assert last["error"]["code"] == "upstream_stream_interrupted"
    log = settled(response.headers["x-request-id"])
    assert (log.status, log.error_type) == (502, "upstream_stream_interrupted") and log.cost > 0
