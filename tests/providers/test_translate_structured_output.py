"""The structured-output translation rules, by example (providers.translate.structured_output):
what each protocol is asked, and how an answer through the answer tool comes back."""

from __future__ import annotations

import json
from typing import Any

from core.usage import Usage
from providers.translate.anthropic_openai_answers import chat_to_message, message_to_chat
from providers.translate.anthropic_openai_streams import (
    ChatChunksToMessageEvents,
    MessageEventsToChatChunks,
)
from providers.translate.chat_to_messages import chat_to_messages
from providers.translate.messages_to_chat import messages_to_chat
from providers.translate.structured_output import JSON_TOOL, strict_compatible

SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
JSON_SCHEMA = {"type": "json_schema", "json_schema": {"name": "place", "schema": SCHEMA}}
WEATHER = {"type": "function", "function": {"name": "weather", "parameters": SCHEMA}}


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}


def _to_anthropic(body: dict[str, Any], native: bool) -> dict[str, Any]:
    return chat_to_messages(body, upstream_model="m", max_tokens=4000, structured_outputs=native)


def test_a_schema_goes_natively_to_a_model_that_takes_it():
    out = _to_anthropic(_chat(response_format=JSON_SCHEMA), native=True)

    assert out["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in out and "tool_choice" not in out


def test_otherwise_the_answer_is_a_forced_tool_and_thinking_waits():
    out = _to_anthropic(_chat(response_format=JSON_SCHEMA, reasoning_effort="high"), native=False)

    assert [t["name"] for t in out["tools"]] == [JSON_TOOL]
    assert out["tools"][0]["input_schema"] == SCHEMA
    assert out["tool_choice"] == {"type": "tool", "name": JSON_TOOL}
    assert "thinking" not in out and "output_config" not in out  # Anthropic refuses both


def test_json_mode_has_no_schema_so_it_is_the_tool_even_natively():
    out = _to_anthropic(_chat(response_format={"type": "json_object"}), native=True)

    assert out["tools"][0]["input_schema"] == {"type": "object"}
    assert out["tool_choice"]["name"] == JSON_TOOL


def test_beside_the_clients_tools_the_model_must_call_one_of_them_or_answer():
    chosen = {"type": "function", "function": {"name": "weather"}}
    cases = [
        (None, {"type": "any"}),
        ("auto", {"type": "any"}),
        ("none", {"type": "tool", "name": JSON_TOOL}),
        ("required", {"type": "any"}),
        (chosen, {"type": "tool", "name": "weather"}),
    ]
    for choice, expected in cases:
        extra: dict[str, Any] = {"tools": [WEATHER], "response_format": JSON_SCHEMA}
        if choice is not None:
            extra["tool_choice"] = choice
        out = _to_anthropic(_chat(**extra), native=False)
        assert out["tool_choice"] == expected, choice
        assert [t["name"] for t in out["tools"]] == ["weather", JSON_TOOL]


def test_a_strict_tool_is_held_to_its_schema_where_the_model_can_be():
    strict = {"type": "function", "function": {**WEATHER["function"], "strict": True}}

    assert _to_anthropic(_chat(tools=[strict]), native=True)["tools"][0]["strict"] is True
    assert "strict" not in _to_anthropic(_chat(tools=[strict]), native=False)["tools"][0]


def test_anthropics_output_format_becomes_a_response_format_strict_when_it_can_be():
    loose = {"type": "object", "properties": {"city": {"type": "string"}}}
    for fmt, strict in ((SCHEMA, True), (loose, False)):
        body = {
            "model": "m",
            "max_tokens": 10,
            "messages": [{"role": "user", "content": "x"}],
            "output_config": {"format": {"type": "json_schema", "schema": fmt}},
        }
        spec = messages_to_chat(body, reasoning=False)["response_format"]["json_schema"]
        assert spec["schema"] == fmt and spec.get("strict", False) is strict


def test_strict_compatibility_looks_everywhere():
    nested = {**SCHEMA, "properties": {"city": {"type": "object", "properties": {}}}}
    in_defs = {**SCHEMA, "$defs": {"Place": {"type": "object", "properties": {"x": {}}}}}

    assert strict_compatible(SCHEMA)
    assert not strict_compatible(nested)  # the inner object is open
    assert not strict_compatible(in_defs)
    assert not strict_compatible({**SCHEMA, "required": []})


def _answered(stop_reason: str, *blocks: dict[str, Any]) -> dict[str, Any]:
    return {"id": "msg_1", "content": list(blocks), "stop_reason": stop_reason}


def test_the_answer_tools_call_comes_back_as_the_content():
    use = {"type": "tool_use", "id": "t1", "name": JSON_TOOL, "input": {"city": "Paris"}}
    preamble = {"type": "text", "text": "Here it is:"}

    chat = message_to_chat(
        _answered("tool_use", preamble, use), model="m", usage=Usage(), json_tool=True
    )

    choice = chat["choices"][0]
    assert json.loads(choice["message"]["content"]) == {"city": "Paris"}
    assert choice["finish_reason"] == "stop" and "tool_calls" not in choice["message"]
    # A request that did not ask for JSON keeps a tool of that name as a tool call.
    plain = message_to_chat(_answered("tool_use", use), model="m", usage=Usage())
    assert plain["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == JSON_TOOL


def test_a_streamed_answer_tool_call_is_streamed_content():
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "usage": {"input_tokens": 3}}},
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "tool_use", "id": "t1", "name": JSON_TOOL, "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '{"city": '},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "input_json_delta", "partial_json": '"Paris"}'},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {}},
        {"type": "message_stop"},
    ]
    translator = MessageEventsToChatChunks("m", json_tool=True)

    chunks = [chunk for event in events for chunk in translator.feed(event)]

    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("content") or "" for d in deltas) == '{"city": "Paris"}'
    assert not any("tool_calls" in d for d in deltas)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"


def test_an_openai_refusal_is_an_anthropic_refusal():
    completion = {
        "id": "chatcmpl-1",
        "choices": [
            {
                "message": {"role": "assistant", "content": None, "refusal": "No."},
                "finish_reason": "stop",
            }
        ],
    }
    message = chat_to_message(completion, model="m", usage=Usage())
    assert (message["content"], message["stop_reason"]) == (
        [{"type": "text", "text": "No."}],
        "refusal",
    )

    events = ChatChunksToMessageEvents("m")
    chunk = {"id": "c", "choices": [{"index": 0, "delta": {"refusal": "No."}}]}
    sent = b"".join(events.feed(chunk) + events.finish_events(Usage()))
    assert b'"text":"No."' in sent and b'"stop_reason":"refusal"' in sent
