"""The declared field tables (providers.translate.fields), as properties: whatever a client
sends, a translated request carries only fields its target protocol speaks, and every
field it sent is mapped, dropped by a rule (and then named), or refused with a 400 that
names it. Hypothesis draws the requests from each API's own field list (the official
SDKs' request types, Gemini's from the mock built on its reference) and from names no API
knows."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_type_hints

import anthropic.types.message_create_params as anthropic_params
import openai.types.chat.completion_create_params as openai_params
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import GatewayError
from mockserver.gemini.schema import CONFIG_FIELDS, REQUEST_FIELDS
from providers.translate.chat_to_messages import chat_to_messages
from providers.translate.fields import (
    CHAT_TO_ANTHROPIC,
    CHAT_TO_GEMINI,
    MAP,
    MESSAGES_TO_CHAT,
    REFUSE,
    Table,
    fields_dropped,
)
from providers.translate.gemini_openai import chat_to_gemini
from providers.translate.messages_to_chat import messages_to_chat

JSON = dict[str, Any]
EXAMPLES = settings(max_examples=200, deadline=None)

OPENAI_CHAT = frozenset(get_type_hints(openai_params.CompletionCreateParamsBase)) | {"stream"}
# Anthropic's SDK no longer lists the sampling fields its API still takes for older models.
ANTHROPIC = frozenset(get_type_hints(anthropic_params.MessageCreateParamsBase)) | {
    "stream",
    "temperature",
    "top_p",
    "top_k",
}

USER = [{"role": "user", "content": "hello"}]
SCHEMA = {"type": "object", "properties": {"a": {"type": "string"}}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": SCHEMA}}
# A value each field may take (the translators' own examples test the values at length).
CHAT_VALUES: JSON = {
    "max_tokens": 100,
    "max_completion_tokens": 100,
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "stop": ["END"],
    "user": "u-1",
    "safety_identifier": "s-1",
    "tools": [TOOL],
    "tool_choice": "auto",
    "parallel_tool_calls": False,
    "reasoning_effort": "low",
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": SCHEMA}},
    "stream": True,
    "stream_options": {"include_usage": True},
    "n": 2,
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"1": 1},
    "modalities": ["text", "audio"],
    "audio": {"voice": "alloy", "format": "mp3"},
    "web_search_options": {},
    "functions": [{"name": "f"}],
    "function_call": "auto",
    "seed": 7,
    "frequency_penalty": 0.5,
    "presence_penalty": 0.5,
    "store": True,
    "metadata": {"k": "v"},
    "service_tier": "auto",
    "prediction": {"type": "content", "content": "x"},
    "prompt_cache_key": "k",
    "prompt_cache_retention": "24h",
    "prompt_cache_options": {"mode": "auto"},
    "verbosity": "low",
    "moderation": {"mode": "on"},
}
MESSAGES_VALUES: JSON = {
    "system": "be brief",
    "temperature": 0.5,
    "top_p": 0.9,
    "top_k": 40,
    "stop_sequences": ["END"],
    "metadata": {"user_id": "u-1"},
    "tools": [{"name": "f", "input_schema": SCHEMA}],
    "tool_choice": {"type": "auto"},
    "thinking": {"type": "enabled", "budget_tokens": 2000},
    "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}, "effort": "low"},
    "output_format": {"type": "json_schema", "schema": SCHEMA},
    "stream": True,
    "service_tier": "auto",
    "cache_control": {"type": "ephemeral"},
    "speed": "fast",
    "inference_geo": "us",
    "diagnostics": {},
    "container": "c",
    "mcp_servers": [{"type": "url", "url": "https://x", "name": "x"}],
    "context_management": {"edits": []},
    "user_profile_id": "p-1",
    "workspace_id": "w-1",
}
unknown = st.from_regex(r"x_[a-z]{1,12}", fullmatch=True)
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=8)


def _requests(values: JSON, base: JSON) -> st.SearchStrategy[JSON]:
    known = st.lists(st.sampled_from(sorted(values)), unique=True, max_size=len(values))
    extra = st.dictionaries(unknown, scalars, max_size=3)
    return st.builds(
        lambda names, more: {**base, **{n: values[n] for n in names}, **more}, known, extra
    )


def _accounted(body: JSON, table: Table, dropped: list[str]) -> None:
    """Every field is mapped or named as dropped; none is dropped without a rule."""
    for name, value in body.items():
        rule = table.get(name)
        if rule is not None and rule.kind != MAP and not rule.applies(value):
            continue  # set to nothing (false, empty): nothing to carry
        assert (rule is not None and rule.kind == MAP) or name in dropped, name
    assert set(dropped) <= set(body)


def _translate(body: JSON, table: Table, translate: Any, carried: frozenset[str] = frozenset()):
    """The upstream body and the fields dropped, or the 400 a refused field gets."""
    refusing = [
        name
        for name, value in body.items()
        if (rule := table.get(name)) is not None and rule.kind == REFUSE and rule.applies(value)
    ]
    if refusing:
        with pytest.raises(GatewayError) as refused:
            translate(body)
        assert refused.value.status == 400 and refused.value.param == refusing[0]
        return None, []
    return translate(body), fields_dropped(body, table, carried=carried)


@EXAMPLES
@given(_requests(CHAT_VALUES, {"model": "m", "messages": USER}))
def test_chat_to_anthropic_sends_only_what_anthropic_speaks(body: JSON):
    upstream, dropped = _translate(
        body,
        CHAT_TO_ANTHROPIC,
        lambda b: chat_to_messages(b, upstream_model="m", max_tokens=4000),
    )
    if upstream is not None:
        assert set(upstream) <= ANTHROPIC, set(upstream) - ANTHROPIC
        _accounted(body, CHAT_TO_ANTHROPIC, dropped)


@EXAMPLES
@given(_requests(CHAT_VALUES, {"model": "m", "messages": USER}))
def test_chat_to_gemini_sends_only_what_gemini_speaks(body: JSON):
    upstream, dropped = _translate(
        body, CHAT_TO_GEMINI, lambda b: chat_to_gemini(b, max_tokens=b.get("max_tokens"))
    )
    if upstream is not None:
        assert set(upstream) <= REQUEST_FIELDS
        assert set(upstream.get("generationConfig", {})) <= CONFIG_FIELDS
        _accounted(body, CHAT_TO_GEMINI, dropped)


@EXAMPLES
@given(_requests(MESSAGES_VALUES, {"model": "m", "messages": USER, "max_tokens": 4000}))
def test_messages_to_chat_sends_only_what_the_chat_api_speaks(body: JSON):
    upstream, dropped = _translate(
        body, MESSAGES_TO_CHAT, lambda b: messages_to_chat(b, reasoning=True)
    )
    if upstream is not None:
        assert set(upstream) <= OPENAI_CHAT, set(upstream) - OPENAI_CHAT
        _accounted(body, MESSAGES_TO_CHAT, dropped)


def test_the_tables_cover_every_field_of_the_apis_they_read():
    """A field an API adds is a decision to make here, not a silent drop: the tables list
    every field the official SDKs send."""
    assert OPENAI_CHAT - {"messages", "model"} <= set(CHAT_TO_ANTHROPIC)
    assert OPENAI_CHAT - {"messages", "model"} <= set(CHAT_TO_GEMINI)
    assert set(MESSAGES_TO_CHAT) >= ANTHROPIC, ANTHROPIC - set(MESSAGES_TO_CHAT)


def table_markdown(table: Table) -> str:
    """A table as docs/protocols.md shows it: field, what becomes of it, why."""
    rows = ["| field | rule | how, or why |", "|---|---|---|"]
    for name, rule in sorted(table.items()):
        rows.append(f"| `{name}` | {rule.kind} | {rule.why} |")
    return "\n".join(rows)


@pytest.mark.parametrize("table", [CHAT_TO_ANTHROPIC, CHAT_TO_GEMINI, MESSAGES_TO_CHAT])
def test_docs_show_each_table_as_declared(table: Table):
    docs = (Path(__file__).resolve().parents[2] / "docs" / "protocols.md").read_text()
    assert table_markdown(table) in docs, "regenerate with table_markdown (this module)"
