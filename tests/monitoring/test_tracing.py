"""Tracing (core.tracing): with an OTLP endpoint set, a request is one trace, continuing the
client's `traceparent`: its server span, then route, admit, each upstream attempt with its
HTTP call (which sends `traceparent` on to the provider), relay and settle; exported over
OTLP/HTTP to a collector double that decodes what arrives."""

from __future__ import annotations

import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

pytestmark = pytest.mark.smoke


class _Collector(BaseHTTPRequestHandler):
    spans: list = []

    def do_POST(self) -> None:  # http.server names its handlers so
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.path == "/v1/traces":
            exported = ExportTraceServiceRequest.FromString(body)
            for resource in exported.resource_spans:
                for scope in resource.scope_spans:
                    _Collector.spans.extend(scope.spans)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def collector():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Collector.spans = []
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_request_is_one_trace_from_client_to_provider(own_gateway, make_account, collector):
    gateway = own_gateway(OTEL_EXPORTER_OTLP_ENDPOINT=collector, OTEL_BSP_SCHEDULE_DELAY="100")
    trace_id = secrets.token_hex(16)
    answer = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={
            "model": "test/echo",
            "messages": [{"role": "user", "content": '!mock {"echo_request": true}'}],
        },
        headers={
            "authorization": f"Bearer {make_account().key}",
            "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        },
    )
    assert answer.status_code == 200
    upstream = orjson.loads(answer.json()["choices"][0]["message"]["content"])["headers"]
    assert upstream["traceparent"].split("-")[1] == trace_id  # carried on to the provider

    wanted = {
        "POST /v1/chat/completions",
        "gatewayz.route",
        "gatewayz.admit",
        "gatewayz.upstream",
        "gatewayz.relay",
        "gatewayz.settle",
    }
    deadline = time.monotonic() + 15
    while True:
        mine = [s for s in _Collector.spans if s.trace_id.hex() == trace_id]
        if wanted <= {s.name for s in mine} or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    by_name = {s.name: s for s in mine}
    assert wanted <= set(by_name), sorted(by_name)
    root = by_name["POST /v1/chat/completions"]
    for step in wanted - {root.name}:
        assert by_name[step].parent_span_id == root.span_id, step
    calls = [s for s in mine if s.parent_span_id == by_name["gatewayz.upstream"].span_id]
    assert calls, "the HTTP call to the provider has its span inside the attempt's"
    attributes = {a.key: a.value for a in root.attributes}
    assert attributes["gatewayz.model"].string_value == "test/echo"
    assert attributes["http.response.status_code"].int_value == 200
