"""The deterministic answer to a request and the GenerateContentResponse pieces built from
it (parts, candidates, usage, safety blocks), shared by the JSON reply and the stream so
both report the same figures."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from mockserver.common import DirectiveError, Scope, echo_headers, limit_text, tool_arguments, words
from mockserver.gemini.errors import invalid
from mockserver.gemini.request import Request
from mockserver.json_schema import json_reply

_HARM_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
_BLOCKED_CATEGORY = "HARM_CATEGORY_DANGEROUS_CONTENT"


@dataclass
class Answer:
    thought: str | None
    text: str | None
    call: tuple[str, dict[str, Any], str] | None  # name, args, args JSON
    finish_reason: str
    usage: dict[str, Any]


def _thought_signature(text: str) -> str:
    return base64.b64encode(hashlib.sha256(b"mock-thought:" + text.encode()).digest()).decode()


def answer_of(req: Request, scope: Scope) -> Answer:
    d = req.directive
    call = None
    tool_call = d.get("tool_call")
    if tool_call is None and req.mode == "ANY" and req.functions:
        tool_call = {"name": req.functions[0], "arguments": {}}
    if tool_call is not None and req.mode != "NONE":
        try:
            args, args_json = tool_arguments(tool_call)
        except DirectiveError as exc:
            raise invalid(str(exc)) from None
        call = (tool_call["name"], args, args_json)

    if d.get("echo_request"):
        text: str | None = orjson.dumps({"headers": echo_headers(scope), "body": req.body}).decode()
    elif "reply" in d:
        text = d["reply"]
    elif req.json_mode:
        text = json_reply(req.output_schema, "You said: " + req.last_user)
    elif "chunks" in d:
        text = " ".join(f"w{i}" for i in range(d["chunks"]))
    else:
        text = "You said: " + req.last_user
    if call is not None and "reply" not in d:
        text = None

    thought = d.get("thinking", "Thinking about: " + req.last_user) if req.thinking else None
    thought_tokens = words(thought) if thought else 0
    finish = "STOP"
    if text is not None:
        budget = (req.max_tokens if req.max_tokens is not None else 1 << 30) - thought_tokens
        text, hit = limit_text(text, req.stop_sequences, budget)
        if hit == "":
            finish, call = "MAX_TOKENS", None
        elif hit is not None:
            call = None
    completion = (words(text) if text else 0) + (words(call[2]) + 5 if call else 0)
    prompt = d.get("prompt_tokens", req.prompt_tokens)
    candidates = d.get("completion_tokens", completion * req.n)
    usage: dict[str, Any] = {
        "promptTokenCount": prompt,
        "candidatesTokenCount": candidates,
        "totalTokenCount": prompt + candidates + thought_tokens,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
    }
    if "cached_tokens" in d:
        usage["cachedContentTokenCount"] = d["cached_tokens"]
    if thought_tokens:
        usage["thoughtsTokenCount"] = thought_tokens
    if req.vertex:
        usage["trafficType"] = "ON_DEMAND"
    return Answer(thought, text, call, d.get("finish_reason", finish), usage)


def prompt_usage(answer: Answer) -> dict[str, Any]:
    """What chunks before the last report: the prompt only."""
    usage = answer.usage
    keep = ("promptTokenCount", "promptTokensDetails", "cachedContentTokenCount", "trafficType")
    out = {k: usage[k] for k in keep if k in usage}
    out["totalTokenCount"] = usage["promptTokenCount"]
    return out


def parts_of(req: Request, answer: Answer) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if answer.thought is not None and req.include_thoughts:
        parts.append({"text": answer.thought, "thought": True})
    if answer.text is not None:
        parts.append({"text": answer.text})
    if answer.call is not None:
        name, args, _ = answer.call
        parts.append({"functionCall": {"name": name, "args": args}})
    if answer.thought is not None:
        for part in parts:
            if not part.get("thought"):
                part["thoughtSignature"] = _thought_signature(answer.thought)
                break
    return parts


def _ratings(blocked: bool) -> list[dict[str, Any]]:
    ratings: list[dict[str, Any]] = []
    for category in _HARM_CATEGORIES:
        rating: dict[str, Any] = {"category": category, "probability": "NEGLIGIBLE"}
        if blocked and category == _BLOCKED_CATEGORY:
            rating = {"category": category, "probability": "HIGH", "blocked": True}
        ratings.append(rating)
    return ratings


def envelope(
    req: Request, response_id: str, created: str, payload: dict[str, Any]
) -> dict[str, Any]:
    payload["modelVersion"] = req.model
    if req.vertex:
        payload["createTime"] = created
    payload["responseId"] = response_id
    return payload


def candidates_of(
    req: Request, parts: list[dict[str, Any]] | None, finish: str | None
) -> list[dict[str, Any]]:
    candidates = []
    for i in range(req.n):
        candidate: dict[str, Any] = {}
        if parts is not None:
            candidate["content"] = {"parts": [dict(p) for p in parts], "role": "model"}
        if finish is not None:
            candidate["finishReason"] = finish
        candidate["index"] = i
        candidates.append(candidate)
    return candidates


def blocked(req: Request, answer: Answer, kind: str) -> dict[str, Any]:
    usage = prompt_usage(answer)
    if kind == "prompt":
        return {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _ratings(True)},
            "usageMetadata": usage,
        }
    candidates = candidates_of(req, None, "SAFETY")
    for candidate in candidates:
        candidate["safetyRatings"] = _ratings(True)
    return {"candidates": candidates, "usageMetadata": usage}
