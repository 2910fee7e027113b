"""Prompt-cache marks through the Anthropic ⇄ OpenAI translation, cache usage read and written
in each protocol, and cache writes priced by TTL: golden tests of the functions."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import orjson
import pytest

from billing.pricing import hold_amount, usage_cost
from core.errors import GatewayError
from core.usage import Usage
from providers.catalog import Deployment
from providers.protocols.openai import usage_read
from providers.translate.anthropic_openai_usage import (
    anthropic_usage,
    openai_usage,
    usage_from_anthropic,
)
from providers.translate.cache_control import marks_strip
from providers.translate.chat_to_messages import chat_to_messages
from providers.translate.messages_to_chat import messages_to_chat

pytestmark = pytest.mark.smoke

EPHEMERAL = {"type": "ephemeral"}
HOUR = {"type": "ephemeral", "ttl": "1h"}

ANTHROPIC_MARKED = {
    "model": "claude-x",
    "max_tokens": 100,
    "tools": [
        {"name": "zoom", "description": "Zooms", "input_schema": {"type": "object"}},
        {
            "name": "pan",
            "description": "Pans",
            "input_schema": {"type": "object"},
            "cache_control": HOUR,
        },
    ],
    "system": [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "A long manual.", "cache_control": HOUR},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {
                    "type": "image",
                    "source": {"type": "url", "url": "https://x.test/a.png"},
                    "cache_control": EPHEMERAL,
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Zooming.", "cache_control": EPHEMERAL},
                {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "zoom",
                    "input": {},
                    "cache_control": EPHEMERAL,
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "a cat",
                    "cache_control": EPHEMERAL,
                },
                {"type": "text", "text": "So?"},
            ],
        },
    ],
}

OPENAI_MARKED = {
    "model": "claude-x",
    "max_tokens": 100,
    "messages": [
        {
            "role": "system",
            "content": [
                {"type": "text", "text": "You are terse."},
                {"type": "text", "text": "A long manual.", "cache_control": HOUR},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://x.test/a.png"},
                    "cache_control": EPHEMERAL,
                },
            ],
        },
        # The tool_use block's mark has no OpenAI place: dropped.
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Zooming.", "cache_control": EPHEMERAL},
            ],
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "zoom", "arguments": "{}"},
                }
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "toolu_1",
            "content": [{"type": "text", "text": "a cat", "cache_control": EPHEMERAL}],
        },
        {"role": "user", "content": "So?"},
    ],
    "tools": [
        {
            "type": "function",
            "function": {"name": "zoom", "description": "Zooms", "parameters": {"type": "object"}},
        },
        {
            "type": "function",
            "function": {"name": "pan", "description": "Pans", "parameters": {"type": "object"}},
            "cache_control": HOUR,
        },
    ],
}


def _unmarked(value: object) -> object:
    if isinstance(value, dict):
        return {k: _unmarked(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [_unmarked(v) for v in value]
    return value


def test_anthropic_marks_reach_an_openai_provider_that_takes_them():
    assert messages_to_chat(ANTHROPIC_MARKED, reasoning=False, cache_control=True) == OPENAI_MARKED


def test_anthropic_marks_are_dropped_for_a_provider_that_takes_none():
    dropped = messages_to_chat(ANTHROPIC_MARKED, reasoning=False, cache_control=False)

    assert b"cache_control" not in orjson.dumps(dropped)
    # Shaped exactly as the same request without marks (strings where there were strings).
    assert dropped == messages_to_chat(_unmarked(ANTHROPIC_MARKED), reasoning=False)
    assert dropped["messages"][0] == {"role": "system", "content": "You are terse.A long manual."}


def test_openai_marks_become_anthropic_marks_on_the_same_blocks():
    body = {
        "model": "test/claude",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {
                "role": "developer",
                "content": [{"type": "text", "text": "A long manual.", "cache_control": HOUR}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:", "cache_control": EPHEMERAL},
                    {
                        "type": "image_url",
                        "image_url": {"url": "https://x.test/a.png"},
                        "cache_control": EPHEMERAL,
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "text", "text": "Zooming.", "cache_control": EPHEMERAL}],
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "zoom", "arguments": "{}"},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_1",
                "content": [{"type": "text", "text": "a cat", "cache_control": EPHEMERAL}],
            },
        ],
        "tools": [{"type": "function", "function": {"name": "zoom"}, "cache_control": HOUR}],
    }

    out = chat_to_messages(body, upstream_model="claude-mock", max_tokens=50)

    assert out["system"] == [
        {"type": "text", "text": "Be terse."},
        {"type": "text", "text": "A long manual.", "cache_control": HOUR},
    ]
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:", "cache_control": EPHEMERAL},
                {
                    "type": "image",
                    "source": {"type": "url", "url": "https://x.test/a.png"},
                    "cache_control": EPHEMERAL,
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Zooming.", "cache_control": EPHEMERAL},
                {"type": "tool_use", "id": "call_1", "name": "zoom", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "call_1",
                    "content": "a cat",
                    "cache_control": EPHEMERAL,
                },
            ],
        },
    ]
    assert out["tools"] == [
        {
            "name": "zoom",
            "description": "",
            "cache_control": HOUR,
            "input_schema": {"type": "object", "properties": {}},
        },
    ]


def test_without_marks_the_system_prompt_stays_one_string():
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "A"}]},
            {"role": "user", "content": "hi"},
        ],
    }
    assert chat_to_messages(body, upstream_model="m", max_tokens=5)["system"] == "A"


@pytest.mark.parametrize("direction", ["to_openai", "to_anthropic"])
def test_a_mark_that_is_not_an_object_is_a_400_naming_it(direction):
    if direction == "to_openai":
        body = {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": "yes"}]}
            ],
        }
        call = lambda: messages_to_chat(body, reasoning=False, cache_control=True)  # noqa: E731
    else:
        body = {
            "model": "m",
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "x", "cache_control": "yes"}]}
            ],
        }
        call = lambda: chat_to_messages(body, upstream_model="m", max_tokens=5)  # noqa: E731
    with pytest.raises(GatewayError) as refused:
        call()
    assert refused.value.status == 400
    assert refused.value.param == "messages[0].content[0].cache_control"


def test_marks_are_taken_off_for_an_openai_provider_that_takes_none():
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "S", "cache_control": EPHEMERAL},  # LiteLLM's form
            {"role": "user", "content": [{"type": "text", "text": "U", "cache_control": HOUR}]},
        ],
        "tools": [{"type": "function", "function": {"name": "f"}, "cache_control": EPHEMERAL}],
    }

    out = marks_strip(body)

    assert out == _unmarked(body)
    assert body["messages"][1]["content"][0]["cache_control"] == HOUR  # the client's, untouched
    plain = {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]}
    assert marks_strip(plain) is plain  # nothing to take off: no copy


# --- usage -------------------------------------------------------------------------------


def test_openrouters_cache_write_figure_is_read():
    usage = usage_read(
        {
            "prompt_tokens": 194,
            "completion_tokens": 2,
            "prompt_tokens_details": {
                "cached_tokens": 10,
                "cache_write_tokens": 100,
                "audio_tokens": 0,
            },
        }
    )
    assert usage == Usage(
        prompt_tokens=194, completion_tokens=2, cached_tokens=10, cache_write_tokens=100
    )


def test_anthropic_cache_writes_are_read_and_written_with_their_ttl():
    usage = usage_from_anthropic(
        {
            "input_tokens": 5,
            "output_tokens": 7,
            "cache_read_input_tokens": 20,
            "cache_creation_input_tokens": 30,
            "cache_creation": {"ephemeral_5m_input_tokens": 12, "ephemeral_1h_input_tokens": 18},
        }
    )
    assert usage == Usage(
        prompt_tokens=55,
        completion_tokens=7,
        cached_tokens=20,
        cache_write_tokens=30,
        cache_write_1h_tokens=18,
    )
    # A stream's message_delta without the split keeps message_start's.
    assert usage_from_anthropic({"output_tokens": 9}, previous=usage) == replace(
        usage, completion_tokens=9
    )
    assert anthropic_usage(usage) == {
        "input_tokens": 5,
        "output_tokens": 7,
        "cache_read_input_tokens": 20,
        "cache_creation_input_tokens": 30,
        "cache_creation": {"ephemeral_5m_input_tokens": 12, "ephemeral_1h_input_tokens": 18},
    }
    assert openai_usage(usage)["prompt_tokens_details"] == {
        "cached_tokens": 20,
        "cache_write_tokens": 30,
    }
    assert "cache_write_tokens" not in openai_usage(Usage(5, 1, 2))["prompt_tokens_details"]


# --- prices ------------------------------------------------------------------------------

CLAUDE = Deployment(
    "p",
    "anthropic",
    "http://x",
    "",
    1,
    1,
    "m",
    Decimal("3"),
    Decimal("15"),
    Decimal("0.30"),
    cache_write_price=Decimal("3.75"),
    cache_write_1h_price=Decimal("6"),
)


def test_each_kind_of_prompt_token_is_priced_at_its_own_rate():
    usage = Usage(
        prompt_tokens=1000,
        completion_tokens=10,
        cached_tokens=400,
        cache_write_tokens=300,
        cache_write_1h_tokens=100,
    )

    # 300 fresh × 3 + 400 read × 0.30 + 200 (5 min) × 3.75 + 100 (1 h) × 6 + 10 × 15, per 1M
    assert usage_cost(usage, CLAUDE) == Decimal("0.00252")
    # Unset (or below the 5-minute price), an hour's write is priced as five minutes'.
    assert usage_cost(usage, replace(CLAUDE, cache_write_1h_price=Decimal(0))) == Decimal(
        "0.002295"
    )
    # The hold prices every prompt token at the dearest rate: an hour's write.
    assert hold_amount(body_bytes=100, max_output_tokens=0, deployment=CLAUDE) == Decimal("0.0006")
