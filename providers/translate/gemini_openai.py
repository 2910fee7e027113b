"""OpenAI Chat Completions → Google Gemini (`generateContent`), and Gemini's answers and
streams back to OpenAI's shapes. Anthropic clients reach Gemini through OpenAI's shapes
(messages_to_chat), so this is the only Gemini translation.

Gemini's safety blocks: a blocked prompt (`promptFeedback.blockReason`, no candidates) is a
400 error naming the reason; a blocked answer is `finish_reason: content_filter`, as OpenAI
reports its own filter. Usage: `promptTokenCount` includes the cached part
(`cachedContentTokenCount`); thoughts are output tokens (billed as such).
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

from core.errors import GatewayError, bad_request
from core.usage import Usage
from providers.translate.anthropic_openai_terms import EFFORT_BUDGET, text_of
from providers.translate.anthropic_openai_usage import openai_usage
from providers.translate.fields import CHAT_TO_GEMINI, fields_apply

JSON = dict[str, Any]

FINISH = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}


def _parts(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[JSON] = []
    for j, part in enumerate(content or []):
        kind = part.get("type")
        if kind == "text":
            parts.append({"text": part.get("text", "")})
        elif kind == "image_url":
            url = str((part.get("image_url") or {}).get("url", ""))
            if url.startswith("data:"):
                header, _, data = url.partition(",")
                mime = header[5:].split(";")[0] or "image/png"
                parts.append({"inlineData": {"mimeType": mime, "data": data}})
            else:
                parts.append({"fileData": {"fileUri": url}})
        else:
            raise bad_request(
                f"{where}.content[{j}]: '{kind}' parts cannot be sent to this model's provider.",
                param=f"{where}.content[{j}]",
            )
    return parts


def _append(contents: list[JSON], role: str, parts: list[JSON]) -> None:
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    elif parts:
        contents.append({"role": role, "parts": parts})


def _arguments(raw: Any) -> Any:
    try:
        return orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}


def chat_to_gemini(body: JSON, *, max_tokens: int | None) -> JSON:
    """An OpenAI chat completion request → a Gemini GenerateContentRequest (its fields by
    providers.translate.fields.CHAT_TO_GEMINI)."""
    body = fields_apply(body, CHAT_TO_GEMINI)
    system: list[str] = []
    contents: list[JSON] = []
    call_names: dict[str, str] = {}  # tool_call_id → function name (Gemini answers by name)
    for i, message in enumerate(body["messages"]):
        role, where = message["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
        elif role == "user":
            _append(contents, "user", _parts(message.get("content"), where))
        elif role == "assistant":
            parts = _parts(message.get("content"), where)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                call_names[call.get("id", "")] = function.get("name", "")
                parts.append(
                    {
                        "functionCall": {
                            "name": function.get("name", ""),
                            "args": _arguments(function.get("arguments")),
                        }
                    }
                )
            _append(contents, "model", parts)
        elif role == "tool":
            name = call_names.get(message.get("tool_call_id", ""), "")
            response = {"name": name, "response": {"content": text_of(message.get("content"))}}
            _append(contents, "user", [{"functionResponse": response}])
        else:
            raise bad_request(f"{where}: unknown role '{role}'.", param=f"{where}.role")
    out: JSON = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config: JSON = {}
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    for ours, theirs in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if int(body.get("n") or 1) > 1:
        config["candidateCount"] = int(body["n"])
    response_format = body.get("response_format") or {}
    if response_format.get("type") == "json_object":
        config["responseMimeType"] = "application/json"
    elif response_format.get("type") == "json_schema":
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = (response_format.get("json_schema") or {}).get("schema")
    effort = body.get("reasoning_effort")
    if effort in EFFORT_BUDGET:
        config["thinkingConfig"] = {
            "thinkingBudget": EFFORT_BUDGET[effort],
            "includeThoughts": True,
        }
    if config:
        out["generationConfig"] = config
    if body.get("tools"):
        out["tools"] = [
            {
                "functionDeclarations": [
                    {
                        "name": (t.get("function") or {}).get("name", ""),
                        "description": (t.get("function") or {}).get("description", ""),
                        "parameters": (t.get("function") or {}).get("parameters")
                        or {"type": "object", "properties": {}},
                    }
                    for t in body["tools"]
                ]
            }
        ]
    choice = body.get("tool_choice")
    if choice is not None:
        calling: JSON
        if isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name", "")
            calling = {"mode": "ANY", "allowedFunctionNames": [name]}
        else:
            calling = {"mode": {"required": "ANY", "none": "NONE"}.get(choice, "AUTO")}
        out["toolConfig"] = {"functionCallingConfig": calling}
    return out


def gemini_usage(metadata: Any) -> Usage | None:
    if not isinstance(metadata, dict) or "promptTokenCount" not in metadata:
        return None
    return Usage(
        prompt_tokens=int(metadata.get("promptTokenCount") or 0),
        completion_tokens=int(metadata.get("candidatesTokenCount") or 0)
        + int(metadata.get("thoughtsTokenCount") or 0),
        cached_tokens=int(metadata.get("cachedContentTokenCount") or 0),
    )


def blocked_prompt(data: JSON) -> GatewayError | None:
    reason = (data.get("promptFeedback") or {}).get("blockReason")
    if reason and not data.get("candidates"):
        return GatewayError(
            400,
            f"The provider's safety filter blocked this prompt ({reason}).",
            code="content_filtered",
        )
    return None


def _call_id() -> str:
    return "call_" + os.urandom(12).hex()


def _choice_parts(candidate: JSON) -> tuple[str, str, list[JSON]]:
    text: list[str] = []
    thoughts: list[str] = []
    calls: list[JSON] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if "functionCall" in part:
            call = part["functionCall"]
            calls.append(
                {
                    "id": _call_id(),
                    "type": "function",
                    "function": {
                        "name": call.get("name", ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
        elif part.get("thought"):
            thoughts.append(part.get("text", ""))
        elif "text" in part:
            text.append(part["text"])
    return "".join(text), "".join(thoughts), calls


def _finish(candidate: JSON, calls: bool) -> str | None:
    reason = candidate.get("finishReason")
    if reason is None:
        return None
    finish = FINISH.get(reason, "stop")
    return "tool_calls" if calls and finish == "stop" else finish


def gemini_to_chat(data: JSON, *, model: str, usage: Usage) -> JSON:
    """A Gemini GenerateContentResponse → an OpenAI chat completion."""
    blocked = blocked_prompt(data)
    if blocked is not None:
        raise blocked
    choices = []
    for i, candidate in enumerate(data.get("candidates") or []):
        text, thoughts, calls = _choice_parts(candidate)
        message: JSON = {"role": "assistant", "content": text if text or not calls else None}
        if thoughts:
            message["reasoning_content"] = thoughts
        if calls:
            message["tool_calls"] = calls
        choices.append(
            {
                "index": candidate.get("index", i),
                "message": message,
                "finish_reason": _finish(candidate, bool(calls)) or "stop",
                "logprobs": None,
            }
        )
    return {
        "id": "chatcmpl-" + str(data.get("responseId") or os.urandom(12).hex()),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
        "usage": openai_usage(usage),
    }


class GeminiToChatChunks:
    """Feeds on streamed GenerateContentResponses, emits OpenAI chat completion chunks."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = "chatcmpl-" + os.urandom(12).hex()
        self.created = int(time.time())
        self.usage: Usage | None = None
        self.started: set[int] = set()
        self.tool_calls: dict[int, int] = {}  # candidate → tool calls so far
        self.finished = False
        self.error: GatewayError | None = None

    def _chunk(self, index: int, delta: JSON, finish: str | None = None) -> JSON:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
            ],
        }

    def feed(self, data: JSON) -> list[JSON]:
        usage = gemini_usage(data.get("usageMetadata"))
        if usage is not None:
            self.usage = usage  # cumulative: the last one is the whole
        blocked = blocked_prompt(data)
        if blocked is not None:
            self.error = blocked
            return []
        out: list[JSON] = []
        for i, candidate in enumerate(data.get("candidates") or []):
            index = candidate.get("index", i)
            if index not in self.started:
                self.started.add(index)
                out.append(self._chunk(index, {"role": "assistant", "content": ""}))
            text, thoughts, calls = _choice_parts(candidate)
            if thoughts:
                out.append(self._chunk(index, {"reasoning_content": thoughts}))
            if text:
                out.append(self._chunk(index, {"content": text}))
            for call in calls:
                n = self.tool_calls.get(index, 0)
                self.tool_calls[index] = n + 1
                out.append(self._chunk(index, {"tool_calls": [{"index": n, **call}]}))
            finish = _finish(candidate, index in self.tool_calls)
            if finish is not None:
                self.finished = True
                out.append(self._chunk(index, {}, finish))
        return out

    def usage_chunk(self, usage: Usage) -> JSON:
        chunk = self._chunk(0, {})
        chunk["choices"] = []
        chunk["usage"] = openai_usage(usage)
        return chunk
