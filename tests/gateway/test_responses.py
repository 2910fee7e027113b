"""POST /v1/responses through the official openai SDK, on models of every provider protocol:
the same routing and billing as chat, translated in providers.translate."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest

from tests.support.waits import settled

pytestmark = pytest.mark.smoke

TOOL = {
    "type": "function",
    "name": "lookup",
    "description": "Looks a word up",
    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
}


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def _mock(**directive: Any) -> str:
    return "!mock " + json.dumps(directive)


@pytest.mark.parametrize("model", ["test/echo", "test/claude", "test/gemini"])
def test_a_response_is_served_and_billed_on_every_protocol(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))

    raw = _client(gateway, account.key).responses.with_raw_response.create(
        model=model, input="hello world", instructions="Be brief."
    )
    response = raw.parse()

    assert response.object == "response" and response.status == "completed"
    assert response.output_text == "You said: hello world"
    assert response.model == model and response.usage is not None
    log = settled(raw.headers["x-request-id"])
    assert log.endpoint == "responses" and log.served_model == model
    assert (log.prompt_tokens, log.completion_tokens) == (
        response.usage.input_tokens,
        response.usage.output_tokens,
    )
    assert log.cost == Decimal(raw.headers["x-gatewayz-cost"]) > 0


def test_the_stream_has_the_responses_event_sequence(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    events = list(
        _client(gateway, account.key).responses.create(
            model="test/echo", input=_mock(reply="one two"), stream=True
        )
    )

    kinds = [e.type for e in events]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "one two" and final.usage.output_tokens == 2


def test_the_sdks_stream_helper_assembles_the_final_response(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    with _client(gateway, account.key).responses.stream(
        model="test/claude", input=[{"role": "user", "content": "stream it"}]
    ) as stream:
        deltas = [e.delta for e in stream if e.type == "response.output_text.delta"]
        final = stream.get_final_response()

    assert "".join(deltas) == final.output_text == "You said: stream it"


@pytest.mark.parametrize("model", ["test/echo", "test/claude"])
def test_function_tools_round_trip(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)
    ask = _mock(tool_call={"name": "lookup", "arguments": {"q": "gateway"}})

    first = client.responses.create(model=model, input=ask, tools=[TOOL])  # type: ignore[list-item]
    call = next(item for item in first.output if item.type == "function_call")
    assert call.name == "lookup" and json.loads(call.arguments) == {"q": "gateway"}

    second = client.responses.create(
        model=model,
        tools=[TOOL],  # type: ignore[list-item]
        input=[
            {"role": "user", "content": "look up gateway"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "a way in"},
            {"role": "user", "content": "and then?"},
        ],
    )

    assert second.output_text == "You said: and then?"


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"store": "yes"}, "store"),
        ({"tools": [{"type": "web_search"}]}, "tools"),
        ({"input": []}, "input"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
    ],
)
def test_what_cannot_be_served_is_a_clear_400(gateway, make_account, extra, param):
    account = make_account(credit=Decimal("1"))
    body = {"model": "test/echo", "input": "x", **extra}

    response = httpx.post(
        f"{gateway}/v1/responses", json=body, headers={"authorization": f"Bearer {account.key}"}
    )

    assert response.status_code == 400
    assert response.json()["error"]["param"] == param
    assert settled(response.headers["x-request-id"]).cost == 0


def test_golden_request_translation():
    from providers.translate.responses_openai_requests import responses_to_chat

    body = {
        "model": "m",
        "instructions": "Be brief.",
        "input": [
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is "},
                    {
                        "type": "input_image",
                        "image_url": "https://example.com/a.png",
                        "detail": "low",
                    },
                ],
            },
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": '{"a":2}'},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": {"v": 2}},
        ],
        "max_output_tokens": 300,
        "temperature": 0.4,
        "reasoning": {"effort": "low"},
        "text": {
            "format": {
                "type": "json_schema",
                "name": "out",
                "schema": {"type": "object"},
                "strict": True,
            }
        },
        "tools": [TOOL],
        "tool_choice": {"type": "function", "name": "lookup"},
        "stream": True,
    }

    assert responses_to_chat(body) == {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is "},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://example.com/a.png", "detail": "low"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                    },
                    {
                        "id": "c2",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":2}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "tool", "tool_call_id": "c2", "content": '{"v":2}'},
        ],
        "max_tokens": 300,
        "temperature": 0.4,
        "reasoning_effort": "low",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "Looks a word up",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "lookup"}},
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
        },
        "stream": True,
        "stream_options": {"include_usage": True},
    }
