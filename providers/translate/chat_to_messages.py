"""An OpenAI Chat Completions request → an Anthropic Messages request: `/v1/chat/completions`
on a model served over the Anthropic protocol.

Its fields are mapped, dropped or refused by providers.translate.fields.CHAT_TO_ANTHROPIC.
Prompt-cache marks (`cache_control`) follow providers.translate.cache_control; structured
output (`response_format`), providers.translate.structured_output.
"""

from __future__ import annotations

from typing import Any

from core.errors import bad_request
from providers.translate.anthropic_openai_terms import EFFORT_BUDGET, text_of, tool_input
from providers.translate.cache_control import MARK, marked, system_blocks, tool_message_mark
from providers.translate.fields import CHAT_TO_ANTHROPIC, fields_apply
from providers.translate.structured_output import format_to_anthropic

JSON = dict[str, Any]


def _image_to_anthropic(part: JSON, where: str) -> JSON:
    url = str((part.get("image_url") or {}).get("url", ""))
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_request(f"{where}: an image must be a data: or https: URL.", param=where)


def _content_to_anthropic(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for j, part in enumerate(content or []):
        kind, at = part.get("type"), f"{where}.content[{j}]"
        if kind == "text":
            blocks.append(marked({"type": "text", "text": part.get("text", "")}, part, at))
        elif kind == "image_url":
            blocks.append(marked(_image_to_anthropic(part, at), part, at))
        else:
            raise bad_request(
                f"{where}.content[{j}]: '{kind}' parts cannot be sent to this model's provider.",
                param=f"{where}.content[{j}]",
            )
    return blocks


def _tool_to_anthropic(tool: JSON, structured_outputs: bool) -> JSON:
    function = tool.get("function") or {}
    out = {
        "name": function.get("name", ""),
        "description": function.get("description", ""),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("strict") is True and structured_outputs:
        out["strict"] = True  # Anthropic's strict tool use: inputs held to the schema
    return out


def _append(messages: list[JSON], role: str, blocks: list[JSON]) -> None:
    """Anthropic wants user and assistant turns to alternate: same-role turns merge."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def chat_to_messages(
    body: JSON, *, upstream_model: str, max_tokens: int, structured_outputs: bool = False
) -> JSON:
    """An OpenAI chat completion request → an Anthropic Messages request (`structured_outputs`:
    the model takes a JSON schema for its answer natively)."""
    body = fields_apply(body, CHAT_TO_ANTHROPIC)
    system: list[str] = []
    system_parts: list[tuple[int, Any]] = []  # (index, content): for cache marks
    messages: list[JSON] = []
    for i, message in enumerate(body["messages"]):
        role, where = message["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
            system_parts.append((i, message.get("content")))
        elif role == "user":
            _append(messages, "user", _content_to_anthropic(message.get("content"), where))
        elif role == "assistant":
            blocks = _content_to_anthropic(message.get("content"), where)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": tool_input(function.get("arguments")),
                    }
                )
            _append(messages, "assistant", blocks)
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": text_of(message.get("content")),
            }
            mark = tool_message_mark(message.get("content"), where)
            if mark is not None:
                result[MARK] = mark
            _append(messages, "user", [result])
        else:
            raise bad_request(f"{where}: unknown role '{role}'.", param=f"{where}.role")
    out: JSON = {"model": upstream_model, "messages": messages, "max_tokens": max_tokens}
    marked_system = system_blocks(system_parts)
    if marked_system:
        out["system"] = marked_system
    elif system:
        out["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    user = body.get("user") or body.get("safety_identifier")
    if user:
        out["metadata"] = {"user_id": str(user)}
    if body.get("tools"):
        out["tools"] = [
            marked(_tool_to_anthropic(t, structured_outputs), t, f"tools[{i}]")
            for i, t in enumerate(body["tools"])
        ]
    choice = body.get("tool_choice")
    if choice is not None:
        if choice == "required":
            out["tool_choice"] = {"type": "any"}
        elif isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name", "")
            out["tool_choice"] = {"type": "tool", "name": name}
        else:
            out["tool_choice"] = {"type": choice}
    if body.get("parallel_tool_calls") is False and body.get("tools"):
        out.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
    forced_json = format_to_anthropic(body, out, structured_outputs)
    effort = body.get("reasoning_effort")
    # Mid tool loop, Anthropic wants the assistant's turn to start with its thinking block,
    # which chat history cannot carry back: thinking waits for the next user turn.
    in_tool_loop = (
        bool(messages)
        and messages[-1]["role"] == "user"
        and any(block.get("type") == "tool_result" for block in messages[-1]["content"])
    )
    if effort in EFFORT_BUDGET and not in_tool_loop and not forced_json:
        budget = min(EFFORT_BUDGET[effort], max_tokens - 1)
        if budget >= 1024:  # Anthropic's minimum budget
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if body.get("stream"):
        out["stream"] = True
    return out
