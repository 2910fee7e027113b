"""Tracing with OpenTelemetry: off unless an OTLP endpoint is configured
(OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, with the SDK's other
OTEL_* settings), then every process exports its spans there over OTLP/HTTP.

A request to the gateway is one trace: its server span (continuing the client's
`traceparent`), then `gatewayz.route`, `gatewayz.admit`, one `gatewayz.upstream` per attempt
with the HTTP call inside it (aiohttp's instrumentation sends `traceparent` on to the
provider), `gatewayz.relay` and `gatewayz.settle`; Django, Celery, psycopg and Redis are
instrumented too, and log records carry the trace and span ids.

Off, the hot path pays a boolean test and entering a shared null context per span; the
OpenTelemetry SDK is not even imported (bench/: `--compare` shows no difference).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Any

log = logging.getLogger(__name__)

ON = False
NULL: AbstractContextManager[Any] = nullcontext()
_tracer: Any = None
_root: ContextVar[Any] = ContextVar("gatewayz_root_span")


def configured() -> bool:
    return bool(
        os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
        or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def tracing_start(service: str, *, django: bool = False, celery: bool = False) -> bool:
    """Sets up the SDK and the instrumentations, once per process, if configured; returns
    whether tracing is on. Call before Django builds its middleware (`django`)."""
    global ON, _tracer
    if ON or not configured():
        return ON
    from opentelemetry import trace
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.aiohttp_client import AioHttpClientInstrumentor
    from opentelemetry.instrumentation.logging import LoggingInstrumentor
    from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    name = os.environ.get("OTEL_SERVICE_NAME") or service
    provider = TracerProvider(resource=Resource.create({"service.name": name}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    AioHttpClientInstrumentor().instrument()
    PsycopgInstrumentor().instrument(enable_commenter=False)
    RedisInstrumentor().instrument()
    LoggingInstrumentor().instrument(set_logging_format=False)  # otelTraceID on records
    if django:
        from opentelemetry.instrumentation.django import DjangoInstrumentor

        DjangoInstrumentor().instrument()
    if celery:
        from opentelemetry.instrumentation.celery import CeleryInstrumentor

        CeleryInstrumentor().instrument()
    _tracer = trace.get_tracer("gatewayz")
    ON = True
    log.info("tracing on: spans of %s exported over OTLP", name)
    return True


def span(name: str) -> AbstractContextManager[Any]:
    """A child span of the current one while tracing is on; else a shared null context."""
    if not ON:
        return NULL
    return _tracer.start_as_current_span(name)


@contextmanager
def server_span(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> Iterator[Any]:
    """The request's root span, continuing the trace its client sent (`traceparent`)."""
    from opentelemetry import propagate, trace

    carrier = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers}
    with _tracer.start_as_current_span(
        f"{method} {path}",
        context=propagate.extract(carrier),
        kind=trace.SpanKind.SERVER,
        attributes={"http.request.method": method, "url.path": path},
    ) as root:
        token = _root.set(root)
        try:
            yield root
        finally:
            _root.reset(token)


def request_attributes(attributes: dict[str, Any]) -> None:
    """Sets attributes on the request's root span (call only while tracing is on)."""
    from opentelemetry import trace

    (_root.get(None) or trace.get_current_span()).set_attributes(attributes)


def trace_id() -> str | None:
    """The current trace's id, hex, while tracing is on and a span is current."""
    if not ON:
        return None
    from opentelemetry import trace

    context = trace.get_current_span().get_span_context()
    return format(context.trace_id, "032x") if context.is_valid else None
