"""The inference path's Prometheus metrics, read from /metrics over HTTP around requests made
with the official openai SDK (anthropic's for count_tokens): each request moves its counters by exactly its own amounts.

The shared gateway (`config.asgi`) answers /metrics with Django's view (django-prometheus),
which shows the gateway's metrics from the same process; the inference workers
(`config.asgi_inference`) answer it from the raw app. Other tests share these processes,
so every test compares a reading before with one after.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.waits import settled

pytestmark = pytest.mark.smoke

INFERENCE_APP = "config.asgi_inference:application"
CHAT = "chat.completions"
COUNT = "messages.count_tokens"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=20)


def _say(directive: dict) -> list[dict]:
    return [{"role": "user", "content": "!mock " + json.dumps(directive)}]


def _scrape(gateway: str) -> Samples:
    response = httpx.get(f"{gateway}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def _requests(model: str, provider: str, status: int, endpoint: str = CHAT) -> dict[str, str]:
    return {"endpoint": endpoint, "model": model, "provider": provider, "status": str(status)}


def _after(gateway: str, before: Samples, **labels: str) -> Samples:
    """The reading once the request with these labels is counted (its request counter moves
    last of its metrics). A request is counted after its response is sent, so the client
    may hear the answer first: wait, boundedly."""
    target = _value(before, "gatewayz_requests_total", **labels) + 1
    deadline = time.monotonic() + 10
    while True:
        samples = _scrape(gateway)
        if _value(samples, "gatewayz_requests_total", **labels) >= target:
            assert _value(samples, "gatewayz_requests_total", **labels) == target
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"no request {labels} was counted")
        time.sleep(0.02)


def _moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return _value(after, name, **labels) - _value(before, name, **labels)


def test_a_completion_is_counted_with_its_tokens_cost_and_attempt(gateway, make_account):
    account = make_account()
    before = _scrape(gateway)

    raw = _client(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/echo", messages=_say({"reply": "counted", "cached_tokens": 2})
    )

    usage = raw.parse().usage
    after = _after(gateway, before, **_requests("test/echo", "mock", 200))
    log = settled(raw.headers["x-request-id"])
    assert (log.prompt_tokens, log.completion_tokens, log.cached_tokens) == (
        usage.prompt_tokens,
        usage.completion_tokens,
        2,
    )
    model = {"model": "test/echo", "provider": "mock"}
    assert _moved(before, after, "gatewayz_tokens_total", **model, kind="prompt") == (
        log.prompt_tokens
    )
    assert _moved(before, after, "gatewayz_tokens_total", **model, kind="completion") == (
        log.completion_tokens
    )
    assert _moved(before, after, "gatewayz_tokens_total", **model, kind="cached") == 2
    assert log.cost > 0
    assert _moved(before, after, "gatewayz_cost_credits_total", **model) == pytest.approx(
        float(log.cost)
    )
    ok = {"provider": "mock", "outcome": "ok"}
    assert _moved(before, after, "gatewayz_upstream_attempts_total", **ok) == 1
    plain = {"endpoint": CHAT, "stream": "false"}
    assert _moved(before, after, "gatewayz_request_duration_seconds_count", **plain) == 1
    assert _moved(before, after, "gatewayz_request_duration_seconds_sum", **plain) > 0
    # No first token is timed for a whole answer.
    ttft = "gatewayz_time_to_first_token_seconds_count"
    assert _moved(before, after, ttft, provider="mock") == 0


def test_a_token_count_is_counted_under_its_own_endpoint_with_no_tokens(gateway, make_account):
    """count_tokens calls providers on our account: counted, its attempts too; billed
    nothing, so no tokens or cost move."""
    account = make_account()
    client = anthropic.Anthropic(base_url=gateway, api_key=account.key, max_retries=0)
    say = [{"role": "user", "content": "count me"}]
    before = _scrape(gateway)

    client.messages.count_tokens(model="test/claude", messages=say)  # type: ignore[arg-type]

    labels = {"endpoint": COUNT, "model": "test/claude", "provider": "mock-anthropic"}
    after = _after(gateway, before, **labels, status="200")
    ok = {"provider": "mock-anthropic", "outcome": "ok"}
    assert _moved(before, after, "gatewayz_upstream_attempts_total", **ok) == 1
    plain = {"endpoint": COUNT, "stream": "false"}
    assert _moved(before, after, "gatewayz_request_duration_seconds_count", **plain) == 1
    model = {"model": "test/claude", "provider": "mock-anthropic"}
    assert _moved(before, after, "gatewayz_tokens_total", **model, kind="prompt") == 0
    assert _moved(before, after, "gatewayz_cost_credits_total", **model) == 0
    # A refused one is counted too, with no model (none was served).
    with pytest.raises(anthropic.NotFoundError):
        client.messages.count_tokens(model="nope/nothing", messages=say)  # type: ignore[arg-type]
    _after(gateway, after, endpoint=COUNT, model="", provider="", status="404")


def test_a_stream_is_counted_with_its_time_to_first_token(gateway, make_account):
    account = make_account()
    before = _scrape(gateway)

    with _client(gateway, account.key).chat.completions.with_streaming_response.create(
        model="test/echo",
        messages=_say({"reply": "one two three", "chunks": 3}),
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        chunks = list(response.parse())
        request_id = response.headers["x-request-id"]

    usage = chunks[-1].usage
    after = _after(gateway, before, **_requests("test/echo", "mock", 200))
    streamed = {"endpoint": CHAT, "stream": "true"}
    assert _moved(before, after, "gatewayz_request_duration_seconds_count", **streamed) == 1
    ttft = "gatewayz_time_to_first_token_seconds_count"
    assert _moved(before, after, ttft, provider="mock") == 1
    model = {"model": "test/echo", "provider": "mock"}
    assert _moved(before, after, "gatewayz_tokens_total", **model, kind="completion") == (
        usage.completion_tokens
    )
    log = settled(request_id)
    assert log.stream and log.ttft_ms is not None
    assert _value(after, "gatewayz_time_to_first_token_seconds_sum", provider="mock") - _value(
        before, "gatewayz_time_to_first_token_seconds_sum", provider="mock"
    ) == pytest.approx(log.ttft_ms / 1000, abs=0.002)


def test_an_unknown_model_is_counted_without_a_model(gateway, make_account):
    account = make_account()
    before = _scrape(gateway)

    with pytest.raises(openai.NotFoundError) as caught:
        _client(gateway, account.key).chat.completions.create(
            model="test/no-such-model", messages=[{"role": "user", "content": "hi"}]
        )

    after = _after(gateway, before, **_requests("", "", 404))
    # The name the client sent is no label: clients could make series without end.
    assert not any("test/no-such-model" in str(labels) for _, labels in after)
    assert settled(caught.value.response.headers["x-request-id"]).status == 404


def test_a_bad_key_is_counted_though_nothing_is_settled(gateway):
    before = _scrape(gateway)

    with pytest.raises(openai.AuthenticationError):
        _client(gateway, "gw_live_not-a-key").chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "hi"}]
        )

    _after(gateway, before, **_requests("", "", 401))


def test_a_client_that_leaves_while_sending_its_body_is_counted_as_499(gateway, make_account):
    account = make_account()
    before = _scrape(gateway)
    url = httpx.URL(gateway)

    with socket.create_connection((url.host, url.port)) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
            b"Authorization: Bearer " + account.key.encode() + b"\r\n"
            b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            b'{"model": "test/echo", "mess'
        )  # and leaves, 970 bytes short

    _after(gateway, before, **_requests("", "", 499))


def test_a_request_refused_for_credit_is_counted_on_its_model(gateway, make_account):
    account = make_account(credit=Decimal(0))
    before = _scrape(gateway)

    with pytest.raises(openai.APIStatusError) as caught:
        _client(gateway, account.key).chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "hi"}]
        )

    assert caught.value.status_code == 402
    after = _after(gateway, before, **_requests("test/echo", "", 402))
    # It never reached a provider.
    ok = {"provider": "mock", "outcome": "ok"}
    assert _moved(before, after, "gatewayz_upstream_attempts_total", **ok) == 0


def test_a_failover_counts_each_attempt_by_its_outcome(gateway, make_account):
    account = make_account()
    before = _scrape(gateway)

    raw = _client(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/multi", messages=_say({"status": 503, "only_model": "echo-a"})
    )

    assert raw.headers["x-gatewayz-provider"] == "mock-b"
    after = _after(gateway, before, **_requests("test/multi", "mock-b", 200))
    attempts = "gatewayz_upstream_attempts_total"
    assert _moved(before, after, attempts, provider="mock-a", outcome="upstream_error") == 1
    assert _moved(before, after, attempts, provider="mock-b", outcome="ok") == 1
    assert _moved(before, after, attempts, provider="mock-a", outcome="ok") == 0


def test_a_provider_failure_counts_every_attempt(gateway, make_account):
    account = make_account()
    before = _scrape(gateway)

    with pytest.raises(openai.InternalServerError) as caught:
        _client(gateway, account.key).chat.completions.create(
            model="test/echo", messages=_say({"status": 500})
        )

    assert caught.value.status_code == 502
    # Labelled with the provider that failed it (the request log names it too).
    after = _after(gateway, before, **_requests("test/echo", "mock", 502))
    log = settled(caught.value.response.headers["x-request-id"])
    assert log.attempts and {(a["provider"], a["error"]) for a in log.attempts} == {
        ("mock", "upstream_error")
    }
    failed = {"provider": "mock", "outcome": "upstream_error"}
    assert _moved(before, after, "gatewayz_upstream_attempts_total", **failed) == len(log.attempts)
    model = {"model": "test/echo", "provider": "mock"}
    assert _moved(before, after, "gatewayz_cost_credits_total", **model) == 0


def test_a_stream_is_in_flight_until_it_ends(gateway, make_account):
    account = make_account()
    in_flight = "gatewayz_requests_in_flight"
    idle = _value(_scrape(gateway), in_flight)

    with _client(gateway, account.key).chat.completions.with_streaming_response.create(
        model="test/echo",
        messages=_say({"reply": "a b c d", "chunks": 4, "chunk_delay": 0.3}),
        stream=True,
    ) as response:
        chunks = response.parse()
        next(iter(chunks))
        assert _value(_scrape(gateway), in_flight) == idle + 1
        list(chunks)

    deadline = time.monotonic() + 10
    while _value(_scrape(gateway), in_flight) != idle:
        assert time.monotonic() < deadline, "the stream stayed in flight"
        time.sleep(0.02)


@pytest.fixture(scope="module")
def inference_workers(start_gateway, stop_gateway, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """Two inference workers sharing one metrics directory, as `uvicorn --workers 2` runs."""
    directory = tmp_path_factory.mktemp("prometheus-multiproc")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(directory)}
    workers = start_gateway(app=INFERENCE_APP, **env), start_gateway(app=INFERENCE_APP, **env)
    yield workers
    for worker in workers:
        stop_gateway(worker)


def test_an_inference_worker_serves_its_metrics(own_gateway, make_account):
    worker = own_gateway(app=INFERENCE_APP)
    before = _scrape(worker)

    _client(worker, make_account().key).chat.completions.create(
        model="test/echo", messages=[{"role": "user", "content": "hi"}]
    )

    _after(worker, before, **_requests("test/echo", "mock", 200))


def test_any_inference_worker_shows_every_workers_requests(inference_workers, make_account):
    first, second = inference_workers
    before = _scrape(second)

    _client(first, make_account().key).chat.completions.create(
        model="test/echo", messages=[{"role": "user", "content": "hi"}]
    )

    after = _after(second, before, **_requests("test/echo", "mock", 200))
    ok = {"provider": "mock", "outcome": "ok"}
    assert _moved(before, after, "gatewayz_upstream_attempts_total", **ok) == 1
    # Both workers read the same files: the first shows the same count.
    served = _requests("test/echo", "mock", 200)
    assert _value(_scrape(first), "gatewayz_requests_total", **served) == _value(
        after, "gatewayz_requests_total", **served
    )
    # Gauges are summed over the live workers, not listed per process.
    assert ("gatewayz_requests_in_flight", frozenset()) in after
    # The figures read at scrape time are on the multiprocess page too.
    assert any(name == "gatewayz_incidents_open" for name, _ in after)


def test_a_prefix_routed_model_is_labelled_by_its_prefix(gateway, make_account):
    """Under a prefix route a client may name any model: each name must not become a series
    of its own (a cardinality attack on the metrics)."""
    from providers.catalog_file import catalog_changed
    from providers.models import PrefixRoute, Provider

    prefix = f"routed{time.time_ns()}/"
    PrefixRoute.objects.create(
        prefix=prefix, provider=Provider.objects.get(slug="mock"), input_price=1, output_price=2
    )
    catalog_changed()
    account = make_account()
    client = _client(gateway, account.key)
    deadline = time.monotonic() + 5
    while True:  # the catalog reaches the gateway process within a poll
        before = _scrape(gateway)
        try:
            client.chat.completions.create(
                model=f"{prefix}any-name-a-client-makes-up",
                messages=[{"role": "user", "content": "hi"}],
            )
            break
        except openai.NotFoundError:
            assert time.monotonic() < deadline, "the prefix route did not reach the gateway"
            time.sleep(0.1)

    after = _after(gateway, before, **_requests(f"{prefix}*", "mock", 200))
    assert not any("any-name-a-client-makes-up" in str(labels) for _, labels in after)
