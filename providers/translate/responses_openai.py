"""OpenAI's Responses API ⇄ Chat Completions: a Responses request becomes a chat completion
request (served by any provider, through the other translations where needed), and the
chat answer or stream becomes a Response object or the Responses stream events.

Stateless: Gatewayz stores no responses, so `previous_response_id` is refused with a 400
that says to send the conversation as `input`; `store` is accepted and has no effect.
Built-in tools (web search, file search, computer use...) are refused: only function tools
can be served by every provider.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

from core.errors import GatewayError, bad_request
from core.usage import Usage

JSON = dict[str, Any]

FINISH_TO_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def _arguments_text(raw: Any) -> str:
    """Tool-call arguments as the JSON text OpenAI's shapes carry (some providers send an
    object)."""
    if raw is None or isinstance(raw, str):
        return raw or ""
    return orjson.dumps(raw).decode()


def _new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(12).hex()}"


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
    if body.get("previous_response_id"):
        raise _bad(
            "Gatewayz does not store responses: send the whole conversation as 'input' "
            "instead of 'previous_response_id'.",
            "previous_response_id",
        )
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


def responses_usage(usage: Usage) -> JSON:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def _response(body: JSON, response_id: str, status: str, output: list[JSON]) -> JSON:
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": False,
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _message_item(text: str, status: str = "completed") -> JSON:
    return {
        "type": "message",
        "id": _new_id("msg"),
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def _finish(response: JSON, finish: str | None, usage: Usage) -> None:
    incomplete = FINISH_TO_INCOMPLETE.get(finish or "")
    response["status"] = "incomplete" if incomplete else "completed"
    if incomplete:
        response["incomplete_details"] = {"reason": incomplete}
    response["usage"] = responses_usage(usage)


def chat_to_response(data: JSON, body: JSON, usage: Usage) -> JSON:
    """A chat completion → a Response object."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[JSON] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(
            {
                "type": "reasoning",
                "id": _new_id("rs"),
                "summary": [{"type": "summary_text", "text": reasoning}],
            }
        )
    if message.get("content"):
        output.append(_message_item(str(message["content"])))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            {
                "type": "function_call",
                "id": _new_id("fc"),
                "call_id": call.get("id", ""),
                "name": function.get("name", ""),
                "arguments": function.get("arguments", ""),
                "status": "completed",
            }
        )
    response = _response(body, _new_id("resp"), "completed", output)
    _finish(response, choice.get("finish_reason"), usage)
    return response


class ChatChunksToResponseEvents:
    """Feeds on chat completion chunks, emits the Responses API's stream events."""

    def __init__(self, body: JSON) -> None:
        self.body = body
        self.response = _response(body, _new_id("resp"), "in_progress", [])
        self.sequence = 0
        self.started = False
        self.text: JSON | None = None  # the open message item
        self.calls: dict[int, JSON] = {}  # chat tool index → its latest function_call item
        self.call_items: list[JSON] = []  # every function_call item, in order
        self.finish: str | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _index(self, item: JSON) -> int:
        return self.response["output"].index(item)

    def _start(self) -> list[bytes]:
        self.started = True
        return [
            self._event("response.created", response=self.response),
            self._event("response.in_progress", response=self.response),
        ]

    def _add(self, item: JSON) -> bytes:
        self.response["output"].append(item)
        return self._event("response.output_item.added", output_index=self._index(item), item=item)

    def feed(self, chunk: JSON) -> list[bytes]:
        out = [] if self.started else self._start()
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self.text is None:
                    self.text = {
                        "type": "message",
                        "id": _new_id("msg"),
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    }
                    out.append(self._add(self.text))
                    part = {"type": "output_text", "text": "", "annotations": []}
                    self.text["content"].append(part)
                    out.append(
                        self._event(
                            "response.content_part.added",
                            item_id=self.text["id"],
                            output_index=self._index(self.text),
                            content_index=0,
                            part=part,
                        )
                    )
                self.text["content"][0]["text"] += text
                out.append(
                    self._event(
                        "response.output_text.delta",
                        item_id=self.text["id"],
                        output_index=self._index(self.text),
                        content_index=0,
                        delta=text,
                        logprobs=[],
                    )
                )
            for call in delta.get("tool_calls") or []:
                index = call.get("index", 0)
                function = call.get("function") or {}
                item = self.calls.get(index)
                # A new call id opens a new call even at a reused index (some providers
                # number parallel calls all 0).
                if item is None or (call.get("id") and call["id"] != item["call_id"]):
                    item = {
                        "type": "function_call",
                        "id": _new_id("fc"),
                        "call_id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "arguments": "",
                        "status": "in_progress",
                    }
                    self.calls[index] = item
                    self.call_items.append(item)
                    out.append(self._add(item))
                arguments = _arguments_text(function.get("arguments"))
                if arguments:
                    item["arguments"] += arguments
                    out.append(
                        self._event(
                            "response.function_call_arguments.delta",
                            item_id=item["id"],
                            output_index=self._index(item),
                            delta=arguments,
                        )
                    )
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def finish_events(self, usage: Usage) -> list[bytes]:
        out = [] if self.started else self._start()
        if self.text is not None:
            index, part = self._index(self.text), self.text["content"][0]
            out.append(
                self._event(
                    "response.output_text.done",
                    item_id=self.text["id"],
                    output_index=index,
                    content_index=0,
                    text=part["text"],
                    logprobs=[],
                )
            )
            out.append(
                self._event(
                    "response.content_part.done",
                    item_id=self.text["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                )
            )
            self.text["status"] = "completed"
            out.append(self._event("response.output_item.done", output_index=index, item=self.text))
        for item in self.call_items:
            index = self._index(item)
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                )
            )
            item["status"] = "completed"
            out.append(self._event("response.output_item.done", output_index=index, item=item))
        _finish(self.response, self.finish, usage)
        kind = (
            "response.completed"
            if self.response["status"] == "completed"
            else ("response.incomplete")
        )
        out.append(self._event(kind, response=self.response))
        return out

    def failed(self, error: GatewayError) -> bytes:
        start = [] if self.started else self._start()  # the SDK wants `created` first
        self.response["status"] = "failed"
        self.response["error"] = {"code": error.code or "server_error", "message": error.message}
        return b"".join([*start, self._event("response.failed", response=self.response)])
