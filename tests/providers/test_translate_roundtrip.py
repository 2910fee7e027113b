"""Translation between OpenAI Chat Completions and Anthropic Messages, as properties: what
one side says survives a trip to the other and back (hypothesis draws the requests,
answers and usages). The examples in test_translate_anthropic_openai.py show the details;
these show that nothing the two protocols share is lost or changed on the way."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from core.usage import Usage
from providers.protocols.openai import usage_read
from providers.translate.anthropic_openai_answers import chat_to_message, message_to_chat
from providers.translate.anthropic_openai_terms import FINISH_TO_STOP, STOP_TO_FINISH
from providers.translate.anthropic_openai_usage import (
    anthropic_usage,
    openai_usage,
    usage_from_anthropic,
)
from providers.translate.chat_to_messages import chat_to_messages
from providers.translate.messages_to_chat import messages_to_chat

JSON = dict[str, Any]
EXAMPLES = settings(max_examples=150, deadline=None)

text = st.text(min_size=1, max_size=40)
names = st.from_regex(r"[a-z][a-z0-9_]{0,15}", fullmatch=True)
ids = st.from_regex(r"[A-Za-z0-9]{1,12}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=10)
arguments = st.dictionaries(names, scalars | st.lists(scalars, max_size=3), max_size=4)
tokens = st.integers(0, 10**7)


@st.composite
def usages(draw: st.DrawFn) -> Usage:
    """A usage as a provider can report it: cache reads and writes are part of the prompt,
    the hour-long writes part of the writes."""
    cached, written = draw(tokens), draw(tokens)
    return Usage(
        prompt_tokens=cached + written + draw(tokens),
        completion_tokens=draw(tokens),
        cached_tokens=cached,
        cache_write_tokens=written,
        cache_write_1h_tokens=draw(st.integers(0, written)),
    )


@EXAMPLES
@given(usages())
def test_usage_survives_anthropic_and_back(usage: Usage):
    assert usage_from_anthropic(anthropic_usage(usage)) == usage


@EXAMPLES
@given(usages())
def test_usage_survives_openai_and_back_but_for_the_hour_long_writes(usage: Usage):
    # OpenAI's usage has no field for how long a cache write is kept.
    back = usage_read(openai_usage(usage))
    assert back == Usage(
        usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens, usage.cache_write_tokens
    )


tool_uses = st.builds(
    lambda i, name, args: {"type": "tool_use", "id": f"toolu_{i}", "name": name, "input": args},
    ids,
    names,
    arguments,
)


@st.composite
def anthropic_messages(draw: st.DrawFn) -> JSON:
    """A whole Anthropic answer, its blocks in the order a chat completion can keep: its
    thinking, its text, its tool calls."""
    content: list[JSON] = []
    if draw(st.booleans()):
        content.append({"type": "thinking", "thinking": draw(text), "signature": ""})
    if draw(st.booleans()):
        content.append({"type": "text", "text": draw(text)})
    content += draw(st.lists(tool_uses, max_size=3, unique_by=lambda b: b["id"]))
    return {
        "id": "msg_" + draw(ids),
        "type": "message",
        "role": "assistant",
        "content": content,
        # The stop reasons that have an OpenAI finish reason of their own.
        "stop_reason": draw(st.sampled_from(["end_turn", "max_tokens", "tool_use", "refusal"])),
    }


@EXAMPLES
@given(anthropic_messages(), usages())
def test_an_anthropic_answer_survives_a_chat_completion_and_back(message: JSON, usage: Usage):
    chat = message_to_chat(message, model="m", usage=usage)
    back = chat_to_message(chat, model="m", usage=usage_read(chat["usage"]) or Usage())
    assert back["id"] == message["id"]
    assert back["content"] == message["content"]
    assert back["stop_reason"] == message["stop_reason"]
    expected = anthropic_usage(usage)
    expected["cache_creation"] = back["usage"]["cache_creation"]  # the split OpenAI cannot say
    assert back["usage"] == expected


@st.composite
def chat_completions(draw: st.DrawFn) -> JSON:
    calls = draw(st.lists(st.tuples(ids, names, arguments), max_size=3, unique_by=lambda c: c[0]))
    content = draw(st.none() | text) if calls else draw(text)
    message: JSON = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {"id": i, "type": "function", "function": {"name": n, "arguments": _dumps(a)}}
            for i, n, a in calls
        ]
    return {
        "id": "chatcmpl-" + draw(ids),
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": draw(
                    st.sampled_from(sorted(set(FINISH_TO_STOP) - {"function_call"}))
                ),
                "logprobs": None,
            }
        ],
    }


def _dumps(value: Any) -> str:
    import orjson

    return orjson.dumps(value).decode()


@EXAMPLES
@given(chat_completions(), usages())
def test_a_chat_completion_survives_an_anthropic_answer_and_back(chat: JSON, usage: Usage):
    message = chat_to_message(chat, model="m", usage=usage)
    back = message_to_chat(message, model="m", usage=usage)
    assert back["id"] == chat["id"]
    sent, got = chat["choices"][0], back["choices"][0]
    assert got["finish_reason"] == sent["finish_reason"]
    assert got["message"]["content"] == sent["message"]["content"]
    assert got["message"].get("tool_calls") == sent["message"].get("tool_calls")
    assert STOP_TO_FINISH[message["stop_reason"]] == sent["finish_reason"]


@st.composite
def chat_requests(draw: st.DrawFn) -> JSON:
    """A conversation: an optional system prompt, then turns that alternate, the user's
    first and last, with tool calls and their results in between."""
    messages: list[JSON] = []
    if draw(st.booleans()):
        messages.append({"role": "system", "content": draw(text)})
    for turn in range(draw(st.integers(0, 3))):
        messages.append({"role": "user", "content": draw(text)})
        calls = draw(st.lists(st.tuples(names, arguments), max_size=2))
        reply: JSON = {"role": "assistant", "content": draw(text)}
        if calls:
            reply["tool_calls"] = [
                {
                    "id": f"call_{turn}_{k}",
                    "type": "function",
                    "function": {"name": n, "arguments": _dumps(a)},
                }
                for k, (n, a) in enumerate(calls)
            ]
        messages.append(reply)
        for call in reply.get("tool_calls", []):
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": draw(text)})
    messages.append({"role": "user", "content": draw(text)})
    body: JSON = {"model": "m", "messages": messages, "max_tokens": draw(st.integers(1, 10**5))}
    for name, values in (
        ("temperature", st.floats(0, 2)),
        ("top_p", st.floats(0, 1)),
        ("stop", st.lists(text, min_size=1, max_size=4)),
        ("user", ids),
    ):
        if draw(st.booleans()):
            body[name] = draw(values)
    if draw(st.booleans()):
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": draw(names),
                    "description": draw(text),
                    "parameters": {"type": "object", "properties": {}},
                },
            }
        ]
    return body


def _turns(messages: list[JSON]) -> list[tuple[str, str]]:
    """(role, text) per message, a user's text spread over several messages joined."""
    turns: list[tuple[str, str]] = []
    for m in messages:
        content = m.get("content") or ""
        if turns and turns[-1][0] == m["role"] == "user":
            turns[-1] = ("user", turns[-1][1] + content)
        else:
            turns.append((m["role"], content))
    return turns


@EXAMPLES
@given(chat_requests())
def test_a_chat_request_survives_anthropic_messages_and_back(body: JSON):
    upstream = chat_to_messages(body, upstream_model="m", max_tokens=body["max_tokens"])
    back = messages_to_chat(upstream, reasoning=False)
    assert _turns(back["messages"]) == _turns(body["messages"])
    sent_calls = [c for m in body["messages"] for c in m.get("tool_calls", [])]
    got_calls = [c for m in back["messages"] for c in m.get("tool_calls", [])]
    assert got_calls == sent_calls
    results = [(m["tool_call_id"], m["content"]) for m in body["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in back["messages"] if m["role"] == "tool"] == (
        results
    )
    for name in ("temperature", "top_p", "stop", "user", "max_tokens"):
        assert back.get(name) == body.get(name)
    assert back.get("tools") == body.get("tools")
