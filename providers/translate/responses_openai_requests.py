"""OpenAI's Responses API → Chat Completions, the request: a Responses request becomes a chat
completion request (served by any provider, through the other translations where needed).

Stored answers (`store`, `previous_response_id`, `item_reference`) are the gateway's
(gateway.endpoints.responses_state): what reaches this translation is the whole input.
Built-in tools (web search, file search, computer use...) are refused: only function tools
can be served by every provider.
"""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import GatewayError, bad_request

JSON = dict[str, Any]


def _content_to_chat(content: Any, where: str) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise bad_request(f"{where}.content must be a string or a list of parts.", param=where)
    parts: list[JSON] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text"):
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image":
            image: JSON = {"url": part.get("image_url", "")}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise bad_request(
                f"{where}.content[{j}]: '{kind}' parts are not supported.", param=where
            )
    if all(p["type"] == "text" for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def _input_to_messages(items: Any) -> list[JSON]:
    if isinstance(items, str):
        return [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise bad_request("'input' must be a string or a non-empty list of items.", param="input")
    messages: list[JSON] = []
    for i, item in enumerate(items):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise bad_request(f"{where} must be an object.", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise bad_request(
                    f"{where}.role must be user, assistant, system or developer.", param=where
                )
            messages.append({"role": role, "content": _content_to_chat(item.get("content"), where)})
        elif kind == "function_call":
            call = {
                "id": item.get("call_id", ""),
                "type": "function",
                "function": {"name": item.get("name", ""), "arguments": item.get("arguments", "")},
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and "tool_calls" in last:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output", "")
            text = output if isinstance(output, str) else orjson.dumps(output).decode()
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id", ""), "content": text}
            )
        elif kind == "reasoning":
            continue  # a previous answer's reasoning: no chat field carries it back
        else:
            raise bad_request(f"{where}: '{kind}' items are not supported.", param=where)
    return messages


def _bad(message: str, param: str) -> GatewayError:
    return bad_request(message, param=param)


def responses_body_parse(raw: bytes) -> JSON:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise _bad("You must provide a model parameter.", "model")
    if not isinstance(body.get("store", True), bool):
        raise _bad("'store' must be a boolean.", "store")
    if "input" not in body:
        raise _bad("You must provide 'input'.", "input")
    if not isinstance(body.get("stream", False), bool):
        raise _bad("'stream' must be a boolean.", "stream")
    limit = body.get("max_output_tokens")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise _bad("'max_output_tokens' must be a positive integer.", "max_output_tokens")
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict) or tool.get("type") != "function":
            kind = tool.get("type") if isinstance(tool, dict) else tool
            raise _bad(
                f"tools[{i}]: '{kind}' tools are not supported; use function tools.", "tools"
            )
    return body


def responses_to_chat(body: JSON) -> JSON:
    """A Responses request → a chat completion request."""
    messages = _input_to_messages(body["input"])
    if body.get("instructions"):
        messages.insert(0, {"role": "system", "content": str(body["instructions"])})
    chat: JSON = {"model": body["model"], "messages": messages}
    if body.get("max_output_tokens"):
        chat["max_tokens"] = body["max_output_tokens"]
    for name in ("temperature", "top_p", "parallel_tool_calls", "user"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("tools"):
        chat["tools"] = [
            {
                "type": "function",
                "function": {
                    key: tool[key]
                    for key in ("name", "description", "parameters", "strict")
                    if key in tool
                },
            }
            for tool in body["tools"]
        ]
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name", "")}}
    elif choice in ("auto", "none", "required"):
        chat["tool_choice"] = choice
    effort = (body.get("reasoning") or {}).get("effort")
    if effort:
        chat["reasoning_effort"] = effort
    fmt = ((body.get("text") or {}).get("format")) or {}
    if fmt.get("type") == "json_schema":
        schema = {k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
    elif fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat
