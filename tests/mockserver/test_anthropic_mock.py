"""The mock upstream behaves like Anthropic's Messages API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from mockserver.anthropic import signature_of

MESSAGES = "/v1/messages"
VERSION = {"anthropic-version": "2023-06-01"}
TOOLS: list[Any] = [{"name": "get_weather", "input_schema": {"type": "object"}}]


def _mock(**directive: Any) -> list[Any]:
    return [{"role": "user", "content": "!mock " + json.dumps(directive)}]


@pytest.fixture
def client(mock_url: str, api_key: str) -> anthropic.Anthropic:
    # Strict validation: every answer must parse as the SDK's own types.
    return anthropic.Anthropic(
        base_url=mock_url, api_key=api_key, max_retries=0, _strict_response_validation=True
    )


@pytest.fixture
def http(mock_url: str, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_url, headers={"x-api-key": api_key, **VERSION}) as c:
        yield c


def _body(stream: bool = False, **extra: Any) -> dict[str, Any]:
    return {"model": "claude-x", "max_tokens": 1000, "stream": stream, **extra}


def _events(text: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) pairs; each data's type must repeat its event name."""
    out = []
    for block in text.split("\n\n"):
        if not block:
            continue
        name_line, data_line = block.split("\n")
        name = name_line.removeprefix("event: ")
        data = orjson.loads(data_line.removeprefix("data: "))
        assert data["type"] == name
        out.append((name, data))
    return out


def test_it_answers_with_a_message(client: anthropic.Anthropic) -> None:
    raw = client.messages.with_raw_response.create(
        model="claude-x",
        max_tokens=100,
        system="be brief",
        messages=[
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "ok"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": "there"}],
            },
        ],
    )
    assert raw.headers["request-id"].startswith("req_")
    message = raw.parse()
    assert message.id.startswith("msg_") and message.type == "message"
    assert (message.role, message.model) == ("assistant", "claude-x")
    assert [b.type for b in message.content] == ["text"]
    assert message.content[0].type == "text" and message.content[0].text == "You said: hello there"
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)
    usage = message.usage
    # system 2+3, messages (1+3) + (1+3) + (2+3); reply 4 words
    assert (usage.input_tokens, usage.output_tokens) == (18, 4)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (0, 0)


def test_it_takes_the_key_as_x_api_key_or_bearer(http: httpx.Client, api_key: str) -> None:
    body = _body(messages=[{"role": "user", "content": "hi"}])
    assert http.post(MESSAGES, json=body).status_code == 200
    del http.headers["x-api-key"]
    bearer = {"authorization": f"Bearer {api_key}"}
    assert http.post(MESSAGES, json=body, headers=bearer).status_code == 200


@pytest.mark.parametrize(
    ("headers", "message"),
    [({}, "x-api-key header is required"), ({"x-api-key": "sk-wrong"}, "invalid x-api-key")],
)
def test_it_rejects_missing_or_wrong_keys(
    mock_url: str, headers: dict[str, str], message: str
) -> None:
    resp = httpx.post(f"{mock_url}{MESSAGES}", json={}, headers={**VERSION, **headers})
    assert resp.status_code == 401
    assert resp.headers["x-should-retry"] == "false"
    data = resp.json()
    assert data["type"] == "error" and data["request_id"] == resp.headers["request-id"]
    assert data["error"] == {"type": "authentication_error", "message": message}
    with pytest.raises(anthropic.AuthenticationError):
        anthropic.Anthropic(base_url=mock_url, api_key="sk-wrong", max_retries=0).messages.create(
            model="m", max_tokens=1, messages=[{"role": "user", "content": "hi"}]
        )


def test_it_requires_anthropic_version(http: httpx.Client) -> None:
    del http.headers["anthropic-version"]
    resp = http.post(MESSAGES, json=_body(messages=[{"role": "user", "content": "hi"}]))
    assert resp.status_code == 400
    assert resp.json()["error"] == {
        "type": "invalid_request_error",
        "message": "anthropic-version: header is required",
    }


_USE = {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}
_RESULT = {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]},
            "max_tokens: Field required",
        ),
        (
            {"max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]},
            "model: Field required",
        ),
        (_body(), "messages: Field required"),
        (_body(messages=[]), "messages: at least one message is required"),
        (
            _body(messages=[{"role": "assistant", "content": "hi"}]),
            'messages: first message must use the "user" role',
        ),
        (
            _body(messages=[{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]),
            'messages: roles must alternate between "user" and "assistant", but found multiple "user" roles in a row',
        ),
        (
            _body(messages=[{"role": "system", "content": "a"}]),
            "messages.0.role: Input should be 'user' or 'assistant'",
        ),
        (
            _body(messages=[{"role": "user", "content": ""}]),
            "messages.0: all messages must have non-empty content except for the optional final assistant message",
        ),
        (
            _body(messages=[{"role": "user", "content": [{"type": "text", "text": ""}]}]),
            "messages: text content blocks must be non-empty",
        ),
        (
            _body(
                tools=TOOLS,
                messages=[
                    {"role": "user", "content": "a"},
                    {"role": "assistant", "content": [_USE]},
                    {"role": "user", "content": "b"},
                ],
            ),
            "messages.1: `tool_use` ids were found without `tool_result` blocks immediately after: toolu_1. Each `tool_use` block must have a corresponding `tool_result` block in the next message.",
        ),
        (
            _body(messages=[{"role": "user", "content": [_RESULT]}]),
            "messages.0.content.0: unexpected `tool_use_id` found in `tool_result` blocks: toolu_1. Each `tool_result` block must have a corresponding `tool_use` block in the previous message.",
        ),
        (
            _body(
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/bmp",
                                    "data": "AA==",
                                },
                            }
                        ],
                    }
                ]
            ),
            "messages.0.content.0.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'",
        ),
        (
            _body(
                thinking={"type": "enabled", "budget_tokens": 100},
                messages=[{"role": "user", "content": "hi"}],
            ),
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
        ),
        (
            _body(
                max_tokens=1024,
                thinking={"type": "enabled", "budget_tokens": 1024},
                messages=[{"role": "user", "content": "hi"}],
            ),
            "`max_tokens` must be greater than `thinking.budget_tokens`.",
        ),
        (
            _body(tool_choice={"type": "any"}, messages=[{"role": "user", "content": "hi"}]),
            "tool_choice: tool_choice may only be specified while providing tools.",
        ),
        (
            _body(
                max_tokens=2000,
                tools=TOOLS,
                tool_choice={"type": "any"},
                thinking={"type": "enabled", "budget_tokens": 1024},
                messages=[{"role": "user", "content": "hi"}],
            ),
            "Thinking may not be enabled when tool_choice forces tool use.",
        ),
        (
            _body(
                messages=[
                    {"role": "user", "content": "a"},
                    {
                        "role": "assistant",
                        "content": [{"type": "thinking", "thinking": "hm", "signature": "forged"}],
                    },
                ]
            ),
            "messages.1.content.0: Invalid `signature` in `thinking` block",
        ),
        (_body(messages=_mock(colour="red")), "Invalid !mock directive: unknown key 'colour'."),
    ],
)
def test_it_validates_like_the_api(http: httpx.Client, body: dict[str, Any], message: str) -> None:
    resp = http.post(MESSAGES, json=body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(message)


def test_it_streams_through_the_sdk_helpers(client: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "stream me please"}]
    with client.messages.stream(model="claude-x", max_tokens=100, messages=messages) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    assert pieces == ["You", " said:", " stream", " me", " please"]
    created = client.messages.create(model="claude-x", max_tokens=100, messages=messages)
    assert [b.model_dump(exclude={"parsed_output"}) for b in final.content] == [
        b.model_dump() for b in created.content
    ]
    assert final.usage == created.usage
    assert (final.stop_reason, final.usage.output_tokens) == ("end_turn", 5)


def test_it_sends_the_documented_event_order(http: httpx.Client) -> None:
    resp = http.post(MESSAGES, json=_body(stream=True, messages=_mock(reply="a b c", chunks=2)))
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["request-id"].startswith("req_")
    events = _events(resp.text)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = events[0][1]["message"]
    assert (start["content"], start["stop_reason"], start["stop_sequence"]) == ([], None, None)
    assert start["usage"]["output_tokens"] == 1 and start["usage"]["input_tokens"] > 0
    assert events[1][1] == {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "text", "text": ""},
    }
    deltas = [data["delta"] for name, data in events if name == "content_block_delta"]
    assert deltas == [{"type": "text_delta", "text": "a"}, {"type": "text_delta", "text": " b c"}]
    delta = events[-2][1]
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 3


def test_it_streams_thinking_text_and_tool_use_blocks(http: httpx.Client) -> None:
    directive = {
        "reply": "checking",
        "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}},
    }
    body = _body(
        stream=True,
        max_tokens=2000,
        tools=TOOLS,
        thinking={"type": "enabled", "budget_tokens": 1024},
        messages=_mock(**directive),
    )
    events = _events(http.post(MESSAGES, json=body).text)
    flow = [
        (name, data.get("index"), data.get("delta", data.get("content_block", {})).get("type"))
        for name, data in events
    ]
    thinking_deltas = sum(1 for step in flow if step[2] == "thinking_delta")
    assert flow == [
        ("message_start", None, None),
        ("content_block_start", 0, "thinking"),
        ("ping", None, None),
        *[("content_block_delta", 0, "thinking_delta")] * thinking_deltas,
        ("content_block_delta", 0, "signature_delta"),
        ("content_block_stop", 0, None),
        ("content_block_start", 1, "text"),
        ("content_block_delta", 1, "text_delta"),
        ("content_block_stop", 1, None),
        ("content_block_start", 2, "tool_use"),
        *[("content_block_delta", 2, "input_json_delta")] * 4,
        ("content_block_stop", 2, None),
        ("message_delta", None, None),
        ("message_stop", None, None),
    ]
    thinking = "".join(d["delta"].get("thinking", "") for _, d in events if "delta" in d)
    signature = next(
        d["delta"]["signature"]
        for _, d in events
        if d.get("delta", {}).get("type") == "signature_delta"
    )
    assert signature == signature_of(thinking)
    fragments = [
        d["delta"]["partial_json"]
        for _, d in events
        if d.get("delta", {}).get("type") == "input_json_delta"
    ]
    assert fragments[0] == "" and json.loads("".join(fragments)) == {"city": "Paris"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"


def test_it_calls_tools_and_takes_their_results(client: anthropic.Anthropic) -> None:
    directive = {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    message = client.messages.create(
        model="m", max_tokens=100, tools=TOOLS, messages=_mock(**directive)
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.id.startswith("toolu_")
    assert (block.name, block.input) == ("get_weather", {"city": "Paris"})
    assert message.usage.output_tokens == 6  # 1 word of JSON + 5
    result = {"type": "tool_result", "tool_use_id": block.id, "content": "18C and sunny"}
    history: list[Any] = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [block.model_dump()]},
        {"role": "user", "content": [result]},
    ]
    answer = client.messages.create(model="m", max_tokens=100, tools=TOOLS, messages=history)
    # A tool result is not the user speaking: the reply still echoes the question
    # (as the OpenAI mock does), while the result's words count as input.
    assert (
        answer.content[0].type == "text" and answer.content[0].text == "You said: weather in Paris?"
    )
    assert answer.usage.input_tokens == (3 + 3) + (0 + 3) + (3 + 3)
    history[-1]["content"].append({"type": "text", "text": "thanks"})
    thanked = client.messages.create(model="m", max_tokens=100, tools=TOOLS, messages=history)
    assert thanked.content[0].type == "text" and thanked.content[0].text == "You said: thanks"


def test_it_honours_tool_choice(client: anthropic.Anthropic) -> None:
    forced = client.messages.create(
        model="m",
        max_tokens=100,
        tools=TOOLS,
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "weather?"}],
    )
    assert forced.stop_reason == "tool_use"
    assert forced.content[0].type == "tool_use" and forced.content[0].input == {}
    directive = {"tool_call": {"name": "get_weather"}}
    refused = client.messages.create(
        model="m",
        max_tokens=100,
        tools=TOOLS,
        tool_choice={"type": "none"},
        messages=_mock(**directive),
    )
    assert refused.stop_reason == "end_turn" and refused.content[0].type == "text"


def test_it_thinks_first_and_accepts_its_signed_thinking_back(client: anthropic.Anthropic) -> None:
    thinking: Any = {"type": "enabled", "budget_tokens": 1024}
    first = client.messages.create(
        model="m", max_tokens=2000, thinking=thinking, messages=[{"role": "user", "content": "why"}]
    )
    block, text = first.content
    assert block.type == "thinking" and block.thinking == "Thinking about: why"
    assert block.signature == signature_of(block.thinking)
    assert text.type == "text" and text.text == "You said: why"
    assert first.usage.output_tokens == 3 + 3
    history: list[Any] = [
        {"role": "user", "content": "why"},
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {"role": "user", "content": "and?"},
    ]
    follow_up = client.messages.create(
        model="m", max_tokens=2000, thinking=thinking, messages=history
    )
    assert follow_up.content[-1].type == "text" and follow_up.content[-1].text == "You said: and?"


def test_it_stops_at_stop_sequences_and_max_tokens(client: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "one two three"}]
    stopped = client.messages.create(
        model="m", max_tokens=100, stop_sequences=["two"], messages=messages
    )
    assert stopped.content[0].type == "text" and stopped.content[0].text == "You said: one "
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "two")
    cut = client.messages.create(model="m", max_tokens=3, messages=messages)
    assert cut.content[0].type == "text" and cut.content[0].text == "You said: one"
    assert (cut.stop_reason, cut.usage.output_tokens) == ("max_tokens", 3)


def test_it_counts_tokens(client: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "count these four words"}]
    counted = client.messages.count_tokens(model="m", system="sys", messages=messages)
    assert counted.input_tokens == (1 + 3) + (4 + 3)
    overridden = client.messages.count_tokens(model="m", messages=_mock(prompt_tokens=77))
    assert overridden.input_tokens == 77


def test_it_overrides_usage_and_stop_reason(client: anthropic.Anthropic) -> None:
    directive = {
        "prompt_tokens": 10,
        "completion_tokens": 7,
        "cached_tokens": 40,
        "cache_creation_tokens": 5,
        "finish_reason": "refusal",
    }
    message = client.messages.create(model="m", max_tokens=100, messages=_mock(**directive))
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (10, 7)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (40, 5)
    assert usage.cache_creation is not None and usage.cache_creation.ephemeral_5m_input_tokens == 5
    assert message.stop_reason == "refusal"


@pytest.mark.parametrize(
    ("status", "error_class", "type_", "retry"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error", "false"),
        (401, anthropic.AuthenticationError, "authentication_error", "false"),
        (403, anthropic.PermissionDeniedError, "permission_error", "false"),
        (404, anthropic.NotFoundError, "not_found_error", "false"),
        (413, anthropic.ContentTooLargeError, "request_too_large", "false"),
        (429, anthropic.RateLimitError, "rate_limit_error", "true"),
        (500, anthropic.InternalServerError, "api_error", "true"),
        (529, anthropic.OverloadedError, "overloaded_error", "true"),
    ],
)
def test_it_maps_status_directives_to_the_sdk_exceptions(
    client: anthropic.Anthropic, status: int, error_class: type[Exception], type_: str, retry: str
) -> None:
    with pytest.raises(error_class) as caught:
        client.messages.create(
            model="m", max_tokens=10, messages=_mock(status=status, retry_after=3)
        )
    assert isinstance(caught.value, anthropic.APIStatusError)
    response = caught.value.response
    assert (response.status_code, response.headers["retry-after"]) == (status, "3")
    assert response.headers["x-should-retry"] == retry
    assert caught.value.body == {
        "type": "error",
        "error": {"type": type_, "message": f"mock fault {status}"},
        "request_id": response.headers["request-id"],
    }


def test_it_reports_errors_mid_stream(http: httpx.Client, client: anthropic.Anthropic) -> None:
    messages = _mock(stream_error="overloaded_error", error_after=2, message="Overloaded")
    events = _events(http.post(MESSAGES, json=_body(stream=True, messages=messages)).text)
    assert [name for name, _ in events] == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "error",
    ]
    assert events[-1][1]["error"] == {"type": "overloaded_error", "message": "Overloaded"}
    stream = client.messages.stream(model="m", max_tokens=100, messages=messages)
    with pytest.raises(anthropic.APIStatusError) as caught, stream as events_stream:
        list(events_stream.text_stream)  # the error arrives while iterating
    assert caught.value.body["error"]["type"] == "overloaded_error"  # type: ignore[index]


def test_it_cuts_the_stream_by_dropping_the_connection(http: httpx.Client) -> None:
    body = _body(stream=True, messages=_mock(chunks=5, cut_after=2))
    names: list[str] = []
    with http.stream("POST", MESSAGES, json=body) as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            names.extend(
                line.removeprefix("event: ")
                for line in resp.iter_lines()
                if line.startswith("event: ")
            )
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
    ]


def test_it_echoes_the_request(http: httpx.Client, api_key: str) -> None:
    body = _body(temperature=0.5, messages=_mock(echo_request=True))
    echoed = orjson.loads(
        http.post(MESSAGES, json=body, headers={"X-Trace": "abc"}).json()["content"][0]["text"]
    )
    assert echoed["headers"]["x-trace"] == "abc" and echoed["headers"]["x-api-key"] == api_key
    assert echoed["body"] == body


def test_it_lists_models_in_each_shape(client: anthropic.Anthropic, http: httpx.Client) -> None:
    models = client.models.list()
    assert "claude-sonnet-4-5" in [m.id for m in models.data]
    assert all(m.type == "model" and m.display_name for m in models.data)
    del http.headers["anthropic-version"]
    openai_shape = http.get(
        "/v1/models", headers={"authorization": f"Bearer {http.headers['x-api-key']}"}
    )
    assert openai_shape.json()["object"] == "list"
