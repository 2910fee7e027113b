"""Structured output in every direction, through the official SDKs' own helpers: OpenAI's
`chat.completions.parse` / `.stream` and `responses.parse`, Anthropic's `messages.parse`,
each on a model served over the other protocol, over Gemini, and over its own. The mock
providers answer an instance of the schema they were given (mockserver.json_schema), and
refuse it where the real API does (a Claude without structured outputs, JSON mode without
the word "json"), so each test checks the parsed object a client gets.

test/claude takes Anthropic's `output_config.format`; test/claude-legacy does not (its mock
refuses it), so a JSON answer is asked of it through a forced tool."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from tests.support.structured import ASK as SAID
from tests.support.structured import EVENT, Event
from tests.support.waits import settled

pytestmark = pytest.mark.smoke


ASK = [{"role": "user", "content": SAID}]


def _openai(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def _anthropic(gateway: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0)


@pytest.mark.parametrize("model", ["test/claude", "test/claude-legacy", "test/gemini", "test/echo"])
def test_chat_completions_parse_gets_the_object_on_every_protocol(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))

    raw = _openai(gateway, account.key).chat.completions.with_raw_response.parse(
        model=model, messages=ASK, response_format=Event
    )
    completion = raw.parse()

    choice = completion.choices[0]
    assert choice.message.parsed == EVENT
    assert choice.finish_reason == "stop" and not choice.message.tool_calls
    log = settled(raw.headers["x-request-id"])
    assert log.status == 200 and log.cost == Decimal(raw.headers["x-gatewayz-cost"]) > 0


@pytest.mark.parametrize("model", ["test/claude", "test/claude-legacy", "test/gemini"])
def test_a_streamed_parse_gets_the_object(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    client = _openai(gateway, account.key)

    with client.chat.completions.stream(model=model, messages=ASK, response_format=Event) as s:
        pieces = [e.delta for e in s if e.type == "content.delta"]
        final = s.get_final_completion()

    assert final.choices[0].message.parsed == EVENT
    assert final.choices[0].finish_reason == "stop"
    assert len(pieces) >= 1 and json.loads("".join(pieces)) == EVENT.model_dump()


def test_json_mode_answers_a_json_object_on_a_claude_model(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    ask = [{"role": "user", "content": "Answer in json: who goes to the fair?"}]

    completion = _openai(gateway, account.key).chat.completions.create(
        model="test/claude", messages=ask, response_format={"type": "json_object"}
    )

    content = completion.choices[0].message.content
    assert content is not None and isinstance(json.loads(content), dict)
    assert completion.choices[0].finish_reason == "stop"


def test_the_answer_tool_stands_beside_the_clients_own_tools(gateway, make_account):
    """A Claude without native structured output, with tools of the client's: it may call
    one of them, or answer through the answer tool; the answer tool never shows."""
    account = make_account(credit=Decimal("1"))
    weather = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "strict": True,  # parse() takes strict tools only (held to it where Claude can)
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
                "additionalProperties": False,
            },
        },
    }
    call = {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}

    completion = _openai(gateway, account.key).chat.completions.parse(
        model="test/claude-legacy",
        messages=[{"role": "user", "content": "!mock " + json.dumps(call)}],
        tools=[weather],
        response_format=Event,
    )

    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls"
    assert [c.function.name for c in message.tool_calls or []] == ["get_weather"]


def test_a_tool_named_like_the_answer_tool_is_refused_clearly(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    tool = {
        "type": "function",
        "function": {"name": "json_output", "strict": True, "parameters": {"type": "object"}},
    }

    with pytest.raises(openai.BadRequestError) as refused:
        _openai(gateway, account.key).chat.completions.parse(
            model="test/claude-legacy", messages=ASK, tools=[tool], response_format=Event
        )

    assert refused.value.status_code == 400 and "json_output" in refused.value.message


@pytest.mark.parametrize("model", ["test/echo", "test/gemini", "test/claude"])
def test_messages_parse_gets_the_object_on_every_protocol(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))

    message = _anthropic(gateway, account.key).messages.parse(
        model=model, max_tokens=500, messages=ASK, output_format=Event
    )

    assert message.parsed_output == EVENT
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("model", ["test/echo", "test/gemini"])
def test_a_streamed_messages_parse_gets_the_object(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    client = _anthropic(gateway, account.key)

    with client.messages.stream(
        model=model, max_tokens=500, messages=ASK, output_format=Event
    ) as stream:
        final = stream.get_final_message()

    assert final.parsed_output == EVENT


def test_the_older_output_format_field_is_translated_too(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    schema = Event.model_json_schema()

    message = _anthropic(gateway, account.key).messages.create(
        model="test/echo",
        max_tokens=500,
        messages=ASK,
        extra_body={"output_format": {"type": "json_schema", "schema": schema}},
    )

    assert message.content[0].type == "text"
    assert Event.model_validate_json(message.content[0].text) == EVENT


@pytest.mark.parametrize("model", ["test/claude-legacy", "test/gemini", "test/echo"])
def test_responses_parse_gets_the_object(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))

    response = _openai(gateway, account.key).responses.parse(
        model=model, input=SAID, text_format=Event
    )

    assert response.output_parsed == EVENT


def _refusal(**more: Any) -> str:
    return "!mock " + json.dumps({"refusal": "I can't help with that.", **more})


def test_a_refusal_keeps_its_meaning_on_the_anthropic_route(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _anthropic(gateway, account.key)
    ask = [{"role": "user", "content": _refusal()}]

    message = client.messages.create(model="test/echo", max_tokens=100, messages=ask)
    with client.messages.stream(model="test/echo", max_tokens=100, messages=ask) as stream:
        streamed = stream.get_final_message()

    for answer in (message, streamed):
        assert answer.stop_reason == "refusal"
        assert [b.text for b in answer.content if b.type == "text"] == ["I can't help with that."]


def test_truncation_keeps_its_meaning_through_the_answer_tool(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    ask = [{"role": "user", "content": '!mock {"finish_reason": "max_tokens"}'}]

    completion = _openai(gateway, account.key).chat.completions.create(
        model="test/claude-legacy",
        messages=ask,
        response_format={"type": "json_schema", "json_schema": {"name": "e", "schema": {}}},
    )

    assert completion.choices[0].finish_reason == "length"
