"""Plumbing shared by the mock's protocol modules; no provider's wire format lives here.

Every protocol follows the same deterministic rules (each module's docstring states
how they map onto its fields):

* the reply is ``"You said: " + <text of the last user message>`` (tool results are not
  the user speaking: OpenAI's chat keeps them in messages of their own);
* a prompt costs, per message (a system prompt counts as one), the words in its text
  plus 3, so one conversation costs the same in every protocol;
* a completion costs the words in the reply; a tool call the words in its arguments
  JSON plus 5.

Faults are switched per request by a last user message (or prompt / input) of the
form ``!mock {"json": "object"}``; ``parse_directive`` checks it against the
module's key -> types table and raises ``DirectiveError`` (which each module answers
as its provider's 400) for an unknown key or a wrong type, so typos fail loudly.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote_plus

import orjson

# MutableMapping (not dict) so the apps type-check against servers' ASGI types.
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
DirectiveTypes = dict[str, tuple[type, ...]]

# The directive keys every chat protocol's mock takes (key -> accepted types); each protocol
# adds its own. Unknown keys are refused so a typo in a test fails loudly.
CHAT_DIRECTIVES: DirectiveTypes = {
    "status": (int,),
    "retry_after": (int,),
    "message": (str,),
    "delay": (int, float),
    "reply": (str,),
    "chunks": (int,),
    "chunk_delay": (int, float),
    "cut_after": (int,),
    "tool_call": (dict,),
    "prompt_tokens": (int,),
    "completion_tokens": (int,),
    "cached_tokens": (int,),
    "finish_reason": (str,),
    "echo_request": (bool,),
    "malformed": (bool,),
    "first_chunk_delay": (int, float),
    "only_model": (str,),
    "times": (int,),
    "key": (str,),
    "watch": (str,),
}

# A directive's faults, as opposed to what shapes a normal answer. `only_model` (the upstream
# model id a fault is meant for) and `times` with `key` (only the first `times` requests with
# that key fail) let one request path meet a failing provider and a healthy one, or a
# provider that fails and then recovers: what failover, retry and breaker tests need.
FAULT_KEYS = frozenset(
    {"status", "retry_after", "message", "delay", "malformed", "first_chunk_delay", "cut_after"}
)
_faults_served: dict[str, int] = {}

MOCK_PREFIX = "!mock "
# Keeps each piece's leading whitespace so that "".join(pieces) == text.
WORD_PIECES = re.compile(r"\s*\S+|\s+")

# Ids only need to be unique, not secret: a random per-process prefix plus a
# counter is cheaper than a syscall per request.
_ID_PREFIX = os.urandom(6).hex()
_counter = itertools.count(1)


class DirectiveError(Exception):
    """A malformed ``!mock`` directive; each protocol answers it as its own 400."""


def next_id() -> str:
    return f"{_ID_PREFIX}{next(_counter):012x}"


def words(text: str) -> int:
    return len(text.split())


def split_even(text: str, n: int) -> list[str]:
    # Exactly n pieces (some possibly empty) so chunk counts stay predictable.
    size = len(text)
    return [text[i * size // n : (i + 1) * size // n] for i in range(n)]


def split_reply(text: str, n: int) -> list[str]:
    # Whole words per chunk when there are enough of them (as a tokenizer
    # would); otherwise characters, still yielding exactly n chunks.
    pieces = WORD_PIECES.findall(text)
    if len(pieces) < n:
        return split_even(text, n)
    return ["".join(pieces[i * len(pieces) // n : (i + 1) * len(pieces) // n]) for i in range(n)]


def first_words(text: str, n: int) -> str:
    """The text up to and including its n-th word (what a token budget of n lets out)."""
    kept: list[str] = []
    for piece in WORD_PIECES.findall(text):
        if n <= 0:
            break
        kept.append(piece)
        if piece.strip():
            n -= 1
    return "".join(kept)


def limit_text(text: str, stop_sequences: Iterable[str], budget: int) -> tuple[str, str | None]:
    """Cuts a reply as a model would: before the first stop sequence, or after
    ``budget`` words. Returns the text and the stop sequence (or "" for the budget,
    None when neither applied)."""
    cut, hit = len(text), None
    for seq in stop_sequences:
        i = text.find(seq) if seq else -1
        if i != -1 and i < cut:
            cut, hit = i, seq
    text = text[:cut]
    if words(text) > budget:
        return first_words(text, max(budget, 0)), ""
    return text, hit


def parse_directive(text: str, types: DirectiveTypes) -> dict[str, Any]:
    try:
        directive = orjson.loads(text[len(MOCK_PREFIX) :])
    except orjson.JSONDecodeError as exc:
        raise DirectiveError(f"Invalid !mock directive: {exc}") from None
    if not isinstance(directive, dict):
        raise DirectiveError("Invalid !mock directive: expected a JSON object.")
    for key, value in directive.items():
        accepted = types.get(key)
        if accepted is None:
            raise DirectiveError(f"Invalid !mock directive: unknown key {key!r}.")
        # bool is an int subclass: only accept it where bool is listed.
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            raise DirectiveError(f"Invalid !mock directive: bad value for {key!r}.")
    status = directive.get("status")
    if status is not None and not 400 <= status <= 599:
        raise DirectiveError("Invalid !mock directive: status must be 400-599.")
    tool = directive.get("tool_call")
    if tool is not None and not isinstance(tool.get("name"), str):
        raise DirectiveError("Invalid !mock directive: tool_call.name must be a string.")
    return directive


def fault_scope(directive: dict[str, Any], model: str) -> dict[str, Any]:
    """The directive as it applies to a request for `model`: without its faults when they are
    meant for another model, or when their `times` for the `key` have been served."""
    applies = directive.get("only_model", model) == model
    if applies and "times" in directive:
        key = directive.get("key", "")
        served = _faults_served.get(key, 0)
        applies = served < directive["times"]
        _faults_served[key] = served + 1
    if applies:
        return directive
    return {k: v for k, v in directive.items() if k not in FAULT_KEYS}


def directive_in(text: str, types: DirectiveTypes) -> dict[str, Any]:
    return parse_directive(text, types) if text.startswith(MOCK_PREFIX) else {}


def tool_arguments(tool: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """A ``tool_call`` directive's arguments as an object and as compact JSON."""
    args = tool.get("arguments", {})
    if isinstance(args, str):
        try:
            parsed = orjson.loads(args) if args else {}
        except orjson.JSONDecodeError:
            raise DirectiveError(
                "Invalid !mock directive: tool_call.arguments is not JSON."
            ) from None
        if not isinstance(parsed, dict):
            raise DirectiveError("Invalid !mock directive: tool_call.arguments must be an object.")
        return parsed, args
    if not isinstance(args, dict):
        raise DirectiveError("Invalid !mock directive: tool_call.arguments must be an object.")
    return args, orjson.dumps(args).decode()


def header(scope: Scope, name: bytes) -> bytes | None:
    """The first value of a request header (``name`` lower-case)."""
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


def echo_headers(scope: Scope) -> dict[str, str]:
    headers: dict[str, str] = {}
    for k, v in scope["headers"]:
        name, value = k.decode("latin-1").lower(), v.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def query_param(scope: Scope, name: str) -> str | None:
    raw: bytes = scope.get("query_string") or b""
    for pair in raw.decode("latin-1").split("&"):
        key, _, value = pair.partition("=")
        if key == name:
            return unquote_plus(value)
    return None


def base_url(scope: Scope) -> str:
    """This server's URL as the client addressed it, for URLs that point back at it."""
    host = header(scope, b"host")
    if host is None:
        server = scope.get("server") or ("127.0.0.1", 80)
        return f"{scope.get('scheme', 'http')}://{server[0]}:{server[1]}"
    return f"{scope.get('scheme', 'http')}://{host.decode('latin-1')}"


async def read_body(receive: Receive) -> bytes | None:
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return parts[0] if len(parts) == 1 else b"".join(parts)


async def send_bytes(
    send: Send, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]]
) -> None:
    head: Headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


async def lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def key_matches(token: bytes | None, expected: bytes | None) -> bool:
    """A configured key must match exactly; without one any non-empty key is let in."""
    return bool(token) and (expected is None or token == expected)


# A client that leaves mid-answer. A real provider stops generating when its client closes
# the connection; the mock does too when a request's directive names a `watch` tag, and
# records how far it got, for tests to read at GET /mock/departures/<tag>.
request_receive: ContextVar[Receive | None] = ContextVar("request_receive", default=None)
departures: dict[str, Departure] = {}


class Departure:
    def __init__(self, tag: str, receive: Receive) -> None:
        self.gone = False  # the client closed before the answer was whole
        self.sent = 0  # body messages sent before then
        self.finished = False
        departures[tag] = self
        self._task = asyncio.ensure_future(self._watch(receive))

    async def _watch(self, receive: Receive) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self.finished:
            self.gone = True

    def guard(self, send: Send) -> Send:
        async def guarded(message: Message) -> None:
            if self.gone:
                raise OSError("the client went away")  # the provider stops here
            if message["type"] == "http.response.body":
                self.sent += 1
                if not message.get("more_body", False):
                    self.finished = True
            await send(message)

        return guarded

    def view(self) -> dict[str, Any]:
        return {"gone": self.gone, "sent": self.sent, "finished": self.finished}


def departure_guard(directive: dict[str, Any], send: Send) -> Send:
    """`send`, watched for the client leaving when the directive asks for it."""
    tag = directive.get("watch")
    receive = request_receive.get()
    if not tag or receive is None:
        return send
    return Departure(tag, receive).guard(send)
