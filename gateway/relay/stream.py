"""Relaying an upstream SSE stream to the client, metering it on the way.

Events that arrive together are parsed and sent together (one ASGI send per upstream read,
not per event), and an event is only decoded when it carries usage: the rest pass through
as bytes. We always ask the upstream for usage; the usage chunk reaches the client (with
`cost` added) only if the client asked for it, as OpenAI would send it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson

from billing.pricing import usage_costs
from core.errors import GatewayError
from core.outcome import RequestOutcome
from core.usage import Usage, usage_estimate
from gateway.http import SSE_HEADERS
from gateway.relay.context import RelayContext
from gateway.relay.upstream import UpstreamError
from providers.catalog import Deployment
from providers.protocols.openai import usage_read

NULL_USAGE_TAIL = b',"usage":null}'


def stream_interrupted(provider: str) -> GatewayError:
    """What a client is told when the provider's stream ends before its end marker."""
    return GatewayError(
        502,
        f"{provider} ended the stream early.",
        type="server_error",
        code="upstream_stream_interrupted",
    )


def cut_stream_usage(reported: Usage | None, relayed: int, body_bytes: int) -> Usage:
    """The one rule for a stream that did not end whole, cut by the provider or left by the
    client, on every route and protocol: nothing if no content had been relayed; else the
    provider's usage as far as it reported it, with at least one output token per content
    event relayed (the provider produced at least that; Anthropic reports its output only
    at the end); with no usage at all, an estimate: ~4 request bytes per prompt token."""
    if relayed == 0:
        return Usage()
    if reported is None:
        return usage_estimate(body_bytes, relayed)
    if reported.completion_tokens < relayed:
        return replace(reported, completion_tokens=relayed)
    return reported


# A provider's own id for the model, in a JSON object's `model` field; clients see the id
# they asked for instead (as OpenRouter does), the provider's is in x-gatewayz-model.
_MODEL_FIELD = re.compile(rb'"model":\s*"(?:[^"\\]|\\.)*"')


class _ModelRenamer:
    """Rewrites a stream's `model` fields to the client's name. The provider writes the
    same field in every event, so it is found once (a regular expression over the first
    piece that has one) and then replaced as bytes: ~0.2 µs a block, never parsed."""

    __slots__ = ("_new", "_old")

    def __init__(self, model: str) -> None:
        self._new = b'"model":' + orjson.dumps(model)
        self._old: bytes | None = None

    def __call__(self, data: bytes) -> bytes:
        if self._old is None:
            found = _MODEL_FIELD.search(data)
            if found is None:
                return data
            self._old = found.group(0)
        return data.replace(self._old, self._new)


def model_renamer(model: str) -> Callable[[bytes], bytes]:
    """Rewrites the JSON `model` fields of a stream's pieces to `model`."""
    return _ModelRenamer(model)


def usage_record(outcome: RequestOutcome, usage: Usage, deployment: Deployment) -> Decimal:
    outcome.prompt_tokens = usage.prompt_tokens
    outcome.completion_tokens = usage.completion_tokens
    outcome.cached_tokens = usage.cached_tokens
    outcome.cache_write_tokens = usage.cache_write_tokens
    return outcome.charge(*usage_costs(usage, deployment))


class _Relay:
    def __init__(self, wants_usage: bool, outcome: RequestOutcome, deployment: Deployment) -> None:
        self.wants_usage = wants_usage
        self.outcome = outcome
        self.deployment = deployment
        self.usage: Usage | None = None
        # Events relayed. The first carries the role, the rest output (~a token each): what
        # a cut stream is billed for. Counted, not inspected: the fast path decodes nothing.
        self.events = 0
        self.done = False

    def event(self, data: bytes) -> bytes | None:
        """The bytes to send for one `data:` payload (None: send nothing)."""
        if data == b"[DONE]":
            self.done = True
            return None
        self.events += 1
        if b'"usage"' not in data:
            return data
        if not self.wants_usage and data.endswith(NULL_USAGE_TAIL):
            return data[: -len(NULL_USAGE_TAIL)] + b"}"  # `"usage": null` we caused
        chunk: dict[str, Any] = orjson.loads(data)
        usage = usage_read(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
            chunk["usage"]["cost"] = float(usage_record(self.outcome, usage, self.deployment))
        if self.wants_usage:
            return orjson.dumps(chunk) if usage is not None else data
        if not chunk.get("choices"):
            return None  # the usage chunk we asked for on our own behalf
        del chunk["usage"]
        return orjson.dumps(chunk)


async def relay_stream(ctx: RelayContext) -> None:
    send, body, answer, outcome, started = ctx.send, ctx.body, ctx.answer, ctx.outcome, ctx.started
    body_bytes, headers = ctx.body_bytes, ctx.headers
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    relay = _Relay(wants_usage, outcome, answer.deployment)
    renamed = model_renamer(body["model"])
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})
    pending = b""
    try:
        async for block in answer.blocks():
            *lines, pending = (pending + block).split(b"\n")
            out = []
            for line in lines:
                if line.startswith(b"data:"):  # skip comments, keep-alives, blank separators
                    payload = relay.event(line[5:].strip())
                    if payload is not None:
                        out.append(b"data: " + payload + b"\n\n")
            if out:
                if outcome.ttft_ms is None:
                    outcome.ttft_ms = (time.perf_counter() - started) * 1000
                chunk = renamed(b"".join(out))
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if relay.done:
                break
    except (*UpstreamError, orjson.JSONDecodeError):
        pass
    finally:
        answer.response.release()

    if relay.done:
        tail = b"data: [DONE]\n\n"
        if relay.usage is None:
            produced = max(relay.events - 1, 0)
            usage_record(outcome, usage_estimate(body_bytes, produced), answer.deployment)
    else:
        # Cut mid-stream: the client gets a well-formed error event, and we bill what the
        # provider produced, by the one rule for cut streams.
        error = stream_interrupted(answer.deployment.provider)
        outcome.status, outcome.error_type = 502, "upstream_stream_interrupted"
        tail = b"data: " + error.body() + b"\n\n"
        usage = cut_stream_usage(relay.usage, max(relay.events - 1, 0), body_bytes)
        usage_record(outcome, usage, answer.deployment)
    await send({"type": "http.response.body", "body": tail, "more_body": False})
