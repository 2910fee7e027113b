"""Prompt caching through the gateway, end to end with the official SDKs: `cache_control`
marks reach the provider in its own protocol (or are taken off where the provider does not
declare it takes them), the provider's cache writes and reads come back in the client's
protocol, and each is charged at its own price, exactly, in the answer, the request log
and the ledger.

The mock upstream caches as the APIs do (mockserver/prompt_cache.py): the first request
with a marked prefix writes it, a repeat reads it. Each test's prompt is unique, so it
starts cold."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from billing.models import LedgerEntry
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}
ECHO = '!mock {"echo_request": true}'
# test/claude (Anthropic protocol) and test/claude-routed (OpenAI protocol, caching): the same
# prices, per 1M tokens.
IN, OUT, READ, WRITE, WRITE_1H = (Decimal(p) for p in ("3.00", "15.00", "0.30", "3.75", "6.00"))
MILLION = Decimal(1_000_000)
# The mock's tokens (words + 3 per message): the manual's system message is 52 + 3, the
# marked question 4 + 3, the assistant's "ok" 1 + 3 and the echo directive 3 + 3.
SYSTEM, QUESTION, PROMPT = 55, 7, 72


def _manual() -> str:
    return f"manual {uuid.uuid4().hex} " + "rule " * 50  # 52 words, never cached before


def _anthropic(gateway: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0)


def _openai(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def _anthropic_request(manual: str, model: str, ttl: dict[str, str] = EPHEMERAL) -> Any:
    return {
        "model": model,
        "max_tokens": 1000,
        "system": [{"type": "text", "text": manual, "cache_control": ttl}],
        "tools": [
            {
                "name": "lookup",
                "description": "Looks up",
                "cache_control": ttl,
                "input_schema": {"type": "object"},
            }
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "question about the manual",
                        "cache_control": EPHEMERAL,
                    }
                ],
            },
            {"role": "assistant", "content": "ok"},
            {"role": "user", "content": ECHO},
        ],
    }


def _openai_messages(manual: str, ttl: dict[str, str] = EPHEMERAL) -> Any:
    return [
        {"role": "system", "content": [{"type": "text", "text": manual, "cache_control": ttl}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "question about the manual", "cache_control": EPHEMERAL}
            ],
        },
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": ECHO},
    ]


LOOKUP: Any = {
    "type": "function",
    "function": {"name": "lookup", "description": "Looks up", "parameters": {"type": "object"}},
    "cache_control": EPHEMERAL,
}


def _charged_exactly(request_id: str, expected: Decimal, read: int, written: int) -> None:
    log = settled(request_id)
    assert (log.cached_tokens, log.cache_write_tokens, log.cost) == (read, written, expected)
    assert LedgerEntry.objects.get(reference=request_id).amount == -expected


# --- /v1/messages → an OpenAI-protocol provider that caches --------------------------------


def test_anthropic_marks_reach_an_openai_provider_that_caches_and_are_billed(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _anthropic(gateway, account.key)
    request = _anthropic_request(_manual(), "test/claude-routed")

    answers = [client.messages.with_raw_response.create(**request) for _ in range(2)]

    seen = json.loads(answers[0].parse().content[0].text)["body"]  # type: ignore[union-attr]
    assert seen["tools"][0]["cache_control"] == EPHEMERAL
    assert seen["messages"][0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": request["system"][0]["text"], "cache_control": EPHEMERAL}
        ],
    }
    assert seen["messages"][1]["content"] == [
        {"type": "text", "text": "question about the manual", "cache_control": EPHEMERAL}
    ]
    figures = []
    for raw in answers:
        usage = raw.parse().usage
        read, written = usage.cache_read_input_tokens or 0, usage.cache_creation_input_tokens or 0
        figures.append((usage.input_tokens, read, written))
        expected = (
            usage.input_tokens * IN + read * READ + written * WRITE + usage.output_tokens * OUT
        ) / MILLION
        assert Decimal(raw.headers["x-gatewayz-cost"]) == expected
        _charged_exactly(raw.headers["x-request-id"], expected, read, written)
    fresh = PROMPT - SYSTEM - QUESTION
    assert figures == [(fresh, 0, SYSTEM + QUESTION), (fresh, SYSTEM + QUESTION, 0)]


def test_a_streamed_answer_reports_and_bills_the_cache_read(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _anthropic(gateway, account.key)
    request = _anthropic_request(_manual(), "test/claude-routed")
    client.messages.create(**request)

    with client.messages.stream(**request) as stream:
        message = stream.get_final_message()
        request_id = stream.response.headers["x-request-id"]

    usage = message.usage
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        SYSTEM + QUESTION,
        0,
    )
    expected = (
        usage.input_tokens * IN + (SYSTEM + QUESTION) * READ + usage.output_tokens * OUT
    ) / MILLION
    _charged_exactly(request_id, expected, SYSTEM + QUESTION, 0)


def test_anthropic_marks_are_dropped_for_an_openai_provider_that_takes_none(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    request = _anthropic_request(_manual(), "test/echo")

    message = _anthropic(gateway, account.key).messages.create(**request)

    seen = json.loads(message.content[0].text)["body"]  # type: ignore[union-attr]
    assert "cache_control" not in json.dumps(seen)
    assert seen["messages"][0] == {"role": "system", "content": request["system"][0]["text"]}
    assert message.usage.cache_creation_input_tokens == 0


# --- /v1/chat/completions → Anthropic --------------------------------------------------------


@pytest.mark.parametrize("ttl", ["5m", "1h"])
def test_openai_parts_marks_reach_anthropic_and_cache_tokens_are_billed(gateway, make_account, ttl):
    account = make_account(credit=Decimal("1"))
    client = _openai(gateway, account.key)
    mark = HOUR if ttl == "1h" else EPHEMERAL
    manual = _manual()
    request: Any = {
        "model": "test/claude",
        "messages": _openai_messages(manual, mark),
        "tools": [{**LOOKUP, "cache_control": mark}],
    }

    answers = [client.chat.completions.with_raw_response.create(**request) for _ in range(2)]

    seen = json.loads(answers[0].parse().choices[0].message.content or "")["body"]
    assert seen["system"] == [{"type": "text", "text": manual, "cache_control": mark}]
    assert seen["messages"][0]["content"] == [
        {"type": "text", "text": "question about the manual", "cache_control": EPHEMERAL}
    ]
    assert seen["tools"] == [
        {
            "name": "lookup",
            "description": "Looks up",
            "input_schema": {"type": "object"},
            "cache_control": mark,
        }
    ]
    first, again = (raw.parse() for raw in answers)
    assert first.usage is not None and again.usage is not None
    assert first.usage.prompt_tokens == again.usage.prompt_tokens == PROMPT
    details = [c.usage.prompt_tokens_details for c in (first, again)]  # type: ignore[union-attr]
    assert [(d.cached_tokens, d.cache_write_tokens) for d in details] == [  # type: ignore[union-attr]
        (0, SYSTEM + QUESTION),
        (SYSTEM + QUESTION, None),
    ]
    # The system prompt is written at its mark's TTL, the question for five minutes.
    system_write = SYSTEM * (WRITE_1H if ttl == "1h" else WRITE)
    fresh = (PROMPT - SYSTEM - QUESTION) * IN
    costs = [
        (fresh + system_write + QUESTION * WRITE + first.usage.completion_tokens * OUT) / MILLION,
        (fresh + (SYSTEM + QUESTION) * READ + again.usage.completion_tokens * OUT) / MILLION,
    ]
    assert [Decimal(raw.headers["x-gatewayz-cost"]) for raw in answers] == costs
    _charged_exactly(answers[0].headers["x-request-id"], costs[0], 0, SYSTEM + QUESTION)
    _charged_exactly(answers[1].headers["x-request-id"], costs[1], SYSTEM + QUESTION, 0)


def test_a_translated_stream_reports_cached_tokens_in_its_usage_chunk(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _openai(gateway, account.key)
    request: Any = {"model": "test/claude", "messages": _openai_messages(_manual())}
    client.chat.completions.create(**request)

    raw = client.chat.completions.with_raw_response.create(
        **request, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(raw.parse())

    usage = chunks[-1].usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cached_tokens == SYSTEM + QUESTION
    expected = (
        (PROMPT - SYSTEM - QUESTION) * IN
        + (SYSTEM + QUESTION) * READ
        + usage.completion_tokens * OUT
    ) / MILLION
    _charged_exactly(raw.headers["x-request-id"], expected, SYSTEM + QUESTION, 0)


# --- the same protocol both sides ------------------------------------------------------------


def test_openai_marks_reach_only_an_openai_provider_that_takes_them(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _openai(gateway, account.key)
    messages = _openai_messages(_manual())

    routed = client.chat.completions.with_raw_response.create(
        model="test/claude-routed", messages=messages, tools=[LOOKUP]
    )
    plain = client.chat.completions.create(model="test/echo", messages=messages, tools=[LOOKUP])

    seen = json.loads(routed.parse().choices[0].message.content or "")["body"]
    assert (seen["messages"], seen["tools"]) == (messages, [LOOKUP])
    seen = json.loads(plain.choices[0].message.content or "")["body"]
    assert "cache_control" not in json.dumps(seen)
    assert seen["messages"][0]["content"] == [
        {"type": "text", "text": messages[0]["content"][0]["text"]}
    ]
    usage = routed.parse().usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert usage.prompt_tokens_details.cache_write_tokens == SYSTEM + QUESTION
    expected = (
        (PROMPT - SYSTEM - QUESTION) * IN
        + (SYSTEM + QUESTION) * WRITE
        + usage.completion_tokens * OUT
    ) / MILLION
    assert Decimal(routed.headers["x-gatewayz-cost"]) == expected
    _charged_exactly(routed.headers["x-request-id"], expected, 0, SYSTEM + QUESTION)


def test_an_hours_cache_write_is_billed_at_its_own_price(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    request = _anthropic_request(_manual(), "test/claude", ttl=HOUR)

    raw = _anthropic(gateway, account.key).messages.with_raw_response.create(**request)

    usage = raw.parse().usage
    assert usage.cache_creation is not None
    assert (
        usage.cache_creation.ephemeral_1h_input_tokens,
        usage.cache_creation.ephemeral_5m_input_tokens,
    ) == (SYSTEM, QUESTION)
    expected = (
        usage.input_tokens * IN + SYSTEM * WRITE_1H + QUESTION * WRITE + usage.output_tokens * OUT
    ) / MILLION
    assert Decimal(raw.headers["x-gatewayz-cost"]) == expected
    _charged_exactly(raw.headers["x-request-id"], expected, 0, SYSTEM + QUESTION)
