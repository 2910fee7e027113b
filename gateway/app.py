"""The raw ASGI app behind /v1/* and /health*: a dispatch table, no Django request machinery.

It serves /metrics too, for the inference workers (`config.asgi_inference`), which serve
nothing else; where Django runs in the same process (`config.asgi`), /metrics is Django's
(django-prometheus), which shows the same registry.
"""

from __future__ import annotations

import asyncio
import logging

from core import tracing
from core.errors import GatewayError, anthropic_error_body
from core.ids import request_id_new
from core.outage import database_unavailable, database_unreachable
from gateway.endpoints.chat import chat_completions
from gateway.endpoints.count_tokens import count_tokens
from gateway.endpoints.embeddings import embeddings
from gateway.endpoints.health import health_live, health_ready
from gateway.endpoints.images import images_generations
from gateway.endpoints.messages import messages
from gateway.endpoints.models_api import anthropic_client, model_retrieve, models_list
from gateway.endpoints.responses import responses
from gateway.endpoints.responses_stored import stored_response
from gateway.http import JSON_HEADERS, Receive, Scope, Send, send_bytes, send_error
from gateway.metrics import CONTENT_TYPE, REQUESTS_IN_FLIGHT, metrics_page
from gateway.metrics_access import REFUSAL, scrape_allowed_asgi
from gateway.runtime import runtime_ensure_started

log = logging.getLogger(__name__)

# The paths served by gateway.pipeline.serve's steps: what `gatewayz_requests_in_flight` counts.
INFERENCE_PATHS = frozenset(
    (
        "/v1/chat/completions",
        "/v1/embeddings",
        "/v1/images/generations",
        "/v1/responses",
        "/v1/messages",
        "/v1/messages/count_tokens",
    )
)


def _method_not_allowed(allowed: str) -> GatewayError:
    return GatewayError(
        405,
        f"Method not allowed; use {allowed}.",
        code="method_not_allowed",
        headers=[(b"allow", allowed.encode())],
    )


async def _metrics(scope: Scope, send: Send) -> None:
    if not scrape_allowed_asgi(scope):
        await send_bytes(send, 403, REFUSAL, [(b"content-type", b"text/plain; charset=utf-8")])
        return
    # Off the event loop: in multiprocess mode a scrape reads every worker's files.
    page = await asyncio.to_thread(metrics_page)
    await send_bytes(send, 200, page, [(b"content-type", CONTENT_TYPE)])


async def gateway_app(scope: Scope, receive: Receive, send: Send) -> None:
    runtime_ensure_started()
    path: str = scope["path"]
    method: str = scope["method"]
    in_flight = path in INFERENCE_PATHS
    if in_flight:
        REQUESTS_IN_FLIGHT.inc()
    traced = tracing.server_span(method, path, scope["headers"]) if tracing.ON else tracing.NULL
    try:
        with traced:  # the request's root span while tracing is on (core.tracing)
            if path == "/v1/chat/completions":
                if method != "POST":
                    raise _method_not_allowed("POST")
                await chat_completions(scope, receive, send)
            elif path == "/v1/embeddings":
                if method != "POST":
                    raise _method_not_allowed("POST")
                await embeddings(scope, receive, send)
            elif path == "/v1/images/generations":
                if method != "POST":
                    raise _method_not_allowed("POST")
                await images_generations(scope, receive, send)
            elif path == "/v1/responses":
                if method != "POST":
                    raise _method_not_allowed("POST")
                await responses(scope, receive, send)
            elif path.startswith("/v1/responses/"):
                await stored_response(scope, send, path[len("/v1/responses/") :])
            elif path == "/v1/messages":
                if method != "POST":
                    raise _method_not_allowed("POST")
                await messages(scope, receive, send)
            elif path == "/v1/messages/count_tokens":
                if method != "POST":
                    raise _method_not_allowed("POST")
                await count_tokens(scope, receive, send)
            elif path == "/v1/models":
                if method != "GET":
                    raise _method_not_allowed("GET")
                await models_list(scope, send)
            elif path.startswith("/v1/models/"):
                if method != "GET":
                    raise _method_not_allowed("GET")
                await model_retrieve(scope, send, path[len("/v1/models/") :])
            elif path == "/health":
                await health_live(send)
            elif path == "/health/readiness":
                await health_ready(send)
            elif path == "/metrics":
                if method != "GET":
                    raise _method_not_allowed("GET")
                await _metrics(scope, send)
            else:
                raise GatewayError(404, f"Unknown endpoint {method} {path}.", code="unknown_url")
    except Exception as exc:
        if isinstance(exc, GatewayError):
            error = exc
        elif database_unreachable(exc):  # the catalog, never built, with no database
            error = database_unavailable()
        else:
            log.exception("%s %s failed", method, path)
            error = GatewayError(
                500,
                "The gateway failed on this request.",
                type="server_error",
                code="internal_error",
            )
        # Every answer carries a request id, these too (the pipeline's make their own).
        request_id = request_id_new()
        id_header = [(b"x-request-id", request_id.encode())]
        # Anthropic's clients read Anthropic's shape.
        if path.startswith("/v1/messages") or (
            path.startswith("/v1/models") and anthropic_client(scope)
        ):
            named = [(b"request-id", request_id.encode()), *id_header]
            body = anthropic_error_body(error, request_id)
            await send_bytes(send, error.status, body, JSON_HEADERS + error.headers + named)
        else:
            await send_error(send, error, id_header)
    finally:
        if in_flight:
            REQUESTS_IN_FLIGHT.dec()
