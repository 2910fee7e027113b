"""Golden tests of the Anthropic ⇄ OpenAI translation: requests, responses and streams,
each direction, field by field."""

from __future__ import annotations

import json

import pytest

from core.errors import GatewayError
from core.usage import Usage
from providers.translate.anthropic_openai_answers import chat_to_message, message_to_chat
from providers.translate.anthropic_openai_streams import (
    ChatChunksToMessageEvents,
    MessageEventsToChatChunks,
)
from providers.translate.anthropic_openai_usage import usage_from_anthropic
from providers.translate.chat_to_messages import chat_to_messages
from providers.translate.messages_to_chat import messages_to_chat

pytestmark = pytest.mark.smoke

ANTHROPIC_REQUEST = {
    "model": "claude-x",
    "max_tokens": 500,
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in "},
                {"type": "text", "text": "this image?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "zoom", "input": {"x": 1}},
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "a cat"}],
                },
                {"type": "text", "text": "So?"},
            ],
        },
    ],
    "stop_sequences": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "metadata": {"user_id": "u-42"},
    "tools": [{"name": "zoom", "description": "Zooms", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
    "thinking": {"type": "enabled", "budget_tokens": 4000},
    "stream": True,
}

OPENAI_FROM_ANTHROPIC = {
    "model": "claude-x",
    "max_tokens": 500,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in "},
                {"type": "text", "text": "this image?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me look.",
            "tool_calls": [
                {
                    "id": "toolu_1",
                    "type": "function",
                    "function": {"name": "zoom", "arguments": '{"x":1}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": "a cat"},
        {"role": "user", "content": "So?"},
    ],
    "stop": ["END"],
    "temperature": 0.5,
    "top_p": 0.9,
    "user": "u-42",
    "tools": [
        {
            "type": "function",
            "function": {"name": "zoom", "description": "Zooms", "parameters": {"type": "object"}},
        }
    ],
    "parallel_tool_calls": False,
    "tool_choice": "required",
    "reasoning_effort": "medium",
    "stream": True,
    "stream_options": {"include_usage": True},
}


def test_an_anthropic_request_becomes_this_openai_request():
    assert messages_to_chat(ANTHROPIC_REQUEST, reasoning=True) == OPENAI_FROM_ANTHROPIC
    plain = messages_to_chat(ANTHROPIC_REQUEST, reasoning=False)
    assert "reasoning_effort" not in plain
    # top_k reaches only a protocol that takes it (Gemini, through chat).
    gemini = messages_to_chat(ANTHROPIC_REQUEST, reasoning=True, extensions=frozenset({"top_k"}))
    assert gemini == {**OPENAI_FROM_ANTHROPIC, "top_k": 40}


OPENAI_REQUEST = {
    "model": "test/claude",
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": "Use metric units."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "weather", "arguments": '{"city":"Bergen"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "-3C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "2C"}]},
    ],
    "temperature": 0.2,
    "stop": "END",
    "user": "u-1",
    "tools": [
        {"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}
    ],
    "tool_choice": {"type": "function", "function": {"name": "weather"}},
    "parallel_tool_calls": False,
    "reasoning_effort": "high",
    "stream": True,
    "stream_options": {"include_usage": True},
}

ANTHROPIC_FROM_OPENAI = {
    "model": "claude-mock",
    "max_tokens": 30000,
    "system": "Be brief.\n\nUse metric units.",
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Weather?"},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Oslo"}},
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "weather",
                    "input": {"city": "Bergen"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "-3C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "2C"},
            ],
        },
    ],
    "temperature": 0.2,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u-1"},
    "tools": [{"name": "weather", "description": "", "input_schema": {"type": "object"}}],
    "tool_choice": {"type": "tool", "name": "weather", "disable_parallel_tool_use": True},
    # No "thinking": mid tool loop Anthropic wants a thinking block the history cannot carry.
    "stream": True,
}


def test_an_openai_request_becomes_this_anthropic_request():
    out = chat_to_messages(OPENAI_REQUEST, upstream_model="claude-mock", max_tokens=30000)
    assert out == ANTHROPIC_FROM_OPENAI


def test_the_thinking_budget_stays_under_max_tokens_or_is_left_out():
    body = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "high",
    }
    assert chat_to_messages(body, upstream_model="m", max_tokens=3000)["thinking"] == {
        "type": "enabled",
        "budget_tokens": 2999,
    }
    assert "thinking" not in chat_to_messages(body, upstream_model="m", max_tokens=1000)


@pytest.mark.parametrize("extra", [{"n": 3}, {"logprobs": True}, {"logit_bias": {"50256": -100}}])
def test_what_has_no_anthropic_counterpart_is_refused(extra):
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], **extra}
    with pytest.raises(GatewayError) as refused:
        chat_to_messages(body, upstream_model="m", max_tokens=10)
    assert refused.value.status == 400 and refused.value.param == next(iter(extra))


def test_an_anthropic_message_becomes_this_chat_completion():
    message = {
        "id": "msg_01abc",
        "type": "message",
        "role": "assistant",
        "model": "claude-mock",
        "content": [
            {"type": "thinking", "thinking": "Let me see.", "signature": "s"},
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": [1, 2]}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 10,
            "output_tokens": 20,
            "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 40,
        },
    }
    usage = usage_from_anthropic(message["usage"])
    assert usage == Usage(
        prompt_tokens=80, completion_tokens=20, cached_tokens=30, cache_write_tokens=40
    )

    chat = message_to_chat(message, model="test/claude", usage=usage)

    chat.pop("created")
    assert chat == {
        "id": "chatcmpl-01abc",
        "object": "chat.completion",
        "model": "test/claude",
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "logprobs": None,
                "message": {
                    "role": "assistant",
                    "content": "Calling.",
                    "reasoning_content": "Let me see.",
                    "tool_calls": [
                        {
                            "id": "toolu_9",
                            "type": "function",
                            "function": {"name": "f", "arguments": '{"a":[1,2]}'},
                        }
                    ],
                },
            }
        ],
        "usage": {
            "prompt_tokens": 80,
            "completion_tokens": 20,
            "total_tokens": 100,
            "prompt_tokens_details": {"cached_tokens": 30, "cache_write_tokens": 40},
        },
    }


def test_a_chat_completion_becomes_this_anthropic_message():
    completion = {
        "id": "chatcmpl-xyz",
        "object": "chat.completion",
        "created": 1,
        "model": "echo",
        "choices": [
            {
                "index": 0,
                "finish_reason": "length",
                "message": {
                    "role": "assistant",
                    "content": "Partial",
                    "reasoning_content": "why",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "g", "arguments": '{"k":"v"}'},
                        }
                    ],
                },
            }
        ],
    }
    usage = Usage(prompt_tokens=100, completion_tokens=5, cached_tokens=60)

    assert chat_to_message(completion, model="test/echo", usage=usage) == {
        "id": "msg_xyz",
        "type": "message",
        "role": "assistant",
        "model": "test/echo",
        "content": [
            {"type": "thinking", "thinking": "why", "signature": ""},
            {"type": "text", "text": "Partial"},
            {"type": "tool_use", "id": "call_1", "name": "g", "input": {"k": "v"}},
        ],
        "stop_reason": "max_tokens",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 40,
            "output_tokens": 5,
            "cache_read_input_tokens": 60,
            "cache_creation_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        },
    }


def _events(raw: list[bytes]) -> list[tuple[str, dict]]:
    out = []
    for item in raw:
        for block in item.decode().strip().split("\n\n"):
            name, data = block.split("\n")
            out.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return out


def _block(deltas: int) -> list[str]:
    """The event names of one content block: its start, `deltas` deltas, its stop."""
    return ["content_block_start", *["content_block_delta"] * deltas, "content_block_stop"]


def test_openai_chunks_become_this_anthropic_event_stream():
    translator = ChatChunksToMessageEvents("test/echo")
    chunks = [
        {
            "id": "chatcmpl-1",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}],
        },
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"reasoning_content": "hm"}}]},
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {"content": "Hi"}}]},
        {
            "id": "chatcmpl-1",
            "choices": [
                {
                    "index": 0,
                    "delta": {
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": "call_1",
                                "type": "function",
                                "function": {"name": "f", "arguments": ""},
                            }
                        ]
                    },
                }
            ],
        },
        {
            "id": "chatcmpl-1",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
                }
            ],
        },
        {
            "id": "chatcmpl-1",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
                }
            ],
        },
        {"id": "chatcmpl-1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"id": "chatcmpl-1", "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}},
    ]
    raw = [event for chunk in chunks for event in translator.feed(chunk)]
    assert translator.usage is not None
    raw += translator.finish_events(translator.usage)

    events = _events(raw)

    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        *_block(deltas=2),  # thinking: its text, then its signature
        *_block(deltas=1),  # text
        *_block(deltas=2),  # a tool call: its arguments, in two parts
        "message_delta",
        "message_stop",
    ]
    assert events[0][1]["message"]["id"] == "msg_1"
    assert events[2][1]["content_block"] == {"type": "thinking", "thinking": ""}
    assert events[3][1]["delta"] == {"type": "thinking_delta", "thinking": "hm"}
    assert events[4][1]["delta"] == {"type": "signature_delta", "signature": ""}
    assert events[7][1] == {
        "type": "content_block_delta",
        "index": 1,
        "delta": {"type": "text_delta", "text": "Hi"},
    }
    assert events[9][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "f",
        "input": {},
    }
    partial = "".join(d["delta"]["partial_json"] for n, d in events[10:12])
    assert partial == '{"a":1}'
    assert events[13][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 9,
            "output_tokens": 4,
            "cache_read_input_tokens": 0,
            "cache_creation_input_tokens": 0,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        },
    }


def test_anthropic_events_become_these_openai_chunks():
    translator = MessageEventsToChatChunks("test/claude")
    events = [
        {
            "type": "message_start",
            "message": {
                "id": "msg_7",
                "usage": {
                    "input_tokens": 5,
                    "output_tokens": 1,
                    "cache_read_input_tokens": 2,
                    "cache_creation_input_tokens": 0,
                },
            },
        },
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": ""},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "ok"},
        },
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "signature_delta", "signature": "abc"},
        },
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "ping"},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Yo"}},
        {"type": "content_block_stop", "index": 1},
        {
            "type": "content_block_start",
            "index": 2,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {}},
        },
        {
            "type": "content_block_delta",
            "index": 2,
            "delta": {"type": "input_json_delta", "partial_json": '{"b": 2}'},
        },
        {"type": "content_block_stop", "index": 2},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 12},
        },
        {"type": "message_stop"},
    ]

    deltas = [
        (chunk["choices"][0]["delta"], chunk["choices"][0]["finish_reason"])
        for event in events
        for chunk in translator.feed(event)
    ]

    assert deltas == [
        ({"role": "assistant", "content": ""}, None),
        ({"reasoning_content": "ok"}, None),
        ({"content": "Yo"}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"b": 2}'}}]}, None),
        ({}, "tool_calls"),
    ]
    assert translator.done and translator.id == "chatcmpl-7"
    assert translator.usage == Usage(prompt_tokens=7, completion_tokens=12, cached_tokens=2)
    final = translator.usage_chunk(translator.usage)
    assert final["choices"] == [] and final["usage"]["total_tokens"] == 19
