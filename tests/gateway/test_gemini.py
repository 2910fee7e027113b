"""Models served over the Gemini protocol (the Gemini API and Vertex AI express mode),
through the official openai and anthropic SDKs, unchanged."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import anthropic
import httpx
import openai
import pytest

from billing.models import CreditAccount
from providers.translate.gemini_openai import GeminiToChatChunks, chat_to_gemini
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

IN, OUT, READ = Decimal("0.30"), Decimal("2.50"), Decimal("0.075")
MILLION = Decimal(1_000_000)
LOOKUP = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Looks up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
    },
}


def _openai(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def _mock(**directive: Any) -> str:
    return "!mock " + json.dumps(directive)


@pytest.mark.parametrize("model", ["test/gemini", "test/gemini-vertex"])
def test_a_completion_is_translated_and_billed(gateway, make_account, model):
    account = make_account(credit=Decimal("1"))
    content = _mock(reply="ciao", prompt_tokens=1000, cached_tokens=400, completion_tokens=9)

    raw = _openai(gateway, account.key).chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "system", "content": "short"}, {"role": "user", "content": content}],
    )
    completion = raw.parse()

    assert completion.choices[0].message.content == "ciao"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.prompt_tokens == 1000
    expected = (600 * IN + 400 * READ + 9 * OUT) / MILLION
    assert Decimal(raw.headers["x-gatewayz-cost"]) == expected
    log = settled(raw.headers["x-request-id"])
    assert (log.cached_tokens, log.completion_tokens, log.cost) == (400, 9, expected)


def test_a_stream_ends_with_usage_and_done(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    chunks = list(
        _openai(gateway, account.key).chat.completions.create(
            model="test/gemini",
            messages=[{"role": "user", "content": "stream this now"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream this now"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 5


def test_tools_round_trip(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _openai(gateway, account.key)
    messages: list[Any] = [
        {"role": "user", "content": _mock(tool_call={"name": "lookup", "arguments": {"q": "a"}})}
    ]

    first = client.chat.completions.create(model="test/gemini", messages=messages, tools=[LOOKUP])
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "lookup" and json.loads(call.function.arguments) == {"q": "a"}  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "found"},
        {"role": "user", "content": "thanks"},
    ]
    second = client.chat.completions.create(model="test/gemini", messages=messages, tools=[LOOKUP])

    assert second.choices[0].message.content == "You said: thanks"


def test_a_blocked_prompt_is_a_400_and_costs_nothing(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    with pytest.raises(openai.BadRequestError) as refused:
        _openai(gateway, account.key).chat.completions.create(
            model="test/gemini",
            messages=[{"role": "user", "content": _mock(safety_block="prompt")}],
        )

    assert refused.value.code == "content_filtered"
    log = settled(refused.value.response.headers["x-request-id"])
    assert (log.status, log.cost) == (400, 0)
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("1")


def test_a_blocked_answer_finishes_as_content_filter(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    completion = _openai(gateway, account.key).chat.completions.create(
        model="test/gemini",
        messages=[{"role": "user", "content": _mock(safety_block="response")}],
    )

    assert completion.choices[0].finish_reason == "content_filter"


def test_a_cut_stream_ends_with_an_error_event_and_is_billed(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    body = {
        "model": "test/gemini",
        "stream": True,
        "messages": [{"role": "user", "content": _mock(reply="a b c d e", cut_after=2)}],
    }

    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.key}"},
    )

    last = json.loads(response.text.strip().split("\n\n")[-1].removeprefix("data: "))
    assert last["error"]["code"] == "upstream_stream_interrupted"
    log = settled(response.headers["x-request-id"])
    assert log.status == 502 and log.cost > 0


def test_the_anthropic_sdk_reaches_gemini_through_two_translations(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = anthropic.Anthropic(base_url=gateway, api_key=account.key, max_retries=0)

    message = client.messages.create(
        model="test/gemini", max_tokens=100, messages=[{"role": "user", "content": "hola"}]
    )
    with client.messages.stream(
        model="test/gemini", max_tokens=100, messages=[{"role": "user", "content": "hola"}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()

    assert message.content[0].text == "You said: hola" == streamed  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 3


def test_golden_request_translation():
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                ],
            },
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "lookup", "arguments": '{"q":"x"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "result"},
        ],
        "temperature": 0.3,
        "top_p": 0.8,
        "stop": ["END"],
        "n": 2,
        "response_format": {"type": "json_object"},
        "reasoning_effort": "low",
        "tools": [LOOKUP],
        "tool_choice": "required",
    }

    assert chat_to_gemini(body, max_tokens=500) == {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Look"},
                    {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/"}},
                ],
            },
            {"role": "model", "parts": [{"functionCall": {"name": "lookup", "args": {"q": "x"}}}]},
            {
                "role": "user",
                "parts": [
                    {"functionResponse": {"name": "lookup", "response": {"content": "result"}}}
                ],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "maxOutputTokens": 500,
            "temperature": 0.3,
            "topP": 0.8,
            "stopSequences": ["END"],
            "candidateCount": 2,
            "responseMimeType": "application/json",
            "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True},
        },
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "lookup",
                        "description": "Looks up",
                        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    }


def test_golden_stream_translation():
    translator = GeminiToChatChunks("test/gemini")
    responses = [
        {
            "candidates": [
                {
                    "index": 0,
                    "content": {"role": "model", "parts": [{"text": "thinking", "thought": True}]},
                }
            ],
            "usageMetadata": {"promptTokenCount": 5},
        },
        {"candidates": [{"index": 0, "content": {"role": "model", "parts": [{"text": "Hi"}]}}]},
        {
            "candidates": [
                {
                    "index": 0,
                    "content": {
                        "role": "model",
                        "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {
                "promptTokenCount": 5,
                "candidatesTokenCount": 7,
                "thoughtsTokenCount": 1,
                "cachedContentTokenCount": 2,
            },
        },
    ]

    deltas = [
        (c["choices"][0]["delta"], c["choices"][0]["finish_reason"])
        for r in responses
        for c in translator.feed(r)
    ]

    assert deltas[:3] == [
        ({"role": "assistant", "content": ""}, None),
        ({"reasoning_content": "thinking"}, None),
        ({"content": "Hi"}, None),
    ]
    call = deltas[3][0]["tool_calls"][0]
    assert call["index"] == 0 and call["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert deltas[4] == ({}, "tool_calls")
    assert translator.finished
    assert translator.usage is not None
    assert (
        translator.usage.prompt_tokens,
        translator.usage.completion_tokens,
        translator.usage.cached_tokens,
    ) == (5, 8, 2)
