"""The mock upstreams cache marked prompt prefixes as Anthropic does (and OpenRouter, on
OpenAI-shape parts): the first request writes, a repeat reads, a moved breakpoint reads the
old prefix and writes the rest, each write at its mark's TTL."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import openai
import pytest

EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}


@pytest.fixture
def claude(mock_url: str, api_key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(
        base_url=mock_url, api_key=api_key, max_retries=0, _strict_response_validation=True
    )


@pytest.fixture
def chat(mock_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{mock_url}/v1", api_key=api_key, max_retries=0)


def _manual() -> str:
    # Unique, so no other test (or an earlier run against the same mock) has cached it.
    return f"manual {uuid.uuid4().hex} " + "rule " * 50  # 52 words


def test_anthropic_writes_a_marked_prefix_then_reads_it(claude: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": _manual(), "cache_control": EPHEMERAL}]
    messages: Any = [{"role": "user", "content": "two words"}]

    first = claude.messages.create(model="m", max_tokens=50, system=system, messages=messages)
    again = claude.messages.create(model="m", max_tokens=50, system=system, messages=messages)
    other_model = claude.messages.create(model="n", max_tokens=50, system=system, messages=messages)

    # system: 52 words + 3; the message after the breakpoint: 2 words + 3
    assert (first.usage.cache_creation_input_tokens, first.usage.cache_read_input_tokens) == (55, 0)
    assert first.usage.input_tokens == 5
    assert first.usage.cache_creation is not None
    assert first.usage.cache_creation.ephemeral_5m_input_tokens == 55
    assert (again.usage.cache_creation_input_tokens, again.usage.cache_read_input_tokens) == (0, 55)
    assert again.usage.input_tokens == 5
    assert other_model.usage.cache_creation_input_tokens == 55  # a cache is per model


def test_anthropic_reads_the_last_turns_prefix_and_writes_the_new_turn(
    claude: anthropic.Anthropic,
) -> None:
    manual = _manual()
    turn_1: Any = [
        {"role": "user", "content": [{"type": "text", "text": manual, "cache_control": EPHEMERAL}]}
    ]
    turn_2: Any = [
        {"role": "user", "content": [{"type": "text", "text": manual}]},
        {"role": "assistant", "content": "four words of answer"},
        {"role": "user", "content": [{"type": "text", "text": "and then?", "cache_control": HOUR}]},
    ]

    claude.messages.create(model="m", max_tokens=50, messages=turn_1)
    second = claude.messages.create(model="m", max_tokens=50, messages=turn_2)

    usage = second.usage
    assert usage.cache_read_input_tokens == 55  # turn 1's prefix, found by the lookback
    assert usage.cache_creation_input_tokens == (4 + 3) + (2 + 3)
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_1h_input_tokens == 12
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert usage.input_tokens == 0


def test_anthropic_refuses_more_than_four_marks_and_bad_marks(claude: anthropic.Anthropic) -> None:
    five: Any = [
        {"type": "text", "text": f"part {i}", "cache_control": EPHEMERAL} for i in range(5)
    ]
    with pytest.raises(anthropic.BadRequestError, match="A maximum of 4 blocks"):
        claude.messages.create(
            model="m", max_tokens=5, messages=[{"role": "user", "content": five}]
        )
    bad: Any = [{"type": "text", "text": "x", "cache_control": {"type": "ephemeral", "ttl": "2h"}}]
    with pytest.raises(anthropic.BadRequestError, match="ttl"):
        claude.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": bad}])


def test_openai_shape_marks_are_cached_as_openrouter_reports_them(chat: openai.OpenAI) -> None:
    messages: Any = [
        {
            "role": "system",
            "content": [{"type": "text", "text": _manual(), "cache_control": EPHEMERAL}],
        },
        {"role": "user", "content": "two words"},
    ]

    first = chat.chat.completions.create(model="echo", messages=messages)
    again = chat.chat.completions.create(model="echo", messages=messages)
    unmarked = chat.chat.completions.create(model="echo", messages=[messages[1]])

    for completion in (first, again):
        assert completion.usage is not None and completion.usage.prompt_tokens == 55 + 5
    details = [c.usage.prompt_tokens_details for c in (first, again)]  # type: ignore[union-attr]
    assert [(d.cached_tokens, d.cache_write_tokens) for d in details] == [  # type: ignore[union-attr]
        (0, 55),
        (55, 0),
    ]
    assert unmarked.usage is not None and unmarked.usage.prompt_tokens_details is not None
    assert unmarked.usage.prompt_tokens_details.cache_write_tokens is None
