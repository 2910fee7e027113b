"""Validation of an Anthropic Messages request, as Anthropic's API validates it: a request it
would refuse gets the same 400 here, before any credit is held or provider called."""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import bad_request
from gateway.endpoints.validation import TOOLS_PROMPT_TOKENS, URL_IMAGE_TOKENS

BLOCK_TYPES = {
    "text",
    "image",
    "document",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "search_result",
}
TOOL_CHOICES = {"auto", "any", "tool", "none"}


def _number(body: dict[str, Any], name: str, low: float, high: float | None) -> None:
    value = body.get(name)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad_request(f"{name}: Input should be a valid number", param=name)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise bad_request(f"{name}: must be {bound}", param=name)


# Betas passed on to Anthropic-protocol providers: ones that change no price. (Others, like
# the 1M-token context at a higher price, would be billed at the wrong price.)
FORWARDED_BETAS = frozenset(
    {
        "interleaved-thinking-2025-05-14",
        "fine-grained-tool-streaming-2025-05-14",
        "token-efficient-tools-2025-02-19",
    }
)


def _content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise bad_request(f"{where}.content: Input should be a valid list or string", param=where)
    for j, block in enumerate(content):
        at = f"{where}.content.{j}"
        if not isinstance(block, dict) or block.get("type") not in BLOCK_TYPES:
            raise bad_request(f"{at}: Input tag does not match any of the expected tags", param=at)
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise bad_request(f"{at}.text: Field required", param=at)
        if block["type"] == "tool_result" and not isinstance(block.get("tool_use_id"), str):
            raise bad_request(f"{at}.tool_use_id: Field required", param=at)
        source = block.get("source") or {}
        if block["type"] == "document" and source.get("type") not in ("base64", "text", "content"):
            # A document by URL or file id may be any size: its cost cannot be held.
            raise bad_request(f"{at}: send documents inline (base64 or text).", param=at)


def messages_body_parse(raw: bytes, *, counting: bool = False) -> dict[str, Any]:
    """The validated body; `counting`: for count_tokens, which takes no max_tokens."""
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("There was an error parsing the body: invalid JSON.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise bad_request("model: Field required", param="model")
    max_tokens = body.get("max_tokens")
    if counting and max_tokens is None:
        max_tokens = 1 << 30  # nothing will be generated: any thinking budget fits
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int):
        raise bad_request("max_tokens: Field required", param="max_tokens")
    if max_tokens < 1:
        raise bad_request("max_tokens: must be greater than or equal to 1", param="max_tokens")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("messages: at least one message is required", param="messages")
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise bad_request(
                f"{where}.role: Input should be 'user' or 'assistant'", param=f"{where}.role"
            )
        _content(message.get("content"), where)
    system = body.get("system")
    system_ok = (
        system is None
        or isinstance(system, str)
        or (
            isinstance(system, list)
            and all(isinstance(b, dict) and b.get("type") == "text" for b in system)
        )
    )
    if not system_ok:
        raise bad_request("system: Input should be a valid string or list of text blocks")
    if not isinstance(body.get("stream", False), bool):
        raise bad_request("stream: Input should be a valid boolean", param="stream")
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    _number(body, "top_k", 0, None)
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) for s in stops)
    ):
        raise bad_request("stop_sequences: Input should be a valid list of strings")
    tools = body.get("tools")
    tools_ok = tools is None or (
        isinstance(tools, list)
        and all(isinstance(t, dict) and isinstance(t.get("name"), str) for t in tools)
    )
    if not tools_ok:
        raise bad_request("tools: each tool needs a name", param="tools")
    for i, tool in enumerate(tools or []):
        if tool.get("type") not in (None, "custom"):
            # Server tools (web search, code execution...) are billed per use by the
            # provider, at prices the catalog does not carry.
            raise bad_request(
                f"tools.{i}: server tools ('{tool['type']}') are not supported; use client tools.",
                param="tools",
            )
    if body.get("mcp_servers"):
        raise bad_request("mcp_servers: not supported.", param="mcp_servers")
    choice = body.get("tool_choice")
    if choice is not None:
        if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES:
            raise bad_request(
                "tool_choice: Input tag does not match any of the expected tags: "
                "'auto', 'any', 'tool', 'none'",
                param="tool_choice",
            )
        if choice["type"] == "tool" and not isinstance(choice.get("name"), str):
            raise bad_request("tool_choice.name: Field required", param="tool_choice")
    thinking = body.get("thinking")
    if thinking is not None:
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
            raise bad_request("thinking: type must be 'enabled' or 'disabled'", param="thinking")
        if thinking["type"] == "enabled":
            budget = thinking.get("budget_tokens")
            if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1024:
                raise bad_request(
                    "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024",
                    param="thinking",
                )
            if budget >= max_tokens:
                raise bad_request(
                    "`max_tokens` must be greater than `thinking.budget_tokens`",
                    param="max_tokens",
                )
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise bad_request("metadata: Input should be a valid dictionary", param="metadata")
    return body


def messages_referenced_tokens(body: dict[str, Any]) -> int:
    images = 0
    for message in body["messages"]:
        content = message.get("content")
        for block in content if isinstance(content, list) else []:
            if block.get("type") == "image" and (block.get("source") or {}).get("type") == "url":
                images += 1
    return images * URL_IMAGE_TOKENS + (TOOLS_PROMPT_TOKENS if body.get("tools") else 0)
