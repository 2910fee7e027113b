"""A fast, faithful local mock of the OpenAI chat completions API.

It is a bare ASGI callable (no framework, no Django) because it sits upstream
of the gateway in benchmarks: every microsecond spent here is noise there.

Behaviour is deterministic so tests can assert exact figures:

* the reply is ``"You said: " + <text of the last user message>`` (list
  contents are reduced to their text parts joined with a single space);
* ``prompt_tokens`` = sum over messages of (words in its text + 3);
* ``completion_tokens`` = words in the reply (tool calls: words in the
  arguments JSON + 5), times ``n``;
* content parts and tools carrying Anthropic's ``cache_control`` are cached the way
  OpenRouter caches them for the models it caches explicitly (``mockserver.prompt_cache``):
  the first request with a given prefix writes it, a repeat reads it;
  ``prompt_tokens_details`` then says ``cached_tokens`` (read) and ``cache_write_tokens``
  (written), both part of ``prompt_tokens``. A directive's ``cached_tokens`` overrides it.

Faults are switched per request (so tests can run in parallel) by a last user
message of the form ``!mock {"json": "object"}``; see ``common.CHAT_DIRECTIVES``
for the keys (an unknown key or a wrong type is a 400, so typos fail loudly).
Streams send one content chunk per word; ``chunks`` with ``reply`` makes exactly
that many (whole words when there are enough, else characters).

``cut_after`` ends a stream by returning from the ASGI callable without
``more_body: False``: uvicorn then closes the TCP connection without the
terminating chunk, so clients see a dropped connection (httpx raises
``RemoteProtocolError: incomplete chunked read``), not a clean end of body.
``malformed`` answers 200 with a body cut mid-JSON (a stream: one unparsable event,
then the cut); ``first_chunk_delay`` holds a stream's first chunk after its headers.
``only_model`` and ``times``/``key`` narrow which requests meet the faults
(``common.fault_scope``).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable
from typing import Any

import orjson

from mockserver.common import (
    CHAT_DIRECTIVES,
    MOCK_PREFIX,
    WORD_PIECES,
    ASGIApp,
    DirectiveError,
    DirectiveTypes,
    Headers,
    Message,
    Receive,
    Scope,
    Send,
    departure_guard,
    echo_headers,
    fault_scope,
    lifespan,
    next_id,
    parse_directive,
    read_body,
    request_receive,
    split_even,
    split_reply,
)
from mockserver.prompt_cache import PrefixWalk, prompt_cache

MODELS = ("echo", "gpt-4o-mini", "gpt-4o")
_MODELS_BODY = orjson.dumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"} for m in MODELS
        ],
    }
)
_HEALTH_BODY = b'{"status":"ok"}'
_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream")
_DONE = b"data: [DONE]\n\n"

# key -> accepted types. Unknown keys are rejected so a typo in a test fails
# loudly instead of silently testing the happy path.
_DIRECTIVE_TYPES: DirectiveTypes = CHAT_DIRECTIVES

# status -> (type, code) as the OpenAI error body spells them.
FAULTS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def fault_body(status: int, message: str | None) -> dict[str, Any]:
    """The error body of a ``status`` directive."""
    type_, code = FAULTS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return error_body(message or f"mock fault {status}", type_, None, code)


async def _send_body(
    send: Send,
    status: int,
    body: bytes,
    started: float,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    headers: Headers = [
        _JSON,
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", f"req_{next_id()}".encode()),
        (
            b"openai-processing-ms",
            str(int((time.perf_counter() - started) * 1000)).encode(),
        ),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send,
    status: int,
    payload: object,
    started: float,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await _send_body(send, status, orjson.dumps(payload), started, extra)


def _text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


def _parse_directive(text: str) -> dict[str, Any]:
    try:
        return parse_directive(text, _DIRECTIVE_TYPES)
    except DirectiveError as exc:
        raise BadRequest(str(exc), "messages") from None


def _usage(prompt: int, completion: int, cached: int, written: int | None) -> dict[str, Any]:
    details: dict[str, Any] = {"cached_tokens": cached, "audio_tokens": 0}
    if written is not None:  # said only for explicit caching (OpenRouter, OpenAI's own SDK types)
        details["cache_write_tokens"] = written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _validate(raw: bytes) -> tuple[dict[str, Any], str, list[Any], int]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "  # noqa: E501  (OpenAI's exact wording)
            "HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest("Invalid body: expected a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest(
            "you must provide a model parameter", "model", "missing_required_parameter"
        )
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest(
            "Missing required parameter: 'messages'.",
            "messages",
            "missing_required_parameter",
        )
    if not messages:
        raise BadRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
            "empty_array",
        )
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise BadRequest(
                f"Invalid type for 'messages[{i}]': expected an object.",
                f"messages[{i}]",
                "invalid_type",
            )
        if not isinstance(msg.get("role"), str):
            raise BadRequest(
                f"Missing required parameter: 'messages[{i}].role'.",
                f"messages[{i}].role",
                "missing_required_parameter",
            )
    n = body.get("n")
    if n is None:
        n = 1
    elif not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise BadRequest(
            "Invalid 'n': expected an integer between 1 and 128.", "n", "invalid_value"
        )
    return body, model, messages, n


def _cache_walk(body: dict[str, Any], model: str) -> PrefixWalk | None:
    """The prompt's blocks (tools, then each message's content parts), each with its tokens
    under the counting rule of the module docstring; None when no part or tool is marked."""
    walk = PrefixWalk(model)
    for tool in body.get("tools") or []:
        walk.block(tool, 0)
    for msg in body["messages"]:
        content = msg.get("content")
        walk.overhead({k: v for k, v in msg.items() if k != "content"}, 3)
        if isinstance(content, str):
            walk.block({"type": "text", "text": content}, len(content.split()))
        elif isinstance(content, list):
            for part in content:
                walk.block(part, len(_text_of([part]).split()))
    return walk if walk.marks else None


async def _chat(scope: Scope, raw: bytes, send: Send, started: float) -> None:
    body, model, messages, n = _validate(raw)

    prompt_tokens = 0
    last_user = ""
    for msg in messages:
        text = _text_of(msg.get("content"))
        prompt_tokens += len(text.split()) + 3
        if msg.get("role") == "user":
            last_user = text

    d: dict[str, Any] = _parse_directive(last_user) if last_user.startswith(MOCK_PREFIX) else {}
    if d:
        d = fault_scope(d, model)
        send = departure_guard(d, send)
        if "delay" in d:
            await asyncio.sleep(d["delay"])
        status = d.get("status")
        if status is not None:
            extra = [(b"retry-after", str(d["retry_after"]).encode())] if "retry_after" in d else []
            await send_json(send, status, fault_body(status, d.get("message")), started, extra)
            return
        if d.get("malformed") and body.get("stream") is not True:
            # A 200 whose body is cut mid-JSON: what a crashing upstream proxy sends.
            await _send_body(send, 200, b'{"id":"chatcmpl-broken","choices":[{"ind', started)
            return

    tool = d.get("tool_call")
    arguments = ""
    if tool is not None:
        args = tool.get("arguments", {})
        arguments = args if isinstance(args, str) else orjson.dumps(args).decode()
        reply = None
        completion_tokens = len(arguments.split()) + 5
    else:
        if d.get("echo_request"):
            reply = orjson.dumps({"headers": echo_headers(scope), "body": body}).decode()
        elif "reply" in d:
            reply = d["reply"]
        elif "chunks" in d:
            reply = " ".join(f"w{i}" for i in range(d["chunks"]))
        else:
            reply = "You said: " + last_user
        completion_tokens = len(reply.split())

    cached, written = d.get("cached_tokens", 0), None
    cache = _cache_walk(body, model) if b'"cache_control"' in raw else None
    if cache is not None and "cached_tokens" not in d:
        settled = prompt_cache.settle(cache)
        cached, written = settled.read, settled.write
    usage = _usage(
        d.get("prompt_tokens", prompt_tokens),
        d.get("completion_tokens", completion_tokens * n),
        cached,
        written,
    )
    finish_reason = d.get("finish_reason", "stop" if tool is None else "tool_calls")
    cid = f"chatcmpl-{next_id()}"
    created = int(time.time())
    call_ids = [f"call_{os.urandom(12).hex()}" for _ in range(n)] if tool is not None else []

    if body.get("stream") is not True:
        choices = []
        for i in range(n):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": reply,
                "refusal": None,
                "annotations": [],
            }
            if tool is not None:
                fn = {"name": tool["name"], "arguments": arguments}
                message["tool_calls"] = [{"id": call_ids[i], "type": "function", "function": fn}]
            choices.append(
                {
                    "index": i,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            )
        payload = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        }
        if d.get("cut_after") is not None:
            # Headers and half the body, then the connection drops: a cut answer.
            whole = orjson.dumps(payload)
            length = (b"content-length", str(len(whole)).encode())
            start = {"type": "http.response.start", "status": 200, "headers": [length]}
            await send(start)
            half = whole[: len(whole) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            return
        await send_json(send, 200, payload, started)
        return

    # Streaming. Every chunk shares the same envelope, so it is serialised
    # once and only the choice is encoded per chunk.
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    head = b"".join(
        (
            b'data: {"id":"',
            cid.encode(),
            b'","object":"chat.completion.chunk","created":',
            str(created).encode(),
            b',"model":',
            orjson.dumps(model),
            b',"service_tier":"default","system_fingerprint":"fp_mock","choices":[',
        )
    )
    tail = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> Message:
        choice = {
            "index": index,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish,
        }
        return {
            "type": "http.response.body",
            "body": head + orjson.dumps(choice) + tail,
            "more_body": True,
        }

    if tool is not None:
        pieces = split_even(arguments, 3 if len(arguments) >= 3 else 2)
    elif reply and "chunks" in d and "reply" in d:
        pieces = split_reply(reply, max(d["chunks"], 1))
    else:
        pieces = WORD_PIECES.findall(reply or "")

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                _SSE,
                (b"x-request-id", f"req_{next_id()}".encode()),
                (
                    b"openai-processing-ms",
                    str(int((time.perf_counter() - started) * 1000)).encode(),
                ),
            ],
        }
    )
    for i in range(n):
        if tool is not None:
            fn = {"name": tool["name"], "arguments": ""}
            call = {"index": 0, "id": call_ids[i], "type": "function", "function": fn}
            first: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [call],
                "refusal": None,
            }
        else:
            first = {"role": "assistant", "content": "", "refusal": None}
        if d.get("first_chunk_delay"):
            await asyncio.sleep(d["first_chunk_delay"])
        if d.get("malformed"):
            await send({"type": "http.response.body", "body": b"data: {not json\n\n"})
            return
        await send(chunk(i, first))

    chunk_delay = d.get("chunk_delay")
    cut_after = d.get("cut_after")
    for k, piece in enumerate(pieces):
        if cut_after is not None and k >= cut_after:
            break
        if chunk_delay:
            await asyncio.sleep(chunk_delay)
        if tool is not None:
            delta: dict[str, Any] = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        else:
            delta = {"content": piece}
        for i in range(n):
            await send(chunk(i, delta))
    if cut_after is not None:
        # Return without more_body=False: the server drops the connection
        # mid-body, which is what a real upstream failure looks like.
        return

    if chunk_delay:
        await asyncio.sleep(chunk_delay)
    for i in range(n):
        await send(chunk(i, {}, finish_reason))
    if include_usage:
        usage_chunk = head + b'],"usage":' + orjson.dumps(usage) + b"}\n\n"
        await send({"type": "http.response.body", "body": usage_chunk, "more_body": True})
    await send({"type": "http.response.body", "body": _DONE, "more_body": False})


_ROUTES = {"/health": b"GET", "/v1/models": b"GET", "/v1/chat/completions": b"POST"}


def auth_error(headers: Headers, expected: bytes | None) -> str | None:
    """OpenAI's 401 message for the request's Bearer token, or None when it may pass."""
    token: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() == b"bearer ":
                token = value[7:].strip()
            break
    if not token:
        return (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "  # noqa: E501  (OpenAI's exact wording)
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    if expected is not None and token != expected:
        shown = token.decode("latin-1")
        return f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}."
    return None


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app; with ``api_key`` only ``Bearer <api_key>`` is let in."""
    expected = api_key.encode() if api_key else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        allowed = _ROUTES.get(path)
        if allowed is None:
            payload = error_body(f"Invalid URL ({method} {path})", "invalid_request_error")
            await send_json(send, 404, payload, started)
            return
        if method.encode() != allowed:
            payload = error_body(
                f"Invalid method for URL ({method} {path})", "invalid_request_error"
            )
            await send_json(send, 405, payload, started, [(b"allow", allowed)])
            return
        if path == "/health":
            await _send_body(send, 200, _HEALTH_BODY, started)
            return
        denied = auth_error(scope["headers"], expected)
        if denied is not None:
            await send_json(
                send,
                401,
                error_body(denied, "invalid_request_error", None, "invalid_api_key"),
                started,
            )
            return
        if path == "/v1/models":
            await _send_body(send, 200, _MODELS_BODY, started)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        request_receive.set(receive)
        try:
            await _chat(scope, raw, send, started)
        except BadRequest as exc:
            payload = error_body(exc.message, "invalid_request_error", exc.param, exc.code)
            await send_json(send, 400, payload, started)
        except OSError:
            # The client went away mid-stream; nothing left to tell it.
            return

    return app


app = create_app(os.environ.get("MOCK_API_KEY") or None)
