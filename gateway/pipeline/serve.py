"""The one request path every inference endpoint runs: authenticate, read and validate,
resolve, admit, call (with failover), relay, settle.

What differs between endpoints (the client's protocol: how a body is validated, how an error
looks, how each provider's protocol is spoken and answered) is a `ClientApi`; the steps, the
money and the request log are the same for all of them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from asyncio import current_task
from decimal import Decimal
from typing import Any

from django.conf import settings

from billing.services import InsufficientCredit
from core import tracing
from core.errors import GatewayError, not_found
from core.ids import request_id_new
from core.outage import database_unavailable, database_unreachable
from core.outcome import RequestOutcome
from gateway.guards.credit import credit_gate
from gateway.guards.limits import Admission, admission_new
from gateway.guards.passive_health import stream_broke, throughput_measure
from gateway.guards.priority import slots
from gateway.http import (
    ClientGone,
    Receive,
    Scope,
    Send,
    read_body,
)
from gateway.keycache import KeyIdentity
from gateway.metrics import CREDIT_ADMITTED, request_record, request_record_unsettled
from gateway.pipeline.auth import KeyRefused, authenticate, key_allows_model
from gateway.pipeline.client_api import ClientApi
from gateway.pipeline.routing import (
    NO_PREFERENCES,
    deployments_for,
    fallback_models_parse,
    no_deployment_fits,
    preferences_parse,
    resolve_variant,
    variant_preferences,
)
from gateway.relay.client_watch import ClientWatch
from gateway.relay.context import RelayContext
from gateway.relay.delivery import CLIENT_CLOSED, Delivery, ms_since
from gateway.relay.journal import admission_entry, delivery_watch
from gateway.relay.upstream_call import Route, route_call
from providers.byok import with_own_keys
from providers.catalog import catalog_holder
from providers.upstream_errors import failure_told

log = logging.getLogger(__name__)

# No account holds this much (Redis counts credit in 64-bit pico-credits: 9.2M at most).
MAX_HOLD = Decimal(1_000_000)


def loggable(name: str) -> str:
    """A client-given name as the request log can hold it: 200 characters at most, and no
    NUL, which no Postgres text may hold (one would fail the settlement of every request
    written with it)."""
    return name[:200].replace("\x00", "\ufffd")


async def admit(
    identity: KeyIdentity,
    request_id: str,
    amount: Decimal,
    admission: Admission,
    outcome: RequestOutcome | None = None,
) -> None:
    try:
        if amount > MAX_HOLD:  # more than any balance: Redis could not even count it
            raise InsufficientCredit
        await credit_gate().admit(
            user_id=identity.user_id,
            request_id=request_id,
            amount=amount,
            admission=admission,
            journal=admission_entry(outcome) if outcome is not None else b"",
        )
        CREDIT_ADMITTED.inc(float(amount))
    except InsufficientCredit:
        raise GatewayError(
            402,
            "Your credit balance cannot cover this request. Add credits, or lower max_tokens.",
            type="insufficient_credits",
            code="insufficient_credits",
        ) from None


def internal_error(exc: Exception) -> GatewayError:
    if database_unreachable(exc):  # credit or the catalog, with no copy to serve from
        return database_unavailable()
    log.error("request failed inside the gateway", exc_info=exc)
    return GatewayError(
        500,
        "The gateway failed on this request; it was not charged. Please retry.",
        type="server_error",
        code="internal_error",
    )


async def route_resolve(api: ClientApi, body: dict[str, Any], identity: KeyIdentity) -> Route:
    """The models the request may be served by, in order, each with the deployments it may
    try: the `model`, then its `models` fallbacks, as its `provider` preferences allow.
    `provider` and `models` are the gateway's and are taken out of the body."""
    prefs = NO_PREFERENCES
    fallbacks: tuple[str, ...] = ()
    if "provider" in body or "models" in body:
        prefs = preferences_parse(body.pop("provider", None))
        fallbacks = fallback_models_parse(body.pop("models", None), body["model"])
    catalog = await catalog_holder.get()
    route: Route = []
    for name in (body["model"], *fallbacks):
        model, variant = resolve_variant(catalog, name)
        if model is None:
            raise not_found(f"The model '{name}' does not exist.", code="model_not_found")
        key_allows_model(identity, name, model.id)
        if model.kind != api.kind:
            raise GatewayError(
                400,
                f"The model '{name}' is a{'n' if model.kind[0] in 'aeiou' else ''} "
                f"{model.kind} model; this endpoint serves {api.kind} models.",
                param="model",
                code="model_not_supported",
            )
        chosen = variant_preferences(prefs, variant)
        deployments = deployments_for(model, chosen, body, api.dropped)
        if identity.provider_keys is not None:
            keep_order = bool(chosen.order or chosen.sort)
            deployments = with_own_keys(deployments, identity.provider_keys, keep_order=keep_order)
        if deployments:
            route.append((model, deployments))
    if not route:
        raise no_deployment_fits(body["model"])
    return route


async def serve(api: ClientApi, scope: Scope, receive: Receive, send: Send) -> None:
    started = time.perf_counter()
    request_id = request_id_new()
    id_header = api.id_headers(request_id)
    refused: KeyRefused | None = None  # a known key's refusal: logged for its owner
    try:
        identity = await authenticate(scope)
    except KeyRefused as error:
        identity, refused = error.identity, error
    except GatewayError as error:
        await api.send_error(send, error, id_header, request_id)
        request_record_unsettled(api.endpoint, error.status, ms_since(started) / 1000)
        return

    admission: Admission | None = None  # set once admitted: settlement uncounts it
    watch: ClientWatch | None = None  # set once admitted: notices the client leaving
    upstream_slots = slots()
    slotted = False  # holds one of the process's upstream slots (gateway.guards.priority)
    family = ""  # the served model as metrics know it (CatalogModel.family)
    outcome = RequestOutcome(
        request_id=request_id,
        user_id=identity.user_id,
        api_key_id=identity.key_id,
        endpoint=api.endpoint,
        requested_model="",
        status=200,
        total_latency_ms=0.0,
    )
    try:
        if refused is not None:
            raise refused
        api.headers_check(scope)
        raw = await read_body(scope, receive, settings.GATEWAYZ_MAX_BODY_BYTES)
        body = api.parse(raw)
        if api.prepares:
            await api.prepare(body, identity)
        outcome.requested_model = loggable(body["model"])
        outcome.stream = bool(body.get("stream"))
        with tracing.span("gatewayz.route"):
            route = await route_resolve(api, body, identity)
        model = route[0][0]
        outcome.served_model = loggable(model.id)  # a prefix route's is the client's name
        family = model.family
        tokens = max(api.token_estimate(body, len(raw), m) for m, _ in route)
        hold = max(api.hold(body, len(raw), m) for m, _ in route)
        candidate = admission_new(request_id, identity.limits, tokens, hold)
        with tracing.span("gatewayz.admit"):
            await admit(identity, request_id, hold, candidate, outcome)
        admission = candidate
        outcome.held, outcome.hold = True, hold
        watch = ClientWatch(receive)
        watch.cancellable = True  # a client leaving now cancels the wait and the call
        if not upstream_slots.try_acquire():
            await upstream_slots.acquire(identity.priority)
        slotted = True
        answer = await route_call(
            route,
            lambda m, d: api.build(body, d, m, scope),
            outcome.stream,
            outcome.attempts,
        )
        watch.cancellable = False
    except ClientGone:
        request_record_unsettled(api.endpoint, 499, ms_since(started) / 1000)
        return  # still reading the body: nothing was admitted
    except asyncio.CancelledError:
        if watch is None or not watch.left:
            raise  # the server is shutting down
        # The client left before an answer came: nothing reached it, nothing is charged.
        task = current_task()
        if task is not None:
            task.uncancel()
        watch.ended()
        if slotted:
            upstream_slots.release()
        outcome.status, outcome.error_type = 499, CLIENT_CLOSED
        outcome.total_latency_ms = ms_since(started)
        request_record(outcome, family)
        await credit_gate().settle(outcome, admission)
        return
    except Exception as exc:
        if watch is not None:
            watch.ended()
        if slotted:
            upstream_slots.release()
        failure = exc if isinstance(exc, GatewayError) else internal_error(exc)
        failure_told(failure, request_id)
        outcome.status = failure.status
        outcome.error_type = failure.code or failure.type
        if outcome.attempts:  # the provider that failed it last, as well as every attempt
            outcome.provider = outcome.attempts[-1]["provider"]
        outcome.total_latency_ms = ms_since(started)
        limit_headers = api.limit_headers(admission) if admission is not None else []
        await api.send_error(send, failure, id_header + limit_headers, request_id)
        request_record(outcome, family)
        await credit_gate().settle(outcome, admission)
        return

    served = answer.model or model
    outcome.provider, outcome.served_model = answer.deployment.provider, loggable(served.id)
    family = served.family
    outcome.upstream_latency_ms = answer.latency_ms
    headers = [
        *id_header,
        (b"x-gatewayz-provider", answer.deployment.provider.encode()),
        (b"x-gatewayz-model", served.id.encode()),
        *api.limit_headers(admission),
    ]
    dropped = api.dropped(body, answer.deployment)
    if dropped:  # never silently: the client sees what its provider did not get
        headers.append((b"x-gatewayz-dropped-params", ",".join(dropped).encode()))
    watch.relaying(answer)
    delivery = Delivery(
        delivery_watch(send, outcome, answer.deployment, len(raw), admission),
        outcome,
        watch,
        admission,
        family,
        started,
    )
    try:
        with tracing.span("gatewayz.relay"):
            await api.relay(
                RelayContext(delivery.send, body, len(raw), answer, outcome, headers, started)
            )
    except Exception as exc:
        # The request is still settled, for what was metered so far. The client hears of it
        # in its protocol if nothing was sent yet; else its response is at least ended.
        if not delivery.settled:
            outcome.status, outcome.error_type = 500, "internal_error"
        answer.response.release()
        if not delivery.started:
            await api.send_error(send, internal_error(exc), headers, request_id)
        else:
            log.error("relaying %s failed", request_id, exc_info=exc)
            if not delivery.ended:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
    finally:
        upstream_slots.release()
        with tracing.span("gatewayz.settle"):
            await delivery.settle()
        if outcome.error_type == "upstream_stream_interrupted":
            await stream_broke(served, answer.deployment)
        else:
            throughput_measure(outcome, served, answer.deployment)
