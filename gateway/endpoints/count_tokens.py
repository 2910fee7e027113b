"""POST /v1/messages/count_tokens: a prompt's tokens, from an Anthropic-protocol provider's
own counter (a call on our account there), or an estimate for a model no such provider
serves, marked `x-gatewayz-token-count: estimate`.

Free, as Anthropic's is, but guarded like inference, since it calls providers on our
account: it runs the request path's own steps (gateway.pipeline.serve) up to the call, so the
key's restrictions, its rate limits and its concurrency apply (admitted with a hold of
zero), and it is counted in the metrics (endpoint `messages.count_tokens`) and written to
the request log at a cost of zero. Not through `serve` itself: an estimate calls no
provider, and what `serve` does after the call (relay, meter, charge) has nothing to do.
"""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings

from core.errors import GatewayError
from core.ids import request_id_new
from core.outcome import RequestOutcome
from gateway.endpoints.messages import MessagesApi, client_headers
from gateway.endpoints.validation_messages import messages_body_parse
from gateway.guards.credit import credit_gate
from gateway.guards.limits import admission_new
from gateway.guards.priority import slots
from gateway.http import JSON_HEADERS, ClientGone, Receive, Scope, Send, read_body, send_bytes
from gateway.metrics import request_record, request_record_unsettled
from gateway.pipeline.auth import KeyRefused, authenticate

# The request path's own steps, run in its order (gateway.pipeline.serve).
from gateway.pipeline.client_api import Headers
from gateway.pipeline.serve import admit, internal_error, loggable, route_resolve
from gateway.relay.delivery import ms_since
from gateway.relay.upstream_attempt import UpstreamRequest
from gateway.relay.upstream_call import Route, route_call
from providers.catalog import CatalogModel, Deployment
from providers.protocols import wire

# What Anthropic's count_tokens takes (it refuses other fields).
COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")
NO_HOLD = Decimal(0)
ESTIMATED = [(b"x-gatewayz-token-count", b"estimate")]


class CountTokensApi(MessagesApi):
    """Anthropic's protocol as /v1/messages answers it (errors, headers, the version
    header), for a body with no max_tokens that generates nothing."""

    endpoint = "messages.count_tokens"

    def parse(self, raw: bytes) -> dict[str, Any]:
        return messages_body_parse(raw, counting=True)

    def build(
        self, body: dict[str, Any], deployment: Deployment, model: CatalogModel, scope: Scope
    ) -> UpstreamRequest | None:
        protocol = wire(deployment)
        if not protocol.counts_tokens:
            return None  # only Anthropic's protocol has a counter
        upstream = {k: v for k, v in body.items() if k in COUNTED_FIELDS}
        request = protocol.messages_request(upstream, deployment, client_headers(scope))
        assert request is not None  # a counter speaks Messages
        url, headers, _ = request
        upstream["model"] = deployment.upstream_model_id
        return url + "/count_tokens", headers, orjson.dumps(upstream)


COUNTING = CountTokensApi()


def _estimate_tokens(body: dict[str, Any]) -> int:
    """~4 bytes of prompt per token: for models whose provider has no counting endpoint."""
    counted = {k: body.get(k) for k in ("system", "messages", "tools") if body.get(k)}
    return max(1, math.ceil(len(orjson.dumps(counted)) / 4))


async def _provider_count(
    route: Route, body: dict[str, Any], scope: Scope, priority: int, outcome: RequestOutcome
) -> tuple[bytes, Headers, str]:
    """The provider's count as it answered it, the headers naming it, the served family."""
    upstream_slots = slots()
    if not upstream_slots.try_acquire():
        await upstream_slots.acquire(priority)
    try:
        answer = await route_call(
            route, lambda m, d: COUNTING.build(body, d, m, scope), False, outcome.attempts
        )
    finally:
        upstream_slots.release()
    answer.response.release()
    served = answer.model or route[0][0]
    outcome.provider, outcome.served_model = answer.deployment.provider, loggable(served.id)
    outcome.upstream_latency_ms = answer.latency_ms
    named = [
        (b"x-gatewayz-provider", answer.deployment.provider.encode()),
        (b"x-gatewayz-model", served.id.encode()),
    ]
    return answer.body, named, served.family


async def count_tokens(scope: Scope, receive: Receive, send: Send) -> None:
    started = time.perf_counter()
    request_id = request_id_new()
    headers = COUNTING.id_headers(request_id)
    refused: KeyRefused | None = None  # a known key's refusal: logged for its owner
    try:
        identity = await authenticate(scope)
    except KeyRefused as error:
        identity, refused = error.identity, error
    except GatewayError as error:
        await COUNTING.send_error(send, error, headers, request_id)
        request_record_unsettled(COUNTING.endpoint, error.status, ms_since(started) / 1000)
        return

    outcome = RequestOutcome(
        request_id=request_id,
        user_id=identity.user_id,
        api_key_id=identity.key_id,
        endpoint=COUNTING.endpoint,
        requested_model="",
        status=200,
        total_latency_ms=0.0,
    )
    admission = None  # set once admitted: settlement uncounts it
    family = ""
    try:
        if refused is not None:
            raise refused
        COUNTING.headers_check(scope)
        raw = await read_body(scope, receive, settings.GATEWAYZ_MAX_BODY_BYTES)
        body = COUNTING.parse(raw)
        outcome.requested_model = loggable(body["model"])
        route = await route_resolve(COUNTING, body, identity)  # the key's model rule, preferences
        model = route[0][0]
        outcome.served_model, family = loggable(model.id), model.family
        candidate = admission_new(request_id, identity.limits, 0, NO_HOLD)
        await admit(identity, request_id, NO_HOLD, candidate, outcome)  # counts it in its limits
        admission = candidate
        outcome.held = True  # a hold of zero, released at settlement with the limits
        headers += COUNTING.limit_headers(admission)
        status = 200
        if any(wire(d).counts_tokens for _, deployments in route for d in deployments):
            payload, extra, family = await _provider_count(
                route, body, scope, identity.priority, outcome
            )
        else:
            payload, extra = orjson.dumps({"input_tokens": _estimate_tokens(body)}), ESTIMATED
    except ClientGone:
        request_record_unsettled(COUNTING.endpoint, 499, ms_since(started) / 1000)
        return  # still reading the body: nothing was admitted
    except Exception as exc:
        failure = exc if isinstance(exc, GatewayError) else internal_error(exc)
        outcome.status, outcome.error_type = failure.status, failure.code or failure.type
        status, extra = failure.status, failure.headers
        payload = COUNTING.error_body(failure, request_id)
    try:
        await send_bytes(send, status, payload, JSON_HEADERS + extra + headers)
    finally:
        outcome.total_latency_ms = ms_since(started)
        request_record(outcome, family)
        await credit_gate().settle(outcome, admission)
