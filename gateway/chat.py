"""POST /v1/chat/completions: authenticate, validate, resolve, admit, call, relay, settle."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings

from accounts.keycache import KeyIdentity
from billing.pricing import hold_amount
from billing.services import InsufficientCredit
from gateway.auth import authenticate
from gateway.credit import credit_gate
from gateway.errors import GatewayError, not_found
from gateway.http import (
    JSON_HEADERS,
    ClientGone,
    Receive,
    Scope,
    Send,
    read_body,
    send_bytes,
    send_error,
)
from gateway.ids import request_id_new
from gateway.relay_stream import relay_stream, usage_estimate, usage_record
from gateway.upstream import UpstreamError
from gateway.upstream_call import UpstreamAnswer, chat_call
from gateway.validation import chat_body_parse, requested_output_tokens
from monitoring.services import RequestOutcome
from providers.adapters.openai import usage_read
from providers.catalog import CatalogModel, catalog_holder

ENDPOINT = "chat.completions"
log = logging.getLogger(__name__)


def _ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000


def _max_output_tokens(body: dict[str, Any], model: CatalogModel) -> int:
    asked = requested_output_tokens(body)
    cap = model.max_output_tokens or settings.GATEWAYZ_DEFAULT_MAX_OUTPUT_TOKENS
    # What the client asked for is forwarded as is, so that is what may be produced (and
    # charged); the model's cap only stands in when the client set no limit.
    return (asked or cap) * int(body.get("n") or 1)


async def _admit(identity: KeyIdentity, request_id: str, amount: Decimal) -> None:
    try:
        await credit_gate().admit(user_id=identity.user_id, request_id=request_id, amount=amount)
    except InsufficientCredit:
        raise GatewayError(
            402,
            "Your credit balance cannot cover this request. Add credits, or lower max_tokens.",
            type="insufficient_credits",
            code="insufficient_credits",
        ) from None


async def chat_completions(scope: Scope, receive: Receive, send: Send) -> None:
    started = time.perf_counter()
    request_id = request_id_new()
    id_header = [(b"x-request-id", request_id.encode())]
    try:
        identity = await authenticate(scope)
    except GatewayError as error:
        await send_error(send, error, id_header)
        return

    outcome = RequestOutcome(
        request_id=request_id,
        user_id=identity.user_id,
        api_key_id=identity.key_id,
        endpoint=ENDPOINT,
        requested_model="",
        status=200,
        total_latency_ms=0.0,
    )
    try:
        raw = await read_body(scope, receive, settings.GATEWAYZ_MAX_BODY_BYTES)
        body = chat_body_parse(raw)
        outcome.requested_model = body["model"][:200]
        outcome.stream = bool(body.get("stream"))
        model = (await catalog_holder.get()).resolve(body["model"])
        if model is None:
            raise not_found(f"The model '{body['model']}' does not exist.", code="model_not_found")
        outcome.served_model = model.id
        output_tokens = _max_output_tokens(body, model)
        hold = max(
            hold_amount(body_bytes=len(raw), max_output_tokens=output_tokens, deployment=d)
            for d in model.deployments
        )
        await _admit(identity, request_id, hold)
        outcome.held = True
        answer = await chat_call(body, model)
    except ClientGone:
        return  # still reading the body: nothing was admitted
    except Exception as exc:
        failure = exc if isinstance(exc, GatewayError) else _internal_error(exc)
        outcome.status = failure.status
        outcome.error_type = failure.code or failure.type
        outcome.total_latency_ms = _ms_since(started)
        await send_error(send, failure, id_header)
        await credit_gate().settle(outcome)
        return

    outcome.provider = answer.deployment.provider
    outcome.upstream_latency_ms = answer.latency_ms
    headers = [
        *id_header,
        (b"x-gatewayz-provider", answer.deployment.provider.encode()),
        (b"x-gatewayz-model", model.id.encode()),
    ]
    try:
        if outcome.stream:
            await relay_stream(send, body, len(raw), answer, outcome, headers, started)
        else:
            await _relay_json(send, len(raw), answer, outcome, headers)
    except Exception:
        # Past the response start nothing can be said to the client; the request is still
        # settled for what was metered so far.
        log.exception("relaying %s failed", request_id)
        outcome.status, outcome.error_type = 500, "internal_error"
    finally:
        outcome.total_latency_ms = _ms_since(started)
        await credit_gate().settle(outcome)


def _internal_error(exc: Exception) -> GatewayError:
    log.error("request failed inside the gateway", exc_info=exc)
    return GatewayError(
        500,
        "The gateway failed on this request; it was not charged. Please retry.",
        type="server_error",
        code="internal_error",
    )


async def _relay_json(
    send: Send,
    body_bytes: int,
    answer: UpstreamAnswer,
    outcome: RequestOutcome,
    headers: list[tuple[bytes, bytes]],
) -> None:
    try:
        raw = await answer.response.read()
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not an object")
    except (*UpstreamError, ValueError) as exc:
        error = GatewayError(
            504 if isinstance(exc, TimeoutError) else 502,
            f"{answer.deployment.provider} sent an incomplete or invalid response.",
            type="upstream_error",
            code="upstream_invalid_response",
        )
        outcome.status, outcome.error_type = error.status, error.code or ""
        await send_error(send, error, headers)
        return
    finally:
        answer.response.release()
    usage = usage_read(data.get("usage")) or usage_estimate(body_bytes, len(raw) // 4)
    cost = usage_record(outcome, usage, answer.deployment)
    usage_out = data.get("usage")
    if not isinstance(usage_out, dict):
        usage_out = {}
    usage_out["cost"] = float(cost)
    data["usage"] = usage_out
    await send_bytes(
        send,
        200,
        orjson.dumps(data),
        JSON_HEADERS + headers + [(b"x-gatewayz-cost", str(cost.normalize()).encode())],
    )
