"""A faithful, deterministic mock of the Gemini API's content generation.

``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` and
``:countTokens`` (also under ``/v1/models/``), and the same under Vertex AI express
mode's ``/v1/publishers/google/models/{model}:…`` (and ``/v1beta1/``), where answers also
carry ``createTime`` and ``usageMetadata.trafficType``.

Auth is ``x-goog-api-key: <key>`` or ``?key=<key>``: a missing key is a 403
PERMISSION_DENIED ("Method doesn't allow unregistered callers…"), a wrong one a 400
INVALID_ARGUMENT with an ``API_KEY_INVALID`` ErrorInfo, as the API answers. Errors are
``{"error": {"code", "message", "status", "details"?}}``, pretty-printed like Google's.

``streamGenerateContent?alt=sse`` answers ``data: <json>`` events separated by CRLF
pairs; without ``alt=sse`` it is one JSON array whose elements arrive as they are made.
Every chunk is a whole GenerateContentResponse; intermediate chunks' ``usageMetadata``
holds the prompt count only, the last one (which carries ``finishReason``) everything.
Text comes one word per chunk (``chunks`` with ``reply``: exactly that many), a
functionCall whole in one chunk, as Gemini never fragments one; ``cut_after`` drops
the connection after that many chunks, and never lets the stream end cleanly.

Requests are checked like the API: JSON field names in lowerCamelCase or proto
snake_case, an unknown one is 400 'Unknown name "x": Cannot find field.'; ``contents``
non-empty, roles ``user``/``model``, parts non-empty and each with data;
``generationConfig`` ranges (candidateCount 1-8, temperature 0-2, topP 0-1).

Deterministic answer (n = ``candidateCount`` identical candidates):

* text: ``"You said: " + <text of the last user content>`` (its text parts joined with a
  single space; contents holding only function responses are skipped, as OpenAI's chat
  keeps those in messages of their own);
* ``promptTokenCount`` = (systemInstruction, if any: words + 3) + sum over contents of
  (words in its text + 3), where a content's text is its text parts and the compact JSON
  of its functionResponse parts' ``response``;
* ``candidatesTokenCount`` = words in the text (a functionCall: words in its args JSON +
  5), times n; ``totalTokenCount`` = prompt + candidates + thoughts;
* thinking happens when ``thinkingConfig`` has ``includeThoughts`` or a non-zero
  ``thinkingBudget``, or with the ``thinking`` directive: its text is ``"Thinking about: "
  + <text>``, counted in ``thoughtsTokenCount`` and against ``maxOutputTokens``; parts
  with ``"thought": true`` are only returned with ``includeThoughts``, and the first
  answer part then carries a ``thoughtSignature``;
* ``stopSequences`` cut the text before the first one found (``finishReason`` STOP, as
  the API reports it); ``maxOutputTokens`` after that many output words (MAX_TOKENS);
* a functionCall part (``finishReason`` STOP) comes from the ``tool_call`` directive, or
  from ``toolConfig.functionCallingConfig.mode`` ANY (to the first allowed declaration,
  with ``{}``); mode NONE suppresses calls, including the directive's;
* ordinary candidates carry no ``safetyRatings`` (Gemini 2.x omits them); a
  ``safety_block`` directive of "prompt" answers ``promptFeedback.blockReason`` SAFETY
  and no candidates, "response" a candidate with ``finishReason`` SAFETY, no content and
  the offending rating ``blocked``.

Directive keys (last user content ``!mock {...}``): status, retry_after (as a RetryInfo
``retryDelay`` detail: Google sends no Retry-After header), message, delay, reply,
chunks, chunk_delay, cut_after, tool_call, prompt_tokens, completion_tokens,
cached_tokens (``cachedContentTokenCount``, part of the prompt count as in the API),
finish_reason, echo_request, thinking, safety_block.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import re
import time
from dataclasses import dataclass
from typing import Any

import orjson

from mockserver.common import (
    CHAT_DIRECTIVES,
    WORD_PIECES,
    ASGIApp,
    DirectiveError,
    DirectiveTypes,
    Receive,
    Scope,
    Send,
    directive_in,
    echo_headers,
    header,
    key_matches,
    limit_text,
    query_param,
    read_body,
    send_bytes,
    split_reply,
    tool_arguments,
    words,
)

# /{version}/models/{model}:{method} (Gemini API) and
# /{version}/publishers/google/models/{model}:{method} (Vertex AI express mode).
_PATH = re.compile(
    r"^/(?:(?P<gemini>v1beta|v1)/models|(?P<vertex>v1|v1beta1)/publishers/google/models)"
    r"/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)
_METHODS = ("generateContent", "streamGenerateContent", "countTokens")
_JSON = (b"content-type", b"application/json; charset=UTF-8")
_SSE = (b"content-type", b"text/event-stream")
_PRETTY = orjson.OPT_INDENT_2

_DIRECTIVE_TYPES: DirectiveTypes = {
    **CHAT_DIRECTIVES,
    "thinking": (str,),
    "safety_block": (str,),
}

# HTTP status -> google.rpc.Code name, as the troubleshooting guide lists them.
_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

# Fields the API knows, in lowerCamelCase; proto's snake_case spellings are accepted too.
_REQUEST_FIELDS = frozenset(
    [
        "model",
        "contents",
        "tools",
        "toolConfig",
        "safetySettings",
        "systemInstruction",
        "generationConfig",
        "cachedContent",
        "labels",
    ]
)
_CONFIG_FIELDS = frozenset(
    [
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "enableEnhancedCivicAnswers",
        "speechConfig",
        "thinkingConfig",
        "imageConfig",
        "mediaResolution",
        "audioTimestamp",
        "routingConfig",
        "modelSelectionConfig",
    ]
)
_THINKING_FIELDS = frozenset(("includeThoughts", "thinkingBudget", "thinkingLevel"))
_PART_DATA = (
    "text",
    "inlineData",
    "fileData",
    "functionCall",
    "functionResponse",
    "executableCode",
    "codeExecutionResult",
)
_MODES = ("MODE_UNSPECIFIED", "AUTO", "ANY", "NONE", "VALIDATED")
_HARM_CATEGORIES = (
    "HARM_CATEGORY_SEXUALLY_EXPLICIT",
    "HARM_CATEGORY_HATE_SPEECH",
    "HARM_CATEGORY_HARASSMENT",
    "HARM_CATEGORY_DANGEROUS_CONTENT",
)
_BLOCKED_CATEGORY = "HARM_CATEGORY_DANGEROUS_CONTENT"


class ApiError(Exception):
    def __init__(
        self, code: int, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _invalid(message: str, field: str | None = None) -> ApiError:
    details = None
    if field is not None:
        violation = {"field": field, "description": message}
        details = [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
        ]
    return ApiError(400, message, details)


def error_body(exc: ApiError) -> bytes:
    error: dict[str, Any] = {
        "code": exc.code,
        "message": exc.message,
        "status": _STATUSES.get(exc.code, "UNKNOWN"),
    }
    if exc.details:
        error["details"] = exc.details
    return orjson.dumps({"error": error}, option=_PRETTY)


async def send_error(send: Send, exc: ApiError) -> None:
    await send_bytes(send, exc.code, error_body(exc), [_JSON])


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _fields(obj: object, known: frozenset[str], where: str | None) -> dict[str, Any]:
    """The object's fields keyed by their camelCase name; unknown names are a 400
    worded as Google's JSON parser words it."""
    if not isinstance(obj, dict):
        at = f" at '{where}'" if where else ""
        raise _invalid(f"Invalid JSON payload received. Expected an object{at}.", where)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = _camel(key) if "_" in key else key
        if name not in known:
            at = f" at '{where}'" if where else ""
            msg = f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
            raise _invalid(msg, where or key)
        out[name] = value
    return out


# ---------------------------------------------------------------- validation


@dataclass
class _Request:
    body: dict[str, Any]
    model: str
    vertex: bool
    prompt_tokens: int
    last_user: str
    n: int
    max_tokens: int | None
    stop_sequences: list[str]
    thinking: bool
    include_thoughts: bool
    functions: list[str]
    mode: str
    directive: dict[str, Any]


def _content_text(content: dict[str, Any], where: str) -> tuple[str, str]:
    """The content's text for counting (text parts and function responses' JSON) and
    what it says (its text parts only)."""
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        field = f"{where}.parts"
        raise _invalid(
            f"* GenerateContentRequest.{field}: contents.parts must not be empty.\n", field
        )
    texts: list[str] = []
    said: list[str] = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            raise _invalid(
                f"Invalid JSON payload received. Expected an object at '{where}.parts[{j}]'."
            )
        if not any(_camel(k) in _PART_DATA for k in part):
            field = f"{where}.parts[{j}].data"
            raise _invalid(
                f"* GenerateContentRequest.{field}: required oneof field 'data' must have one initialized field\n",  # noqa: E501
                field,
            )
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
            said.append(part["text"])
        response = part.get("functionResponse", part.get("function_response"))
        if isinstance(response, dict):
            texts.append(orjson.dumps(response.get("response", {})).decode())
        inline = part.get("inlineData", part.get("inline_data"))
        if inline is not None and not (
            isinstance(inline, dict)
            and inline.get("data")
            and (inline.get("mimeType") or inline.get("mime_type"))
        ):
            field = f"{where}.parts[{j}].inline_data"
            raise _invalid(
                f"* GenerateContentRequest.{field}: mime_type and data are required\n", field
            )
    return " ".join(texts), " ".join(said)


def _check_contents(contents: object) -> tuple[int, str]:
    if not isinstance(contents, list) or not contents:
        raise _invalid("* GenerateContentRequest.contents: contents is not specified\n", "contents")
    tokens, last_user = 0, ""
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise _invalid(f"Invalid JSON payload received. Expected an object at 'contents[{i}]'.")
        role = content.get("role", "user")
        if role not in ("user", "model"):
            raise _invalid("Please use a valid role: user, model.")
        text, said = _content_text(content, f"contents[{i}]")
        tokens += words(text) + 3
        if role == "user" and said:
            last_user = said
    return tokens, last_user


def _number(config: dict[str, Any], name: str, low: float, high: float) -> None:
    value = config.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        field = f"generation_config.{_snake(name)}"
        raise _invalid(
            f"* GenerateContentRequest.{field}: must be in the range [{low}, {high}]\n", field
        )


def _check_config(raw: object) -> tuple[dict[str, Any], dict[str, Any]]:
    config = _fields(raw if raw is not None else {}, _CONFIG_FIELDS, "generation_config")
    _number(config, "candidateCount", 1, 8)
    if not isinstance(config.get("candidateCount", 1), int):
        field = "generation_config.candidate_count"
        raise _invalid(f"* GenerateContentRequest.{field}: must be an integer\n", field)
    _number(config, "temperature", 0, 2)
    _number(config, "topP", 0, 1)
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        field = "generation_config.max_output_tokens"
        raise _invalid(f"* GenerateContentRequest.{field}: must be a positive integer\n", field)
    stops = config.get("stopSequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > 5:
        field = "generation_config.stop_sequences"
        raise _invalid(f"* GenerateContentRequest.{field}: at most 5 stop sequences\n", field)
    thinking = _fields(
        config.get("thinkingConfig") or {}, _THINKING_FIELDS, "generation_config.thinking_config"
    )
    return config, thinking


def _check_tools(fields: dict[str, Any]) -> tuple[list[str], str]:
    names: list[str] = []
    tools = fields.get("tools") or []
    if not isinstance(tools, list):
        raise _invalid("Invalid JSON payload received. Expected an array at 'tools'.", "tools")
    for i, tool in enumerate(tools):
        decls = (
            tool.get("functionDeclarations", tool.get("function_declarations", []))
            if isinstance(tool, dict)
            else None
        )
        if not isinstance(decls, list):
            raise _invalid(
                f"Invalid JSON payload received. Expected an array at 'tools[{i}]'.", f"tools[{i}]"
            )
        for j, decl in enumerate(decls):
            if (
                not isinstance(decl, dict)
                or not isinstance(decl.get("name"), str)
                or not decl["name"]
            ):
                field = f"tools[{i}].function_declarations[{j}].name"
                raise _invalid(
                    f"* GenerateContentRequest.{field}: [FIELD_INVALID] Invalid function name.\n",
                    field,
                )
            names.append(decl["name"])
    config = fields.get("toolConfig") or {}
    calling = config.get("functionCallingConfig", config.get("function_calling_config")) or {}
    mode = calling.get("mode", "AUTO") if isinstance(calling, dict) else "AUTO"
    if mode not in _MODES:
        raise _invalid(
            f"Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{mode}\"",  # noqa: E501
            "tool_config.function_calling_config.mode",
        )
    allowed = calling.get("allowedFunctionNames", calling.get("allowed_function_names"))
    if isinstance(allowed, list) and allowed:
        names = [n for n in names if n in allowed] or names
    return names, mode


def parse_request(raw: bytes, model: str, vertex: bool, count_only: bool = False) -> _Request:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _invalid("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(body, dict):
        raise _invalid(
            'Invalid JSON payload received. Unknown name "": Root element must be a message.'
        )
    if count_only and ("generateContentRequest" in body or "generate_content_request" in body):
        if "contents" in body:
            raise _invalid("contents and generate_content_request are mutually exclusive.")
        body = body.get("generateContentRequest", body.get("generate_content_request"))
        if not isinstance(body, dict):
            raise _invalid(
                "Invalid JSON payload received. Expected an object at 'generate_content_request'."
            )
    fields = _fields(body, _REQUEST_FIELDS, None)
    prompt_tokens, last_user = _check_contents(fields.get("contents"))
    system = fields.get("systemInstruction")
    if system is not None:
        if not isinstance(system, dict):
            raise _invalid(
                "Invalid JSON payload received. Expected an object at 'system_instruction'."
            )
        prompt_tokens += words(_content_text(system, "system_instruction")[0]) + 3
    config, thinking = _check_config(fields.get("generationConfig"))
    functions, mode = _check_tools(fields)
    try:
        directive = directive_in(last_user, _DIRECTIVE_TYPES)
    except DirectiveError as exc:
        raise _invalid(str(exc)) from None
    if directive.get("safety_block", "prompt") not in ("prompt", "response"):
        raise _invalid('Invalid !mock directive: safety_block must be "prompt" or "response".')
    include = thinking.get("includeThoughts") is True
    budget = thinking.get("thinkingBudget", 0)
    return _Request(
        body=body,
        model=model,
        vertex=vertex,
        prompt_tokens=prompt_tokens,
        last_user=last_user,
        n=config.get("candidateCount", 1),
        max_tokens=config.get("maxOutputTokens"),
        stop_sequences=config.get("stopSequences", []),
        thinking=include or budget != 0 or "thinking" in directive,
        include_thoughts=include,
        functions=functions,
        mode=mode,
        directive=directive,
    )


# ------------------------------------------------------------------- answers


@dataclass
class _Answer:
    thought: str | None
    text: str | None
    call: tuple[str, dict[str, Any], str] | None  # name, args, args JSON
    finish_reason: str
    usage: dict[str, Any]


def _thought_signature(text: str) -> str:
    return base64.b64encode(hashlib.sha256(b"mock-thought:" + text.encode()).digest()).decode()


def _answer(req: _Request, scope: Scope) -> _Answer:
    d = req.directive
    call = None
    tool_call = d.get("tool_call")
    if tool_call is None and req.mode == "ANY" and req.functions:
        tool_call = {"name": req.functions[0], "arguments": {}}
    if tool_call is not None and req.mode != "NONE":
        try:
            args, args_json = tool_arguments(tool_call)
        except DirectiveError as exc:
            raise _invalid(str(exc)) from None
        call = (tool_call["name"], args, args_json)

    if d.get("echo_request"):
        text: str | None = orjson.dumps({"headers": echo_headers(scope), "body": req.body}).decode()
    elif "reply" in d:
        text = d["reply"]
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
    return _Answer(thought, text, call, d.get("finish_reason", finish), usage)


def _prompt_usage(answer: _Answer) -> dict[str, Any]:
    """What chunks before the last report: the prompt only."""
    usage = answer.usage
    keep = ("promptTokenCount", "promptTokensDetails", "cachedContentTokenCount", "trafficType")
    out = {k: usage[k] for k in keep if k in usage}
    out["totalTokenCount"] = usage["promptTokenCount"]
    return out


def _parts(req: _Request, answer: _Answer) -> list[dict[str, Any]]:
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


def _envelope(
    req: _Request, response_id: str, created: str, payload: dict[str, Any]
) -> dict[str, Any]:
    payload["modelVersion"] = req.model
    if req.vertex:
        payload["createTime"] = created
    payload["responseId"] = response_id
    return payload


def _candidates(
    req: _Request, parts: list[dict[str, Any]] | None, finish: str | None
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


def _blocked(req: _Request, answer: _Answer, kind: str) -> dict[str, Any]:
    usage = _prompt_usage(answer)
    if kind == "prompt":
        return {
            "promptFeedback": {"blockReason": "SAFETY", "safetyRatings": _ratings(True)},
            "usageMetadata": usage,
        }
    candidates = _candidates(req, None, "SAFETY")
    for candidate in candidates:
        candidate["safetyRatings"] = _ratings(True)
    return {"candidates": candidates, "usageMetadata": usage}


def _chunks(req: _Request, answer: _Answer) -> list[dict[str, Any]]:
    """The stream's parts, one per chunk."""
    d = req.directive
    parts = _parts(req, answer)
    chunks: list[dict[str, Any]] = []
    for part in parts:
        text = part.get("text")
        if text is None:
            # Gemini streams a function call whole, never in fragments.
            chunks.append(part)
            continue
        if text and not part.get("thought") and "chunks" in d and "reply" in d:
            pieces = split_reply(text, max(d["chunks"], 1))
        else:
            pieces = WORD_PIECES.findall(text) or [""]
        for k, piece in enumerate(pieces):
            chunk_part = {**part, "text": piece}
            if k and "thoughtSignature" in chunk_part:
                del chunk_part["thoughtSignature"]
            chunks.append(chunk_part)
    return chunks or [{"text": ""}]


async def _stream(
    send: Send, scope: Scope, req: _Request, answer: _Answer, response_id: str, created: str
) -> None:
    d = req.directive
    sse = query_param(scope, "alt") == "sse"
    await send({"type": "http.response.start", "status": 200, "headers": [_SSE if sse else _JSON]})

    def frame(payload: dict[str, Any], first: bool, last: bool) -> dict[str, Any]:
        data = _envelope(req, response_id, created, payload)
        if sse:
            # Google's SSE separates events with CRLF pairs.
            body = b"data: " + orjson.dumps(data) + b"\r\n\r\n"
        else:
            body = (
                (b"[" if first else b",\r\n")
                + orjson.dumps(data, option=_PRETTY)
                + (b"]" if last else b"")
            )
        return {"type": "http.response.body", "body": body, "more_body": not last}

    block = d.get("safety_block")
    if block is not None:
        await send(frame(_blocked(req, answer, block), True, True))
        return
    chunks = _chunks(req, answer)
    chunk_delay, cut_after = d.get("chunk_delay"), d.get("cut_after")
    for k, part in enumerate(chunks):
        if cut_after is not None and k >= cut_after:
            # Return without more_body=False: the server drops the connection
            # mid-body, which is what a real upstream failure looks like.
            return
        if chunk_delay:
            await asyncio.sleep(chunk_delay)
        last = k == len(chunks) - 1
        payload = {
            "candidates": _candidates(req, [part], answer.finish_reason if last else None),
            "usageMetadata": answer.usage if last else _prompt_usage(answer),
        }
        # Even past the last chunk a cut stream never ends cleanly (nor closes its array).
        await send(frame(payload, k == 0, last and cut_after is None))


async def _fault(send: Send, d: dict[str, Any]) -> bool:
    """Applies ``delay`` and ``status``; True when the answer was an error."""
    if "delay" in d:
        await asyncio.sleep(d["delay"])
    status = d.get("status")
    if status is None:
        return False
    details = None
    if "retry_after" in d:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{d['retry_after']}s",
            }
        ]
    await send_error(send, ApiError(status, d.get("message", f"mock fault {status}"), details))
    return True


async def _send_json(send: Send, payload: object) -> None:
    await send_bytes(send, 200, orjson.dumps(payload, option=_PRETTY), [_JSON])


async def generate(
    scope: Scope, raw: bytes, send: Send, model: str, vertex: bool, stream: bool
) -> None:
    req = parse_request(raw, model, vertex)
    if await _fault(send, req.directive):
        return
    answer = _answer(req, scope)
    response_id = base64.urlsafe_b64encode(os.urandom(15)).decode()
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    if stream:
        await _stream(send, scope, req, answer, response_id, created)
        return
    block = req.directive.get("safety_block")
    if block is not None:
        payload = _blocked(req, answer, block)
    else:
        payload = {
            "candidates": _candidates(req, _parts(req, answer), answer.finish_reason),
            "usageMetadata": answer.usage,
        }
    await _send_json(send, _envelope(req, response_id, created, payload))


async def count_tokens(raw: bytes, send: Send, model: str, vertex: bool) -> None:
    req = parse_request(raw, model, vertex, count_only=True)
    if await _fault(send, req.directive):
        return
    total = req.directive.get("prompt_tokens", req.prompt_tokens)
    payload: dict[str, Any] = {"totalTokens": total}
    if vertex:
        text = orjson.dumps(req.body.get("contents", [])).decode()
        payload["totalBillableCharacters"] = sum(1 for c in text if not c.isspace())
    payload["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": total}]
    await _send_json(send, payload)


# ------------------------------------------------------------------------ app


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app; with ``api_key`` only that key is let in."""
    expected = api_key.encode() if api_key else None

    def auth_error(scope: Scope, vertex: bool) -> ApiError | None:
        token = header(scope, b"x-goog-api-key")
        if token is None:
            key = query_param(scope, "key")
            token = key.encode() if key is not None else None
        if not token:
            return ApiError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",  # noqa: E501
            )
        if key_matches(token, expected):
            return None
        service = "aiplatform.googleapis.com" if vertex else "generativelanguage.googleapis.com"
        message = "API key not valid. Please pass a valid API key."
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": service},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message,
            },
        ]
        return ApiError(400, message, details)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        match = _PATH.match(scope["path"])
        if match is None or match["method"] not in _METHODS or scope["method"] != "POST":
            await send_error(
                send, ApiError(404, f"Method not found: {scope['method']} {scope['path']}")
            )
            return
        vertex = match["vertex"] is not None
        denied = auth_error(scope, vertex)
        if denied is not None:
            await send_error(send, denied)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        method = match["method"]
        try:
            if method == "countTokens":
                await count_tokens(raw, send, match["model"], vertex)
            else:
                await generate(
                    scope, raw, send, match["model"], vertex, method == "streamGenerateContent"
                )
        except ApiError as exc:
            await send_error(send, exc)
        except OSError:
            # The client went away mid-stream; nothing left to tell it.
            return

    return app
