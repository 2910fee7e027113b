"""Prompt-cache marks (`cache_control`) across the Anthropic ⇄ OpenAI translation.

Anthropic marks the end of a cacheable prompt prefix with `cache_control` on a tool, a system
block or a message's content block. OpenAI's chat has no such field, but OpenRouter (and
other OpenAI-compatible providers that cache explicitly) take the same object on content
parts and tool definitions, so:

- Anthropic → OpenAI provider: a mark is kept on the content part (or tool) its block becomes,
  when the deployment declares `cache_control` (providers/catalog); otherwise marks are
  dropped and the request is shaped as if there were none. A `tool_use` block has no part of
  its own in OpenAI's chat: its mark is dropped.
- OpenAI content parts (and tools) with a mark → Anthropic: the mark goes on the block the part
  becomes; a tool message's mark goes on its `tool_result` block.
- OpenAI → OpenAI provider that does not declare it: marks are taken off (`marks_strip`;
  also a message-level mark, LiteLLM's form), since some such providers refuse a content
  part with an unknown field, and a mark never changes what the answer says.

The mark itself (`{"type": "ephemeral", "ttl": "1h"}`) is passed on as the client wrote it: the
provider checks it. What comes back is the provider's cache usage (billing.pricing prices it).
"""

from __future__ import annotations

from typing import Any

from core.errors import bad_request

JSON = dict[str, Any]
MARK = "cache_control"


def mark_of(item: JSON, where: str) -> JSON | None:
    """`item`'s mark, if it has one (it must be an object)."""
    mark = item.get(MARK)
    if mark is None:
        return None
    if not isinstance(mark, dict):
        param = f"{where}.cache_control"
        raise bad_request(f"{param}: must be an object.", param=param)
    return mark


def marked(out: JSON, source: JSON, where: str, keep: bool = True) -> JSON:
    """`out` (what `source` was translated to) with `source`'s mark, when marks are kept."""
    if keep:
        mark = mark_of(source, where)
        if mark is not None:
            out[MARK] = mark
    return out


def has_marks(parts: list[JSON]) -> bool:
    return any(MARK in part for part in parts)


# --- Anthropic → OpenAI -----------------------------------------------------------------


def system_to_openai(system: Any, text: str, keep: bool) -> JSON:
    """The system prompt as an OpenAI system message: its text (`text`), or, when a block
    carries a mark that is kept, one text part per block, marks included."""
    if keep and isinstance(system, list) and any(MARK in b for b in system if isinstance(b, dict)):
        parts = [
            marked({"type": "text", "text": b.get("text", "")}, b, f"system[{i}]")
            for i, b in enumerate(system)
            if isinstance(b, dict)
        ]
        return {"role": "system", "content": parts}
    return {"role": "system", "content": text}


def tool_result_content(block: JSON, text: str, where: str, keep: bool) -> Any:
    """A `tool_result`'s content for its `tool` message: the text, or a marked text part
    when the block (or the last marked block inside it) carries a mark that is kept."""
    if not keep:
        return text
    mark = mark_of(block, where)
    inner = block.get("content")
    if mark is None and isinstance(inner, list):
        for k, item in enumerate(inner):
            if isinstance(item, dict):
                mark = mark_of(item, f"{where}.content[{k}]") or mark
    if mark is None:
        return text
    return [{"type": "text", "text": text, MARK: mark}]


def text_parts(blocks: list[JSON], where: str) -> list[JSON]:
    """An assistant turn's text blocks as OpenAI text parts, marks kept."""
    return [
        marked({"type": "text", "text": b.get("text", "")}, b, f"{where}.content[{j}]")
        for j, b in enumerate(blocks)
        if b.get("type") == "text"
    ]


# --- OpenAI → Anthropic -----------------------------------------------------------------


def system_blocks(messages: list[tuple[int, Any]]) -> list[JSON] | None:
    """The system and developer messages (index, content) as Anthropic system blocks, when a
    part of theirs carries a mark; None when none does (the system prompt stays a string)."""
    if not any(isinstance(c, list) and has_marks(c) for _, c in messages):
        return None
    blocks: list[JSON] = []
    for i, content in messages:
        if isinstance(content, str):
            if content:
                blocks.append({"type": "text", "text": content})
            continue
        for j, part in enumerate(content or []):
            if part.get("type") == "text" and part.get("text"):
                at = f"messages[{i}].content[{j}]"
                blocks.append(marked({"type": "text", "text": part["text"]}, part, at))
    return blocks


def tool_message_mark(content: Any, where: str) -> JSON | None:
    """The mark of a tool message's parts (the last one marked), for its `tool_result`."""
    mark = None
    if isinstance(content, list):
        for j, part in enumerate(content):
            if isinstance(part, dict):
                mark = mark_of(part, f"{where}.content[{j}]") or mark
    return mark


# --- OpenAI → OpenAI provider that takes no marks ---------------------------------------


def marks_strip(body: JSON) -> JSON:
    """`body` without marks on its messages, their parts and its tools (a copy when it had
    any). Cheap when there are none: the OpenAI → OpenAI path runs it on every request."""
    messages = body.get("messages")
    tools = body.get("tools")
    if not isinstance(messages, list):
        messages = []
    if not isinstance(tools, list):
        tools = []
    marked_messages = any(_has_mark(m) for m in messages)
    marked_tools = any(isinstance(t, dict) and MARK in t for t in tools)
    if not (marked_messages or marked_tools):
        return body
    out = dict(body)
    if marked_messages:
        out["messages"] = [_message_unmarked(m) for m in messages]
    if marked_tools:
        out["tools"] = [_unmarked(t) if isinstance(t, dict) else t for t in tools]
    return out


def _has_mark(message: Any) -> bool:
    if not isinstance(message, dict):
        return False
    content = message.get("content")
    return MARK in message or (
        isinstance(content, list) and any(isinstance(p, dict) and MARK in p for p in content)
    )


def _unmarked(item: JSON) -> JSON:
    return {k: v for k, v in item.items() if k != MARK} if MARK in item else item


def _message_unmarked(message: Any) -> Any:
    if not isinstance(message, dict):
        return message
    message = _unmarked(message)
    if isinstance(message.get("content"), list):
        parts = [_unmarked(p) if isinstance(p, dict) else p for p in message["content"]]
        message = {**message, "content": parts}
    return message
