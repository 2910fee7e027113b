"""A faithful, deterministic mock of Anthropic's Messages API.

``POST /v1/messages`` and ``POST /v1/messages/count_tokens`` (plus ``GET /v1/models``
in Anthropic's shape, which the router sends here when the request carries
``anthropic-version``).

Auth is ``x-api-key: <key>``, or ``Authorization: Bearer <key>`` (the API takes both, and
recent official SDKs send the latter); a missing key is a 401 "x-api-key header is
required", a wrong one a 401 "invalid x-api-key". ``anthropic-version`` is required (400).
Every answer carries a ``request-id`` header, errors also ``x-should-retry``.

Requests are validated as the API does, with its wording: ``model``, ``max_tokens`` and a
non-empty ``messages`` list are required; roles alternate starting with ``user`` (the
mock keeps the strict rule the API had, which catches a translator's mistakes, where
today's API merges consecutive turns); every ``tool_use`` is answered by a ``tool_result``
in the next message and every ``tool_result`` answers one; a ``thinking`` block passed
back must carry the ``signature`` the mock gave it; thinking needs ``budget_tokens`` >=
1024 and < ``max_tokens``; ``tool_choice`` must fit ``tools``.

Deterministic answer:

* text: ``"You said: " + <text of the last user message>`` (its string content, or its
  text blocks joined with a single space; messages holding only tool results are
  skipped, as OpenAI's chat keeps those in messages of their own);
* ``input_tokens`` = (system prompt, if any: words + 3) + sum over messages of (words in
  its text + 3), where a message's text is its text blocks and its tool results' text
  (tools count nothing);
* prompt caching (``mockserver.prompt_cache``): when blocks carry ``cache_control`` the
  first request with a given prefix writes it (``cache_creation_input_tokens``, split by TTL
  in ``cache_creation``), a repeat reads it (``cache_read_input_tokens``), and
  ``input_tokens`` is what remains, as in the API; more than 4 marks, or a mark that is not
  ``{"type": "ephemeral"}`` with ``ttl`` "5m" or "1h", is a 400. The directive's
  ``cached_tokens`` / ``cache_creation_tokens`` override it: those figures come on top of
  ``input_tokens``;
* with thinking enabled a ``thinking`` block comes first: ``"Thinking about: " + <text>``
  (or the ``thinking`` directive), signed with ``signature`` = base64(sha256(text));
* ``output_tokens`` = words of thinking + words of text (+ words of the tool input JSON
  + 5 for a tool call);
* ``stop_sequences`` cut the text before the first one found (``stop_reason``
  "stop_sequence", ``stop_sequence`` set); ``max_tokens`` cuts it after that many
  output words (``stop_reason`` "max_tokens");
* a forced ``tool_choice`` (``any`` / ``tool``) makes a call to that tool (or the first)
  with ``{}``; ``none`` suppresses tool calls, including the directive's.

Directive keys (last user message ``!mock {...}``): those of the OpenAI mock (status,
retry_after, message, delay, reply, chunks, chunk_delay, cut_after, tool_call,
prompt_tokens -> input_tokens, completion_tokens -> output_tokens, cached_tokens ->
cache_read_input_tokens, finish_reason -> stop_reason, echo_request) plus
``cache_creation_tokens``, ``thinking`` (the thinking text; also turns thinking on),
``stream_error`` (an error type sent as ``event: error`` mid-stream) and ``error_after``
(how many content deltas precede it, default 0). ``reply`` together with ``tool_call``
gives a text block before the ``tool_use`` block.

Streams follow the documented order: ``message_start`` (usage with input tokens,
``output_tokens`` 1), then per block ``content_block_start`` / deltas /
``content_block_stop`` with a ``ping`` after the first start, ``message_delta``
(stop_reason and cumulative usage), ``message_stop``. Text is sent one word per
``text_delta`` (``chunks`` with ``reply``: exactly that many), thinking one word per
``thinking_delta`` then one ``signature_delta``, tool input as ``input_json_delta``
fragments (an empty one first, as the API does). ``cut_after`` drops the connection after
that many deltas (or before ``message_delta`` when there are fewer).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
from dataclasses import dataclass, field
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
    departure_guard,
    directive_in,
    echo_headers,
    header,
    key_matches,
    limit_text,
    next_id,
    read_body,
    request_receive,
    send_bytes,
    split_even,
    split_reply,
    tool_arguments,
    words,
)
from mockserver.prompt_cache import PrefixWalk, prompt_cache

MODELS = (
    ("echo", "Echo", "2025-01-01T00:00:00Z"),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
)
_MODELS_BODY = orjson.dumps(
    {
        "data": [
            {
                "type": "model",
                "id": m,
                "display_name": name,
                "created_at": created,
                "lifecycle": "active",
            }
            for m, name, created in MODELS
        ],
        "has_more": False,
        "first_id": MODELS[0][0],
        "last_id": MODELS[-1][0],
    }
)
_JSON = (b"content-type", b"application/json")
_SSE = (b"content-type", b"text/event-stream; charset=utf-8")

_DIRECTIVE_TYPES: DirectiveTypes = {
    **CHAT_DIRECTIVES,
    "cache_creation_tokens": (int,),
    "thinking": (str,),
    "stream_error": (str,),
    "error_after": (int,),
}

# status -> error type, as https://docs.claude.com/en/api/errors lists them; other 4xx
# are invalid_request_error ("we may also use this error type for other 4XX status
# codes") and other 5xx api_error.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# The SDKs retry what the API marks retryable; the API says so in x-should-retry.
_RETRYABLE = {408, 409, 429}

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
_THINKING_DOCS = "https://docs.claude.com/en/docs/build-with-claude/extended-thinking#max-tokens-and-context-window-size"


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.type = type_ or error_type(status)


def _invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def _request_id() -> str:
    return f"req_{next_id()}"


def error_body(type_: str, message: str, request_id: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
    )


def signature_of(thinking: str) -> str:
    """Deterministic, so a block passed back can be checked like the API checks it."""
    return base64.b64encode(hashlib.sha256(b"mock-thinking:" + thinking.encode()).digest()).decode()


async def send_error(send: Send, exc: ApiError, retry_after: int | None = None) -> None:
    rid = _request_id()
    body = error_body(exc.type, exc.message, rid)
    retry = exc.status in _RETRYABLE or exc.status >= 500
    headers = [
        _JSON,
        (b"request-id", rid.encode()),
        (b"x-should-retry", b"true" if retry else b"false"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send_bytes(send, exc.status, body, headers)


async def _send_json(send: Send, body: bytes) -> None:
    await send_bytes(send, 200, body, [_JSON, (b"request-id", _request_id().encode())])


# ---------------------------------------------------------------- validation


@dataclass
class _Request:
    body: dict[str, Any]
    model: str
    max_tokens: int
    prompt_tokens: int
    last_user: str
    stop_sequences: list[str]
    thinking: bool
    tools: list[str]
    tool_choice: str
    forced_tool: str | None
    directive: dict[str, Any] = field(default_factory=dict)
    cache: PrefixWalk | None = None  # the prompt's blocks, when one carries cache_control


def _said(blocks: list[dict[str, Any]]) -> str:
    """What the user said: the text blocks (a tool result is not the user speaking, as in
    OpenAI's chat, where it is a message of its own)."""
    return " ".join(b["text"] for b in blocks if b["type"] == "text")


def _text_of_blocks(blocks: list[dict[str, Any]]) -> str:
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
        raise _invalid(f"{where}: Input should be a valid dictionary or object")
    type_ = block.get("type")
    if type_ not in _BLOCK_TYPES:
        tags = ", ".join(f"'{t}'" for t in _BLOCK_TYPES)
        raise _invalid(
            f"{where}: Input tag '{type_}' found using 'type' does not match any of the expected tags: {tags}"  # noqa: E501
        )
    if type_ == "text":
        if not isinstance(block.get("text"), str):
            raise _invalid(f"{where}.text.text: Field required")
        if not block["text"]:
            raise _invalid("messages: text content blocks must be non-empty")
    elif type_ == "image":
        source = block.get("source")
        kind = source.get("type") if isinstance(source, dict) else None
        if kind not in ("base64", "url", "file"):
            raise _invalid(
                f"{where}.image.source: Input tag '{kind}' found using 'type' does not match any of the expected tags: 'base64', 'url', 'file'"  # noqa: E501
            )
        assert isinstance(source, dict)
        if source["type"] == "base64":
            if source.get("media_type") not in _IMAGE_TYPES:
                raise _invalid(
                    f"{where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'"  # noqa: E501
                )
            if not isinstance(source.get("data"), str):
                raise _invalid(f"{where}.image.source.base64.data: Field required")
    elif type_ == "tool_use":
        for key, kind in (("id", str), ("name", str), ("input", dict)):
            if not isinstance(block.get(key), kind):
                raise _invalid(f"{where}.tool_use.{key}: Field required")
    elif type_ == "tool_result":
        if not isinstance(block.get("tool_use_id"), str):
            raise _invalid(f"{where}.tool_result.tool_use_id: Field required")
    elif type_ == "thinking":
        thinking, signature = block.get("thinking"), block.get("signature")
        if not isinstance(thinking, str) or not isinstance(signature, str):
            raise _invalid(f"{where}.thinking.signature: Field required")
        if role == "assistant" and signature != signature_of(thinking):
            raise _invalid(f"{where}: Invalid `signature` in `thinking` block")
    return block


def _check_messages(messages: object) -> tuple[int, str]:
    """Validates ``messages``; returns their token count and the last user text."""
    if messages is None:
        raise _invalid("messages: Field required")
    if not isinstance(messages, list):
        raise _invalid("messages: Input should be a valid list")
    if not messages:
        raise _invalid("messages: at least one message is required")
    tokens, last_user = 0, ""
    prev_role: str | None = None
    pending_tool_ids: list[str] = []
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise _invalid(f"messages.{i}: Input should be a valid dictionary or object")
        role = msg.get("role")
        if role not in ("user", "assistant"):
            raise _invalid(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if prev_role is None and role != "user":
            raise _invalid('messages: first message must use the "user" role')
        if role == prev_role:
            raise _invalid(
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
            raise _invalid(f"messages.{i}.content: Input should be a valid string or list")
        if not blocks and not (role == "assistant" and i == len(messages) - 1):
            raise _invalid(
                f"messages.{i}: all messages must have non-empty content except for the optional final assistant message"  # noqa: E501
            )
        results = [b["tool_use_id"] for b in blocks if b["type"] == "tool_result"]
        for j, block in enumerate(blocks):
            if block["type"] == "tool_result" and block["tool_use_id"] not in pending_tool_ids:
                raise _invalid(
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` blocks: {block['tool_use_id']}. Each `tool_result` block must have a corresponding `tool_use` block in the previous message."  # noqa: E501
                )
        missing = [tid for tid in pending_tool_ids if tid not in results]
        if missing:
            raise _invalid(
                f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks immediately after: {', '.join(missing)}. Each `tool_use` block must have a corresponding `tool_result` block in the next message."  # noqa: E501
            )
        pending_tool_ids = [b["id"] for b in blocks if b["type"] == "tool_use"]
        text = content if isinstance(content, str) else _text_of_blocks(blocks)
        tokens += words(text) + 3
        said = content if isinstance(content, str) else _said(blocks)
        if role == "user" and said:
            last_user = said
        prev_role = role
    return tokens, last_user


def _system_text(system: object) -> str | None:
    if system is None:
        return None
    if isinstance(system, str):
        return system
    if isinstance(system, list):
        parts = []
        for i, block in enumerate(system):
            if (
                not isinstance(block, dict)
                or block.get("type") != "text"
                or not isinstance(block.get("text"), str)
            ):
                raise _invalid(f"system.{i}: Input should be a valid text block")
            parts.append(block["text"])
        return " ".join(parts)
    raise _invalid("system: Input should be a valid string or list")


def _check_tools(body: dict[str, Any], thinking: bool) -> tuple[list[str], str, str | None]:
    """Returns the tool names, the tool_choice type and the tool a choice forces."""
    tools = body.get("tools")
    names: list[str] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise _invalid("tools: Input should be a valid list")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise _invalid(f"tools.{i}.custom.name: Field required")
            # Server tools (web_search_…, bash_…) have a versioned type and no schema.
            if tool.get("type", "custom") == "custom" and not isinstance(
                tool.get("input_schema"), dict
            ):
                raise _invalid(f"tools.{i}.custom.input_schema: Field required")
            names.append(tool["name"])
        if len(set(names)) != len(names):
            raise _invalid("tools: Tool names must be unique.")
    choice = body.get("tool_choice")
    if choice is None:
        return names, "auto", None
    type_ = choice.get("type") if isinstance(choice, dict) else None
    if type_ not in ("auto", "any", "tool", "none"):
        raise _invalid(
            f"tool_choice: Input tag '{type_}' found using 'type' does not match any of the expected tags: 'auto', 'any', 'tool', 'none'"  # noqa: E501
        )
    if type_ != "none" and not names:
        raise _invalid("tool_choice: tool_choice may only be specified while providing tools.")
    forced = None
    if type_ == "tool":
        forced = choice.get("name")
        if not isinstance(forced, str):
            raise _invalid("tool_choice.tool.name: Field required")
        if forced not in names:
            raise _invalid(f"tool_choice.tool.name: Tool '{forced}' not found in tools")
    elif type_ == "any":
        forced = names[0]
    if thinking and forced is not None:
        raise _invalid("Thinking may not be enabled when tool_choice forces tool use.")
    return names, type_, forced


def _check_thinking(body: dict[str, Any], max_tokens: int | None) -> bool:
    thinking = body.get("thinking")
    if thinking is None:
        return False
    type_ = thinking.get("type") if isinstance(thinking, dict) else None
    if type_ == "disabled":
        return False
    if type_ == "adaptive":
        return True
    if type_ != "enabled":
        raise _invalid(
            f"thinking: Input tag '{type_}' found using 'type' does not match any of the expected tags: 'enabled', 'disabled', 'adaptive'"  # noqa: E501
        )
    budget = thinking.get("budget_tokens")
    if not isinstance(budget, int) or isinstance(budget, bool):
        raise _invalid("thinking.enabled.budget_tokens: Field required")
    if budget < 1024:
        raise _invalid(
            "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
        )
    if max_tokens is not None and budget >= max_tokens:
        raise _invalid(
            f"`max_tokens` must be greater than `thinking.budget_tokens`. Please consult our documentation at {_THINKING_DOCS}"  # noqa: E501
        )
    temperature = body.get("temperature")
    if temperature is not None and temperature != 1:
        raise _invalid("`temperature` may only be set to 1 when thinking is enabled.")
    return True


_MAX_MARKS = 4


def _check_mark(block: dict[str, Any], where: str) -> None:
    mark = block.get("cache_control")
    if mark is None:
        return
    if not isinstance(mark, dict) or mark.get("type") != "ephemeral":
        raise _invalid(f"{where}.cache_control.ephemeral.type: Input should be 'ephemeral'")
    if mark.get("ttl", "5m") not in ("5m", "1h"):
        raise _invalid(f"{where}.cache_control.ephemeral.ttl: Input should be '5m' or '1h'")


def _cache_walk(body: dict[str, Any], model: str) -> PrefixWalk | None:
    """The prompt's blocks in the API's order (tools, system, messages), each with its tokens
    under the counting rule of the module docstring; None when no block is marked."""
    walk = PrefixWalk(model)

    def block(item: dict[str, Any], tokens: int, where: str) -> None:
        _check_mark(item, where)
        walk.block(item, tokens)

    for i, tool in enumerate(body.get("tools") or []):
        block(tool, 0, f"tools.{i}")
    system = body.get("system")
    if isinstance(system, str):
        walk.block({"type": "text", "text": system}, words(system) + 3)
    elif isinstance(system, list):
        walk.overhead("system", 3)
        for i, item in enumerate(system):
            block(item, words(item["text"]), f"system.{i}")
    for i, message in enumerate(body["messages"]):
        walk.overhead(message["role"], 3)
        content = message.get("content")
        if isinstance(content, str):
            walk.block({"type": "text", "text": content}, words(content))
            continue
        for j, item in enumerate(content):
            block(item, words(_text_of_blocks([item])), f"messages.{i}.content.{j}")
    if walk.marks > _MAX_MARKS:
        raise _invalid(
            f"A maximum of {_MAX_MARKS} blocks with cache_control may be provided. "
            f"Found {walk.marks}."
        )
    return walk if walk.marks else None


def parse_request(raw: bytes, count_only: bool = False) -> _Request:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _invalid(f"There was an error parsing the body: {exc}") from None
    if not isinstance(body, dict):
        raise _invalid("Input should be a valid dictionary or object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _invalid("model: Field required")
    max_tokens = body.get("max_tokens")
    if not count_only:
        if max_tokens is None:
            raise _invalid("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
            raise _invalid("max_tokens: Input should be a valid integer")
        if max_tokens < 1:
            raise _invalid("max_tokens: Input should be greater than or equal to 1")
    prompt_tokens, last_user = _check_messages(body.get("messages"))
    system = _system_text(body.get("system"))
    if system is not None:
        prompt_tokens += words(system) + 3
    stops = body.get("stop_sequences") or []
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise _invalid("stop_sequences: Input should be a valid list of strings")
    temperature = body.get("temperature")
    if temperature is not None and (
        not isinstance(temperature, int | float) or not 0 <= temperature <= 1
    ):
        raise _invalid("temperature: Input should be less than or equal to 1")
    thinking = _check_thinking(body, None if count_only else max_tokens)
    tools, choice, forced = _check_tools(body, thinking)
    try:
        directive = directive_in(last_user, _DIRECTIVE_TYPES)
    except DirectiveError as exc:
        raise _invalid(str(exc)) from None
    return _Request(
        body=body,
        model=model,
        max_tokens=max_tokens if isinstance(max_tokens, int) else 0,
        prompt_tokens=prompt_tokens,
        last_user=last_user,
        stop_sequences=stops,
        thinking=thinking or "thinking" in directive,
        tools=tools,
        tool_choice=choice,
        forced_tool=forced,
        directive=directive,
        cache=_cache_walk(body, model) if b'"cache_control"' in raw else None,
    )


# ------------------------------------------------------------------- answers


@dataclass
class _Answer:
    thinking: str | None
    text: str | None
    tool: tuple[str, str, dict[str, Any], str] | None  # id, name, input, input JSON
    stop_reason: str
    stop_sequence: str | None
    usage: dict[str, Any]


def _answer(req: _Request, scope: Scope) -> _Answer:
    d = req.directive
    tool = None
    tool_call = d.get("tool_call")
    if tool_call is None and req.forced_tool is not None:
        tool_call = {"name": req.forced_tool, "arguments": {}}
    if tool_call is not None and req.tool_choice != "none":
        try:
            args, args_json = tool_arguments(tool_call)
        except DirectiveError as exc:
            raise _invalid(str(exc)) from None
        tool = (f"toolu_{os.urandom(12).hex()}", tool_call["name"], args, args_json)

    if d.get("echo_request"):
        text: str | None = orjson.dumps({"headers": echo_headers(scope), "body": req.body}).decode()
    elif "reply" in d:
        text = d["reply"]
    elif "chunks" in d:
        text = " ".join(f"w{i}" for i in range(d["chunks"]))
    else:
        text = "You said: " + req.last_user
    if tool is not None and "reply" not in d:
        text = None

    thinking = None
    if req.thinking:
        thinking = d.get("thinking", "Thinking about: " + req.last_user)
    budget = req.max_tokens - (words(thinking) if thinking else 0)
    stop_reason, stop_sequence = "end_turn", None
    if thinking is not None and budget < 0:
        thinking, text, tool, stop_reason = (
            limit_text(thinking, (), req.max_tokens)[0],
            "",
            None,
            "max_tokens",
        )
    elif text is not None:
        text, hit = limit_text(text, req.stop_sequences, budget)
        if hit == "":
            stop_reason, tool = "max_tokens", None
        elif hit is not None:
            stop_reason, stop_sequence, tool = "stop_sequence", hit, None
    if tool is not None:
        stop_reason = "tool_use"

    output = (words(thinking) if thinking else 0) + (words(text) if text else 0)
    if tool is not None:
        output += words(tool[3]) + 5
    creation, read, creation_1h = d.get("cache_creation_tokens", 0), d.get("cached_tokens", 0), 0
    fresh = d.get("prompt_tokens", req.prompt_tokens)
    if req.cache is not None and not {"cache_creation_tokens", "cached_tokens"} & d.keys():
        # Marked blocks: the prompt cache decides (a directive's figures win, for tests).
        cached = prompt_cache.settle(req.cache)
        creation, read, creation_1h = cached.write, cached.read, cached.write_1h
        fresh = max(fresh - read - creation, 0)  # input_tokens leaves the cached part out
    usage = {
        "input_tokens": fresh,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": creation - creation_1h,
            "ephemeral_1h_input_tokens": creation_1h,
        },
        "output_tokens": d.get("completion_tokens", output),
        "service_tier": "standard",
    }
    return _Answer(thinking, text, tool, d.get("finish_reason", stop_reason), stop_sequence, usage)


def _blocks(answer: _Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.thinking is not None:
        blocks.append(
            {
                "type": "thinking",
                "thinking": answer.thinking,
                "signature": signature_of(answer.thinking),
            }
        )
    if answer.text is not None:
        blocks.append({"type": "text", "text": answer.text})
    if answer.tool is not None:
        tid, name, args, _ = answer.tool
        blocks.append({"type": "tool_use", "id": tid, "name": name, "input": args})
    return blocks


def _message(
    req: _Request, answer: _Answer, content: list[dict[str, Any]], usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": f"msg_{next_id()}",
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
        "usage": usage,
    }


def _event(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http.response.body",
        "body": b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n",
        "more_body": True,
    }


def _deltas(
    req: _Request, answer: _Answer
) -> list[tuple[int, dict[str, Any] | None, dict[str, Any]]]:
    """The stream's content as (block index, block to start or None, delta) steps;
    a step with an empty delta closes its block."""
    d = req.directive
    steps: list[tuple[int, dict[str, Any] | None, dict[str, Any]]] = []
    index = 0
    if answer.thinking is not None:
        steps.append((index, {"type": "thinking", "thinking": "", "signature": ""}, {}))
        for piece in WORD_PIECES.findall(answer.thinking):
            steps.append((index, None, {"type": "thinking_delta", "thinking": piece}))
        steps.append(
            (index, None, {"type": "signature_delta", "signature": signature_of(answer.thinking)})
        )
        index += 1
    if answer.text is not None:
        steps.append((index, {"type": "text", "text": ""}, {}))
        if answer.text and "chunks" in d and "reply" in d:
            pieces = split_reply(answer.text, max(d["chunks"], 1))
        else:
            pieces = WORD_PIECES.findall(answer.text)
        for piece in pieces:
            steps.append((index, None, {"type": "text_delta", "text": piece}))
        index += 1
    if answer.tool is not None:
        tid, name, _, args_json = answer.tool
        steps.append((index, {"type": "tool_use", "id": tid, "name": name, "input": {}}, {}))
        pieces = ["", *split_even(args_json, 3 if len(args_json) >= 3 else 1)]
        for piece in pieces:
            steps.append((index, None, {"type": "input_json_delta", "partial_json": piece}))
    return steps


async def _stream(send: Send, req: _Request, answer: _Answer) -> None:
    d = req.directive
    send = departure_guard(d, send)
    rid = _request_id()
    headers = [_SSE, (b"request-id", rid.encode()), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    usage = answer.usage
    start_usage = {**usage, "output_tokens": 1}
    start = _message(req, answer, [], start_usage)
    start["stop_reason"] = start["stop_sequence"] = None
    await send(_event("message_start", {"type": "message_start", "message": start}))

    chunk_delay, cut_after = d.get("chunk_delay"), d.get("cut_after")
    stream_error, error_after = d.get("stream_error"), d.get("error_after", 0)
    sent, pinged, open_block = 0, False, -1
    for index, block, delta in _deltas(req, answer):
        if block is not None:
            if open_block >= 0:
                await send(
                    _event(
                        "content_block_stop", {"type": "content_block_stop", "index": open_block}
                    )
                )
            await send(
                _event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
            open_block = index
            if not pinged:
                await send(_event("ping", {"type": "ping"}))
                pinged = True
            continue
        if stream_error is not None and sent >= error_after:
            break
        if cut_after is not None and sent >= cut_after:
            # Return without more_body=False: the server drops the connection
            # mid-body, which is what a real upstream failure looks like.
            return
        if chunk_delay:
            await asyncio.sleep(chunk_delay)
        await send(
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        )
        sent += 1
    if stream_error is not None:
        message = d.get("message", f"mock fault {stream_error}")
        error = {
            "type": "error",
            "error": {"type": stream_error, "message": message},
            "request_id": rid,
        }
        last = _event("error", error)
        await send({**last, "more_body": False})
        return
    if cut_after is not None:
        # Even past the last delta: a cut stream never ends cleanly.
        return
    if open_block >= 0:
        await send(
            _event("content_block_stop", {"type": "content_block_stop", "index": open_block})
        )
    delta_usage = {
        k: usage[k]
        for k in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    }
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence},
        "usage": delta_usage,
    }
    await send(_event("message_delta", message_delta))
    last = _event("message_stop", {"type": "message_stop"})
    await send({**last, "more_body": False})


async def _fault(send: Send, d: dict[str, Any]) -> bool:
    """Applies ``delay`` and ``status``; True when the answer was an error."""
    if "delay" in d:
        await asyncio.sleep(d["delay"])
    status = d.get("status")
    if status is None:
        return False
    await send_error(
        send, ApiError(status, d.get("message", f"mock fault {status}")), d.get("retry_after")
    )
    return True


async def messages(scope: Scope, raw: bytes, send: Send) -> None:
    req = parse_request(raw)
    if await _fault(send, req.directive):
        return
    answer = _answer(req, scope)
    if req.body.get("stream") is True:
        await _stream(send, req, answer)
        return
    await _send_json(send, orjson.dumps(_message(req, answer, _blocks(answer), answer.usage)))


async def count_tokens(raw: bytes, send: Send) -> None:
    req = parse_request(raw, count_only=True)
    if await _fault(send, req.directive):
        return
    tokens = req.directive.get("prompt_tokens", req.prompt_tokens)
    await _send_json(send, orjson.dumps({"input_tokens": tokens}))


# ------------------------------------------------------------------------ app


_ROUTES = {"/v1/messages": b"POST", "/v1/messages/count_tokens": b"POST", "/v1/models": b"GET"}


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app; with ``api_key`` only that key is let in."""
    expected = api_key.encode() if api_key else None

    def auth_error(scope: Scope) -> str | None:
        token = header(scope, b"x-api-key")
        if not token:
            bearer = header(scope, b"authorization")
            if bearer is not None and bearer[:7].lower() == b"bearer ":
                token = bearer[7:].strip()
        if not token:
            return "x-api-key header is required"
        if not key_matches(token, expected):
            return "invalid x-api-key"
        return None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        allowed = _ROUTES.get(path)
        if allowed is None:
            await send_error(send, ApiError(404, f"Not found: {path}"))
            return
        if scope["method"].encode() != allowed:
            await send_error(send, ApiError(405, f"Method Not Allowed: {scope['method']} {path}"))
            return
        denied = auth_error(scope)
        if denied is not None:
            await send_error(send, ApiError(401, denied))
            return
        if header(scope, b"anthropic-version") is None:
            await send_error(send, _invalid("anthropic-version: header is required"))
            return
        if path == "/v1/models":
            await _send_json(send, _MODELS_BODY)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        request_receive.set(receive)
        try:
            if path == "/v1/messages":
                await messages(scope, raw, send)
            else:
                await count_tokens(raw, send)
        except ApiError as exc:
            await send_error(send, exc)
        except OSError:
            # The client went away mid-stream; nothing left to tell it.
            return

    return app
