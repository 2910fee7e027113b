"""POST /v1/messages through the official anthropic SDK, unchanged: natively to an
Anthropic-protocol provider (test/claude) and translated to an OpenAI-protocol one
(test/echo); billed exactly, errors in Anthropic's shape."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import pytest

from billing.models import CreditAccount, LedgerEntry
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

CLAUDE = {
    "in": Decimal("3.00"),
    "out": Decimal("15.00"),
    "read": Decimal("0.30"),
    "write": Decimal("3.75"),
}
ECHO = {"in": Decimal("1.00"), "out": Decimal("2.00"), "read": Decimal("0.50")}
MILLION = Decimal(1_000_000)


def _client(gateway: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0)


def _mock(**directive: Any) -> str:
    return "!mock " + json.dumps(directive)


def _claude_cost(usage: anthropic.types.Usage) -> Decimal:
    return (
        usage.input_tokens * CLAUDE["in"]
        + (usage.cache_read_input_tokens or 0) * CLAUDE["read"]
        + (usage.cache_creation_input_tokens or 0) * CLAUDE["write"]
        + usage.output_tokens * CLAUDE["out"]
    ) / MILLION


@pytest.mark.parametrize("model", ["test/claude", "claude-test"])
def test_a_native_message_is_relayed_and_billed_with_cache_prices(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    content = _mock(reply="hello there", cached_tokens=400, cache_creation_tokens=100)

    raw = client.messages.with_raw_response.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": content}]
    )
    message = raw.parse()

    assert message.type == "message" and message.role == "assistant"
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].text == "hello there"  # type: ignore[union-attr]
    assert message.stop_reason == "end_turn"
    usage = message.usage
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (400, 100)
    expected = _claude_cost(usage)
    assert Decimal(raw.headers["x-gatewayz-cost"]) == expected
    assert raw.headers["x-gatewayz-provider"] == "mock-anthropic"
    log = settled(raw.headers["x-request-id"])
    assert (log.endpoint, log.served_model, log.status) == ("messages", "test/claude", 200)
    assert (log.prompt_tokens, log.cached_tokens, log.cache_write_tokens) == (
        usage.input_tokens + 500,
        400,
        100,
    )
    assert (log.completion_tokens, log.cost) == (usage.output_tokens, expected)
    assert LedgerEntry.objects.get(reference=log.request_id).amount == -expected
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("1") - expected


def test_a_native_stream_reaches_the_sdks_helpers_and_is_billed(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)

    with client.messages.stream(
        model="test/claude",
        max_tokens=100,
        messages=[{"role": "user", "content": "stream me please"}],
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]

    assert text == "You said: stream me please"
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    log = settled(request_id)
    assert log.stream and log.ttft_ms is not None
    assert (log.completion_tokens, log.cost) == (
        final.usage.output_tokens,
        _claude_cost(final.usage),
    )


def test_thinking_and_tool_use_come_through_a_native_stream(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    tool = {
        "name": "get_weather",
        "description": "Weather in a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    call = {"name": "get_weather", "arguments": {"city": "Paris"}}

    with client.messages.stream(
        model="test/claude",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2000},
        tools=[tool],  # type: ignore[list-item]
        messages=[{"role": "user", "content": _mock(tool_call=call)}],
    ) as stream:
        final = stream.get_final_message()

    kinds = [b.type for b in final.content]
    assert kinds[0] == "thinking" and kinds[-1] == "tool_use"
    use = final.content[-1]
    assert use.name == "get_weather" and use.input == {"city": "Paris"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"


def _tool_round_trip(client: anthropic.Anthropic, model: str) -> anthropic.types.Message:
    tool = {
        "name": "add",
        "description": "Adds two numbers",
        "input_schema": {
            "type": "object",
            "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        },
    }
    first = client.messages.create(
        model=model,
        max_tokens=200,
        tools=[tool],  # type: ignore[list-item]
        messages=[
            {
                "role": "user",
                "content": _mock(tool_call={"name": "add", "arguments": {"a": 2, "b": 3}}),
            }
        ],
    )
    use = next(b for b in first.content if b.type == "tool_use")
    assert first.stop_reason == "tool_use"
    assert use.name == "add" and use.input == {"a": 2, "b": 3}  # type: ignore[union-attr]
    return client.messages.create(
        model=model,
        max_tokens=200,
        tools=[tool],  # type: ignore[list-item]
        messages=[
            {"role": "user", "content": "add 2 and 3"},
            {"role": "assistant", "content": first.content},  # type: ignore[typeddict-item]
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": use.id, "content": "5"},  # type: ignore[union-attr]
                    {"type": "text", "text": "so what is it?"},
                ],
            },
        ],
    )


@pytest.mark.parametrize("model", ["test/claude", "test/echo"])
def test_a_tool_round_trip_works_natively_and_translated(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))

    answer = _tool_round_trip(_client(gateway, account.key), model)

    assert answer.stop_reason == "end_turn"
    assert answer.content[-1].text == "You said: so what is it?"  # type: ignore[union-attr]


def test_a_translated_message_maps_usage_and_bills_the_openai_provider(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    content = _mock(reply="hi", prompt_tokens=100, cached_tokens=60, completion_tokens=7)

    raw = client.messages.with_raw_response.create(
        model="test/echo",
        max_tokens=50,
        system="be brief",
        messages=[{"role": "user", "content": content}],
    )
    message = raw.parse()

    assert message.content[0].text == "hi"  # type: ignore[union-attr]
    assert message.id.startswith("msg_") and message.model == "test/echo"
    # Anthropic's input_tokens leaves out what was read from the cache.
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (40, 60)
    assert message.usage.output_tokens == 7
    expected = (40 * ECHO["in"] + 60 * ECHO["read"] + 7 * ECHO["out"]) / MILLION
    log = settled(raw.headers["x-request-id"])
    assert (log.provider, log.prompt_tokens, log.cost) == ("mock", 100, expected)


def _sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append((lines["event"], json.loads(lines["data"])))
    return events


def test_a_translated_stream_has_anthropics_exact_event_sequence(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    body = {
        "model": "test/echo",
        "max_tokens": 50,
        "stream": True,
        "messages": [{"role": "user", "content": _mock(reply="one two three")}],
    }

    response = httpx.post(
        f"{gateway}/v1/messages",
        json=body,
        headers={"x-api-key": account.key, "anthropic-version": "2023-06-01"},
    )

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _sse(response.text)
    names = [name for name, _ in events]
    assert names == ["message_start", "ping", "content_block_start"] + [
        "content_block_delta"
    ] * 3 + ["content_block_stop", "message_delta", "message_stop"]
    assert all(data["type"] == name for name, data in events)
    deltas = [d["delta"]["text"] for n, d in events if n == "content_block_delta"]
    assert "".join(deltas) == "one two three"
    final = events[-2][1]
    assert final["delta"]["stop_reason"] == "end_turn" and final["usage"]["output_tokens"] == 3
    log = settled(response.headers["x-request-id"])
    assert log.completion_tokens == 3 and log.stream


def test_the_sdk_streams_a_translated_tool_call(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    tool = {"name": "lookup", "input_schema": {"type": "object"}}

    with client.messages.stream(
        model="test/echo",
        max_tokens=100,
        tools=[tool],  # type: ignore[list-item]
        messages=[
            {
                "role": "user",
                "content": _mock(tool_call={"name": "lookup", "arguments": {"q": "x y"}}),
            }
        ],
    ) as stream:
        final = stream.get_final_message()

    use = final.content[-1]
    assert use.type == "tool_use" and use.input == {"q": "x y"}
    assert final.stop_reason == "tool_use"


def test_it_fails_over_from_an_anthropic_provider_to_an_openai_one(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    raw = _client(gateway, account.key).messages.with_raw_response.create(
        model="test/claude-or-echo", max_tokens=20, messages=[{"role": "user", "content": "hey"}]
    )

    assert raw.parse().content[0].text == "You said: hey"  # type: ignore[union-attr]
    assert raw.headers["x-gatewayz-provider"] == "mock"


def test_count_tokens_is_the_providers_count_or_a_marked_estimate(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    messages = [{"role": "user", "content": "count these five words"}]

    native = client.messages.count_tokens(model="test/claude", messages=messages)  # type: ignore[arg-type]
    raw = client.messages.with_raw_response.count_tokens(model="test/echo", messages=messages)  # type: ignore[arg-type]

    assert native.input_tokens == 4 + 3  # the mock: words + 3 per message
    assert raw.parse().input_tokens > 0
    assert raw.headers["x-gatewayz-token-count"] == "estimate"
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("1")  # free


def _assert_anthropic_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["type"] == "error" and body["error"]["type"] == kind
    assert body["error"]["message"]


SAY_X = [{"role": "user", "content": "x"}]
INVALID = "invalid_request_error"
PDF_BY_URL = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}


def _asking(model: str = "test/claude", messages: Any = SAY_X, **fields: Any) -> dict[str, Any]:
    """A Messages request body with max_tokens 10 unless `fields` say otherwise."""
    return {"model": model, "max_tokens": 10, **fields, "messages": messages}


@pytest.mark.parametrize(
    ("body", "status", "kind"),
    [
        ({"model": "test/claude", "messages": SAY_X}, 400, INVALID),  # no max_tokens
        (_asking(messages=[]), 400, INVALID),
        (_asking(messages=[{"role": "system", "content": "x"}]), 400, INVALID),
        (_asking(temperature=1.5), 400, INVALID),
        (
            _asking(max_tokens=1000, thinking={"type": "enabled", "budget_tokens": 100}),
            400,
            INVALID,
        ),
        (_asking(tool_choice={"type": "sometimes"}), 400, INVALID),
        (_asking(tools=[{"type": "web_search_20250305", "name": "web_search"}]), 400, INVALID),
        (_asking(messages=[{"role": "user", "content": [PDF_BY_URL]}]), 400, INVALID),
        (_asking("nope/nothing"), 404, "not_found_error"),
        (
            _asking(
                "test/throttled-claude",
                [{"role": "user", "content": _mock(status=429, retry_after=7)}],
            ),
            429,
            "rate_limit_error",
        ),
    ],
)
def test_bad_requests_get_anthropics_error_shape_and_no_charge(
    gateway, make_account, body, status, kind
):
    account = make_account(credit=Decimal("1"))

    response = httpx.post(
        f"{gateway}/v1/messages",
        json=body,
        headers={"x-api-key": account.key, "anthropic-version": "2023-06-01"},
    )

    _assert_anthropic_error(response, status, kind)
    if status == 429:
        assert response.headers["retry-after"] == "7"
    log = settled(response.headers["x-request-id"])
    assert (log.status, log.cost) == (status, 0)
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("1")


def test_the_sdk_raises_its_own_exception_classes(gateway, make_account):
    account = make_account(credit=Decimal("0"))
    messages = [{"role": "user", "content": "x"}]

    with pytest.raises(anthropic.AuthenticationError):
        _client(gateway, "gw_live_" + "x" * 43).messages.create(
            model="test/claude",
            max_tokens=10,
            messages=messages,  # type: ignore[arg-type]
        )
    with pytest.raises(anthropic.NotFoundError):
        _client(gateway, account.key).messages.create(
            model="nope/nothing",
            max_tokens=10,
            messages=messages,  # type: ignore[arg-type]
        )
    with pytest.raises(anthropic.APIStatusError) as broke:
        _client(gateway, account.key).messages.create(
            model="test/claude",
            max_tokens=10,
            messages=messages,  # type: ignore[arg-type]
        )
    assert broke.value.status_code == 402
    assert broke.value.body["error"]["type"] == "billing_error"  # type: ignore[index]


def test_wrong_methods_and_paths_answer_in_anthropics_shape(gateway):
    _assert_anthropic_error(httpx.get(f"{gateway}/v1/messages"), 405, "invalid_request_error")
    _assert_anthropic_error(
        httpx.post(f"{gateway}/v1/messages", json={}), 401, "authentication_error"
    )


def test_a_provider_error_before_any_content_costs_nothing(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    content = _mock(reply="a b", stream_error="overloaded_error", error_after=0)

    with _client(gateway, account.key).messages.stream(
        model="test/claude", max_tokens=50, messages=[{"role": "user", "content": content}]
    ) as stream:
        request_id = stream.response.headers["x-request-id"]
        with pytest.raises(anthropic.APIStatusError):
            stream.get_final_message()

    log = settled(request_id)
    assert (log.status, log.cost) == (502, 0)
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("1")


def _named(headers: httpx.Headers) -> str:
    """The request's id, as Anthropic's API names it: `request-id`, also `x-request-id`."""
    request_id = headers["request-id"]
    assert request_id.startswith("req_") and headers["x-request-id"] == request_id
    return request_id


def test_every_answer_names_its_request_and_every_error_body_carries_it(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    broke = make_account(credit=Decimal("0"))
    client = _client(gateway, account.key)
    say = [{"role": "user", "content": "hi"}]

    served = client.messages.with_raw_response.create(
        model="test/claude",
        max_tokens=10,
        messages=say,  # type: ignore[arg-type]
    )
    assert settled(_named(served.headers)).status == 200
    with client.messages.stream(model="test/echo", max_tokens=10, messages=say) as stream:  # type: ignore[arg-type]
        stream.get_final_message()
        assert settled(_named(stream.response.headers)).stream
    counted = client.messages.with_raw_response.count_tokens(model="test/claude", messages=say)  # type: ignore[arg-type]
    _named(counted.headers)

    refusals: list[tuple[type[anthropic.APIStatusError], Any]] = [
        (
            anthropic.AuthenticationError,  # refused before the key is known
            lambda: _client(gateway, "gw_live_" + "x" * 43).messages.create(
                model="test/claude", max_tokens=10, messages=say
            ),
        ),
        (
            anthropic.NotFoundError,
            lambda: client.messages.create(model="nope/nothing", max_tokens=10, messages=say),
        ),
        (
            anthropic.BadRequestError,
            lambda: client.messages.create(model="test/claude", max_tokens=0, messages=say),
        ),
        (
            anthropic.APIStatusError,
            lambda: _client(gateway, broke.key).messages.create(  # 402
                model="test/claude", max_tokens=10, messages=say
            ),
        ),
        (
            anthropic.RateLimitError,
            lambda: client.messages.create(  # the provider's 429
                model="test/throttled-claude",
                max_tokens=10,
                messages=[{"role": "user", "content": _mock(status=429, retry_after=7)}],
            ),
        ),
        (
            anthropic.NotFoundError,
            lambda: client.messages.count_tokens(model="nope/nothing", messages=say),
        ),
    ]
    for kind, call in refusals:
        with pytest.raises(kind) as caught:
            call()
        error = caught.value
        assert error.body["request_id"] == _named(error.response.headers) == error.request_id  # type: ignore[index]
        assert set(error.body) == {"type", "error", "request_id"}  # type: ignore[arg-type]
    assert caught.value.status_code == 404
    # Refused by the router, before any request path: named all the same.
    wrong_method = httpx.get(f"{gateway}/v1/messages")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["request_id"] == _named(wrong_method.headers)


@pytest.mark.parametrize("path", ["/v1/messages", "/v1/messages/count_tokens"])
def test_a_request_without_anthropic_version_is_refused_as_anthropic_does(
    gateway, make_account, path
):
    account = make_account(credit=Decimal("1"))
    body = {
        "model": "test/claude",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "hi"}],
    }

    response = httpx.post(f"{gateway}{path}", json=body, headers={"x-api-key": account.key})

    _assert_anthropic_error(response, 400, "invalid_request_error")
    assert response.json()["error"]["message"] == "anthropic-version: header is required"
    log = settled(_named(response.headers))
    assert (log.status, log.cost, log.provider) == (400, 0, "")
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("1")
