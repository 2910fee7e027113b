"""An Anthropic Messages request → an OpenAI Chat Completions request: `/v1/messages` on a
model served over the OpenAI protocol.

Document blocks have no OpenAI counterpart and are refused with a 400 that names them.
Thinking blocks in the history are dropped (OpenAI-protocol providers have no field for
them). Prompt-cache marks (`cache_control`) follow providers.translate.cache_control.
"""

from __future__ import annotations

from typing import Any

from core.errors import bad_request
from providers.translate.anthropic_openai_terms import EFFORT_BUDGET, text_of, tool_call_from_use
from providers.translate.cache_control import (
    MARK,
    has_marks,
    marked,
    system_to_openai,
    text_parts,
    tool_result_content,
)
from providers.translate.fields import MESSAGES_TO_CHAT, fields_apply
from providers.translate.structured_output import format_to_openai

JSON = dict[str, Any]


def _effort(budget: int) -> str:
    for effort, ceiling in EFFORT_BUDGET.items():
        if budget <= ceiling:
            return effort
    return "high"


def _image_to_openai(block: JSON, where: str) -> JSON:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = source.get("url", "")
    else:
        raise bad_request(f"{where}: unsupported image source.", param=where)
    return {"type": "image_url", "image_url": {"url": url}}


def _user_to_openai(content: Any, where: str, keep: bool) -> list[JSON]:
    """One Anthropic user turn → OpenAI messages (tool results become `tool` messages);
    `keep`: whether cache marks are kept."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    messages: list[JSON] = []
    parts: list[JSON] = []
    for j, block in enumerate(content):
        kind, at = block.get("type"), f"{where}.content[{j}]"
        if kind == "text":
            parts.append(marked({"type": "text", "text": block.get("text", "")}, block, at, keep))
        elif kind == "image":
            parts.append(marked(_image_to_openai(block, at), block, at, keep))
        elif kind == "tool_result":
            result = block.get("content", "")
            text = text_of(result)
            if block.get("is_error"):
                text = f"Error: {text}"
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id", ""),
                    "content": tool_result_content(block, text, at, keep),
                }
            )
        else:
            raise bad_request(
                f"{where}.content[{j}]: '{kind}' blocks cannot be sent to this model's provider.",
                param=f"{where}.content[{j}]",
            )
    if parts:
        if all(p["type"] == "text" for p in parts) and not has_marks(parts):
            messages.append({"role": "user", "content": "".join(p["text"] for p in parts)})
        else:
            messages.append({"role": "user", "content": parts})
    return messages


def _assistant_to_openai(content: Any, where: str, keep: bool) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text: list[str] = []
    calls: list[JSON] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append(tool_call_from_use(block))
        # thinking / redacted_thinking: no OpenAI field carries them back.
    message: JSON = {"role": "assistant", "content": "".join(text) or None}
    if keep and any(MARK in b for b in content if b.get("type") == "text"):
        message["content"] = text_parts(content, where)
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_choice_to_openai(choice: JSON, body: JSON) -> Any:
    kind = choice.get("type")
    if choice.get("disable_parallel_tool_use"):
        body["parallel_tool_calls"] = False
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    return kind or "auto"  # auto | none


def messages_to_chat(
    body: JSON,
    *,
    reasoning: bool,
    cache_control: bool = False,
    extensions: frozenset[str] = frozenset(),
) -> JSON:
    """An Anthropic Messages request → an OpenAI chat completion request, its fields by
    providers.translate.fields.MESSAGES_TO_CHAT.

    `reasoning`: whether the model takes a reasoning effort (else `thinking` is not sent);
    `cache_control`: whether the provider takes cache marks (else they are dropped);
    `extensions`: the fields beyond the chat API the target protocol takes (`top_k`)."""
    body = fields_apply(body, MESSAGES_TO_CHAT, carried=extensions)
    keep = cache_control
    messages: list[JSON] = []
    system = body.get("system")
    if system:
        messages.append(system_to_openai(system, text_of(system), keep))
    for i, message in enumerate(body["messages"]):
        where = f"messages[{i}]"
        if message["role"] == "user":
            messages.extend(_user_to_openai(message.get("content", ""), where, keep))
        else:
            messages.append(_assistant_to_openai(message.get("content", ""), where, keep))
    chat: JSON = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p", "top_k"):  # (top_k only if carried: see above)
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    if body.get("tools"):
        chat["tools"] = [
            marked(
                {
                    "type": "function",
                    "function": {
                        "name": t.get("name", ""),
                        "description": t.get("description", ""),
                        "parameters": t.get("input_schema") or {"type": "object"},
                    },
                },
                t,
                f"tools[{i}]",
                keep,
            )
            for i, t in enumerate(body["tools"])
        ]
    if body.get("tool_choice"):
        chat["tool_choice"] = _tool_choice_to_openai(body["tool_choice"], chat)
    thinking = body.get("thinking") or {}
    effort = (body.get("output_config") or {}).get("effort")
    if reasoning and thinking.get("type") == "enabled":
        chat["reasoning_effort"] = _effort(int(thinking.get("budget_tokens") or 0))
    elif reasoning and effort in ("low", "medium", "high"):
        chat["reasoning_effort"] = effort
    elif reasoning and effort in ("xhigh", "max"):
        chat["reasoning_effort"] = "high"
    response_format = format_to_openai(body)
    if response_format is not None:
        chat["response_format"] = response_format
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat
