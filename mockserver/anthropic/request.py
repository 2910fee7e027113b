"""A request body parsed into ``Request``, its other top-level fields checked on the way
(system, tools and tool_choice, thinking, cache_control marks), so a bad request fails
before any answer is made, as it does at the API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from mockserver.anthropic.content import check_messages, text_of_blocks
from mockserver.anthropic.errors import invalid
from mockserver.common import CHAT_DIRECTIVES, DirectiveError, DirectiveTypes, directive_in, words
from mockserver.prompt_cache import PrefixWalk

_DIRECTIVE_TYPES: DirectiveTypes = {
    **CHAT_DIRECTIVES,
    "cache_creation_tokens": (int,),
    "thinking": (str,),
    "stream_error": (str,),
    "error_after": (int,),
}
_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"


@dataclass
class Request:
    body: dict[str, Any]
    model: str
    max_tokens: int
    prompt_tokens: int
    last_user: str
    stop_sequences: list[str]
    thinking: bool
    tools: list[str]
    tool_choice: str
    forced_tool: str | None
    directive: dict[str, Any] = field(default_factory=dict)
    cache: PrefixWalk | None = None  # the prompt's blocks, when one carries cache_control
    output_schema: dict[str, Any] | None = None  # structured output asked for: its schema
    tool_schemas: dict[str, Any] = field(default_factory=dict)  # tool name: input_schema


# Models that answer in a JSON schema (`output_config.format`): Claude Sonnet 4.5, Opus 4.1
# and later. Older ones (Claude 3.x, Sonnet 4, Opus 4) refuse it; the mock's own test models
# take it unless named as legacy.
_NO_STRUCTURED_OUTPUT = ("claude-3", "claude-sonnet-4-2", "claude-opus-4-2", "legacy")


def _check_output(body: dict[str, Any], model: str) -> dict[str, Any] | None:
    """The schema of the structured output asked for, in `output_config.format` or in the
    older `output_format` (the structured-outputs beta); None if none is."""
    config = body.get("output_config")
    if config is not None and not isinstance(config, dict):
        raise invalid("output_config: Input should be a valid dictionary")
    effort = (config or {}).get("effort")
    if effort is not None and effort not in ("low", "medium", "high", "xhigh", "max"):
        raise invalid(
            "output_config.effort: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'"
        )
    fmt, where = (config or {}).get("format"), "output_config.format"
    if body.get("output_format") is not None:
        if fmt is not None:
            raise invalid("Use either `output_format` or `output_config.format`, not both.")
        fmt, where = body["output_format"], "output_format"
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise invalid(f"{where}.type: Input should be 'json_schema'")
    schema = fmt.get("schema")
    if not isinstance(schema, dict):
        raise invalid(f"{where}.schema: Field required")
    if any(marker in model for marker in _NO_STRUCTURED_OUTPUT):
        raise invalid(f"'{model}' does not support output format.")
    return schema


def _system_text(system: object) -> str | None:
    if system is None:
        return None
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        parts = []
        for i, block in enumerate(system):
            if (
                not isinstance(block, dict)
                or block.get("type") != "text"
                or not isinstance(block.get("text"), str)
            ):
                raise invalid(f"system.{i}: Input should be a valid text block")
            parts.append(block["text"])
        return " ".join(parts)
    raise invalid("system: Input should be a valid string or list")


def _check_tools(body: dict[str, Any], thinking: bool) -> tuple[list[str], str, str | None]:
    """Returns the tool names, the tool_choice type and the tool a choice forces."""
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise invalid("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise invalid(f"tools.{i}.custom.name: Field required")
            # Server tools (web_search_…, bash_…) have a versioned type and no schema.
            if tool.get("type", "custom") == "custom" and not isinstance(
                tool.get("input_schema"), dict
            ):
                raise invalid(f"tools.{i}.custom.input_schema: Field required")
            names.append(tool["name"])
        if len(set(names)) != len(names):
            raise invalid("tools: Tool names must be unique.")
    choice = body.get("tool_choice")
    if choice is None:
        return names, "auto", None
    type_ = choice.get("type") if isinstance(choice, dict) else None
    if type_ not in ("auto", "any", "tool", "none"):
        raise invalid(
            f"tool_choice: Input tag '{type_}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"  # noqa: E501
        )
    if type_ != "none" and not names:
        raise invalid("tool_choice: tool_choice may only be specified while providing tools.")
    forced = None
    if type_ == "tool":
        forced = choice.get("name")
        if not isinstance(forced, str):
            raise invalid("tool_choice.tool.name: Field required")
        if forced not in names:
            raise invalid(f"tool_choice.tool.name: Tool '{forced}' not found in tools")
    elif type_ == "any":
        forced = names[0]
    if thinking and forced is not None:
        raise invalid("Thinking may not be enabled when tool_choice forces tool use.")
    return names, type_, forced


def _check_thinking(body: dict[str, Any], max_tokens: int | None) -> bool:
    thinking = body.get("thinking")
    if thinking is None:
        return False
    type_ = thinking.get("type") if isinstance(thinking, dict) else None
    if type_ == "disabled":
        return False
    if type_ == "adaptive":
        return True
    if type_ != "enabled":
        raise invalid(
            f"thinking: Input tag '{type_}' found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"  # noqa: E501
        )
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise invalid("thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise invalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if max_tokens is not None and budget >= max_tokens:
        raise invalid(
            f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at {_THINKING_DOCS}"  # noqa: E501
        )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise invalid("`temperature` may only be set to 1 when thinking is enabled.")
    return True


_MAX_MARKS = 4


def _check_mark(block: dict[str, Any], where: str) -> None:
    mark = block.get("cache_control")
    if mark is None:
        return
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
        raise invalid(f"{where}.cache_control.ephemeral.type: Input should be 'ephemeral'")
    if mark.get("ttl", "5m") not in ("5m", "1h"):
        raise invalid(f"{where}.cache_control.ephemeral.ttl: Input should be '5m' or '1h'")


def _cache_walk(body: dict[str, Any], model: str) -> PrefixWalk | None:
    """The prompt's blocks in the API's order (tools, system, messages), each with its tokens
    under the counting rule of the package docstring; None when no block is marked."""
    walk = PrefixWalk(model)

    def block(item: dict[str, Any], tokens: int, where: str) -> None:
        _check_mark(item, where)
        walk.block(item, tokens)

    for i, tool in enumerate(body.get("tools") or []):
        block(tool, 0, f"tools.{i}")
    system = body.get("system")
    if isinstance(system, str):
        walk.block({"type": "text", "text": system}, words(system) + 3)
    elif isinstance(system, list):
        walk.overhead("system", 3)
        for i, item in enumerate(system):
            block(item, words(item["text"]), f"system.{i}")
    for i, message in enumerate(body["messages"]):
        walk.overhead(message["role"], 3)
        content = message.get("content")
        if isinstance(content, str):
            walk.block({"type": "text", "text": content}, words(content))
            continue
        for j, item in enumerate(content):
            block(item, words(text_of_blocks([item])), f"messages.{i}.content.{j}")
    if walk.marks > _MAX_MARKS:
        raise invalid(
            f"A maximum of {_MAX_MARKS} blocks with cache_control may be provided. "
            f"Found {walk.marks}."
        )
    return walk if walk.marks else None


def parse_request(raw: bytes, count_only: bool = False) -> Request:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid(f"There was an error parsing the body: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("Input should be a valid dictionary or object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not count_only:
        if max_tokens is None:
            raise invalid("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise invalid("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            raise invalid("max_tokens: Input should be greater than or equal to 1")
    prompt_tokens, last_user = check_messages(body.get("messages"))
    system = _system_text(body.get("system"))
    if system is not None:
        prompt_tokens += words(system) + 3
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise invalid("stop_sequences: Input should be a valid list of strings")
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 1
    ):
        raise invalid("temperature: Input should be less than or equal to 1")
    thinking = _check_thinking(body, None if count_only else max_tokens)
    tools, choice, forced = _check_tools(body, thinking)
    output_schema = _check_output(body, model)
    try:
        directive = directive_in(last_user, _DIRECTIVE_TYPES)
    except DirectiveError as exc:
        raise invalid(str(exc)) from None
    return Request(
        body=body,
        model=model,
        max_tokens=max_tokens if isinstance(max_tokens, int) else 0,
        prompt_tokens=prompt_tokens,
        last_user=last_user,
        stop_sequences=stops,
        thinking=thinking or "thinking" in directive,
        tools=tools,
        tool_choice=choice,
        forced_tool=forced,
        directive=directive,
        cache=_cache_walk(body, model) if b'"cache_control"' in raw else None,
        output_schema=output_schema,
        tool_schemas={
            t["name"]: t.get("input_schema") for t in body.get("tools") or [] if "name" in t
        },
    )
