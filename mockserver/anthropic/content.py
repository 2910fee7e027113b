"""The ``messages`` list checked turn by turn and block by block, with the API's wording.
The same walk counts the prompt's tokens and finds the last user text, since both follow
the blocks being checked; ``signature_of`` is here because a thinking block passed back is
checked against it."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from mockserver.anthropic.errors import invalid
from mockserver.common import words

_BLOCK_TYPES = (
    "text",
    "image",
    "document",
    "search_result",
    "tool_use",
    "tool_result",
    "thinking",
    "redacted_thinking",
    "server_tool_use",
    "web_search_tool_result",
    "container_upload",
)
_IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def signature_of(thinking: str) -> str:
    """Deterministic, so a block passed back can be checked like the API checks it."""
    return base64.b64encode(hashlib.sha256(b"mock-thinking:" + thinking.encode()).digest()).decode()


def _said(blocks: list[dict[str, Any]]) -> str:
    """What the user said: the text blocks (a tool result is not the user speaking, as in
    OpenAI's chat, where it is a message of its own)."""
    return " ".join(b["text"] for b in blocks if b["type"] == "text")


def text_of_blocks(blocks: list[dict[str, Any]]) -> str:
    parts: list[str] = []
    for block in blocks:
        if block["type"] == "text":
            parts.append(block["text"])
        elif block["type"] == "tool_result":
            content = block.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(
                    b["text"]
                    for b in content
                    if isinstance(b, dict)
                    and b.get("type") == "text"
                    and isinstance(b.get("text"), str)
                )
    return " ".join(parts)


def _check_block(block: object, where: str, role: str) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise invalid(f"{where}: Input should be a valid dictionary or object")
    type_ = block.get("type")
    if type_ not in _BLOCK_TYPES:
        tags = ", ".join(f"'{t}'" for t in _BLOCK_TYPES)
        raise invalid(
            f"{where}: Input tag '{type_}' found using 'type' does not match any of the expected tags: {tags}"  # noqa: E501
        )
    if type_ == "text":
        if not isinstance(block.get("text"), str):
            raise invalid(f"{where}.text.text: Field required")
        if not block["text"]:
            raise invalid("messages: text content blocks must be non-empty")
    elif type_ == "image":
        source = block.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        if kind not in ("base64", "url", "file"):
            raise invalid(
                f"{where}.image.source: Input tag '{kind}' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'"  # noqa: E501
            )
        assert isinstance(source, dict)
        if source["type"] == "base64":
            if source.get("media_type") not in _IMAGE_TYPES:
                raise invalid(
                    f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"  # noqa: E501
                )
            if not isinstance(source.get("data"), str):
                raise invalid(f"{where}.image.source.base64.data: Field required")
    elif type_ == "tool_use":
        for key, kind in (("id", str), ("name", str), ("input", dict)):
            if not isinstance(block.get(key), kind):
                raise invalid(f"{where}.tool_use.{key}: Field required")
    elif type_ == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise invalid(f"{where}.tool_result.tool_use_id: Field required")
    elif type_ == "thinking":
        thinking, signature = block.get("thinking"), block.get("signature")
        if not isinstance(thinking, str) or not isinstance(signature, str):
            raise invalid(f"{where}.thinking.signature: Field required")
        if role == "assistant" and signature != signature_of(thinking):
            raise invalid(f"{where}: Invalid `signature` in `thinking` block")
    return block


def check_messages(messages: object) -> tuple[int, str]:
    """Validates ``messages``; returns their token count and the last user text."""
    if messages is None:
        raise invalid("messages: Field required")
    if not isinstance(messages, list):
        raise invalid("messages: Input should be a valid list")
    if not messages:
        raise invalid("messages: at least one message is required")
    tokens, last_user = 0, ""
    prev_role: str | None = None
    pending_tool_ids: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise invalid(f"messages.{i}: Input should be a valid dictionary or object")
        role = msg.get("role")
        if role not in ("user", "assistant"):
            raise invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if prev_role is None and role != "user":
            raise invalid('messages: first message must use the "user" role')
        if role == prev_role:
            raise invalid(
                f'messages: roles must alternate between "user" and "assistant", but found multiple "{role}" roles in a row'  # noqa: E501
            )
        content = msg.get("content")
        if isinstance(content, str):
            blocks = [{"type": "text", "text": content}] if content else []
        elif isinstance(content, list):
            blocks = [
                _check_block(b, f"messages.{i}.content.{j}", role) for j, b in enumerate(content)
            ]
        else:
            raise invalid(f"messages.{i}.content: Input should be a valid string or list")
        if not blocks and not (role == "assistant" and i == len(messages) - 1):
            raise invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"  # noqa: E501
            )
        results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
        for j, block in enumerate(blocks):
            if block["type"] == "tool_result" and block["tool_use_id"] not in pending_tool_ids:
                raise invalid(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {block['tool_use_id']}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."  # noqa: E501
                )
        missing = [tid for tid in pending_tool_ids if tid not in results]
        if missing:
            raise invalid(
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."  # noqa: E501
            )
        pending_tool_ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
        text = content if isinstance(content, str) else text_of_blocks(blocks)
        tokens += words(text) + 3
        said = content if isinstance(content, str) else _said(blocks)
        if role == "user" and said:
            last_user = said
        prev_role = role
    return tokens, last_user
