"""One attempt at one deployment: the upstream request, and the answer taken (its JSON body
or its first stream block read, so that a failure there can still fail over) or why it
failed. gateway.relay.upstream_call tries a route's deployments with these."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from core.errors import GatewayError, UpstreamFailure
from gateway.relay.upstream import UpstreamError, upstream_session, upstream_timeout
from providers.catalog import CatalogModel, Deployment
from providers.protocols.base import UpstreamRequest
from providers.upstream_errors import upstream_failure


@dataclass(slots=True)
class UpstreamAnswer:
    deployment: Deployment
    response: aiohttp.ClientResponse  # opened; see `body` and `first`
    latency_ms: float  # until the upstream's headers arrived
    model: CatalogModel | None = None  # the model that served (one of the request's `models`)
    # Read before the answer was taken, so that a failure there could still fail over: a
    # JSON answer's whole body, or a stream's first block.
    body: bytes = b""
    first: bytes = b""
    data: dict[str, Any] | None = None  # `body`, parsed

    async def blocks(self) -> AsyncIterator[bytes]:
        """A stream's bytes as they arrive, starting with the block already read."""
        if self.first:
            yield self.first
        content = self.response.content
        try:
            async for block in content.iter_any():
                yield block
        except UpstreamError:
            # When the connection breaks, aiohttp raises at once and drops what it had
            # buffered; that was produced before the cut, so it is the client's (and billed).
            rest = b"".join(getattr(content, "_buffer", ()))
            if rest:
                yield rest
            raise


@dataclass(slots=True)
class Failed:
    error: GatewayError
    transient: bool  # worth another try on the same deployment after a pause
    retry_after: float | None = None  # what the provider asked for


def _transient(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from APIs, and not worth a clock comparison
    return seconds if 0 <= seconds < 1e6 else None


def attempt_record(
    deployment: Deployment, model: str, status: int, ms: float, error: GatewayError | None = None
) -> dict:
    record = {
        "provider": deployment.provider,
        "model": model,
        "status": status,
        "latency_ms": round(ms, 1),
        "error": (error.code or "") if error is not None else "",
    }
    if isinstance(error, UpstreamFailure) and error.detail:
        record["detail"] = error.detail[:1000]  # the provider's own words, for staff
    if deployment.byok:
        record["byok"] = True
    return record


async def try_deployment(
    deployment: Deployment, model_id: str, request: UpstreamRequest, stream: bool
) -> tuple[UpstreamAnswer | Failed, int]:
    """One attempt: the answer (with its body or first block read), or why it failed, and the
    provider's status (0: it never answered). Bounded by the provider's timeouts alone: a
    non-stream answer's headers come only once it is written, which may take minutes."""
    url, headers, payload = request
    timeout = upstream_timeout(deployment.connect_timeout, deployment.read_timeout)
    started = time.perf_counter()
    response: aiohttp.ClientResponse | None = None
    try:
        response = await upstream_session().post(
            url, data=payload, headers=headers, timeout=timeout
        )
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            body = await _error_body(response)
            failure = upstream_failure(
                response.status, deployment, model_id, body, response.headers
            )
            transient = _transient(response.status) and failure.code != "upstream_rejected"
            retry_after = _retry_after(response.headers) if response.status == 429 else None
            return Failed(failure, transient, retry_after), response.status
        answer = UpstreamAnswer(deployment, response, latency_ms)
        if stream:
            answer.first = await response.content.readany()
            if not answer.first:
                raise aiohttp.ClientPayloadError("the stream ended before any event")
            _first_event_check(answer.first)
        else:
            answer.body = await response.read()
            answer.data = orjson.loads(answer.body)
            if not isinstance(answer.data, dict):
                raise ValueError("not a JSON object")
        return answer, 200
    except TimeoutError:
        error = GatewayError(
            504,
            f"{deployment.provider} did not answer in time.",
            type="server_error",
            code="upstream_timeout",
        )
    except (aiohttp.ClientError, ValueError):
        answered = response is not None
        error = GatewayError(
            502 if answered else 503,
            f"{deployment.provider} sent an incomplete or invalid response."
            if answered
            else f"{deployment.provider} could not be reached.",
            type="server_error",
            code="upstream_invalid_response" if answered else "upstream_unavailable",
        )
    if response is not None:
        response.release()
    return Failed(error, True), response.status if response is not None else 0


def _first_event_check(block: bytes) -> None:
    """Raises ValueError if the stream's first whole event is not JSON: a provider sending
    garbage is failed over while nothing has reached the client. (Later events are relayed
    as they come: parsing each would cost the fast path.)"""
    at = block.find(b"data:")
    end = block.find(b"\n", at)
    if at < 0 or end < 0:
        return  # no whole event in this block yet
    payload = block[at + 5 : end].strip()
    if payload != b"[DONE]":
        orjson.loads(payload)


async def _error_body(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.read()
    except UpstreamError:
        return b""
    finally:
        response.release()
