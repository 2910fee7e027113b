"""Upstream failures: failover before the first byte, clean OpenAI-shape errors after it, and
exact settlement in every case."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import CreditAccount
from tests.support.waits import settled


def _ask(
    gateway: str, key: str, directive: dict | None = None, model: str = "", **extra
) -> httpx.Response:
    content = "!mock " + json.dumps(directive) if directive else "hello"
    # A 429 cools the deployment in this gateway process: it gets a model of its own.
    throttled = directive and directive.get("status") == 429
    model = model or ("test/throttled-echo" if throttled else "test/echo")
    body = {"model": model, "messages": [{"role": "user", "content": content}], **extra}
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def _balance(account) -> tuple[Decimal, Decimal]:
    row = CreditAccount.objects.get(user=account.user)
    return row.balance, row.held


def test_it_passes_a_providers_request_error_through(gateway, make_account):
    account = make_account()

    response = _ask(gateway, account.key, {"status": 400, "message": "temperature is too hot"})

    assert response.status_code == 400
    assert "temperature is too hot" in response.json()["error"]["message"]
    assert settled(response.headers["x-request-id"]).status == 400
    assert _balance(account) == (Decimal("10"), 0)


@pytest.mark.parametrize(
    ("directive", "status", "code"),
    [
        ({"status": 500}, 502, "upstream_error"),
        ({"status": 503}, 502, "upstream_error"),
        ({"status": 401}, 502, "upstream_error"),  # our credential, not the client's key
        ({"status": 429, "retry_after": 7}, 429, "upstream_rate_limited"),
        ({"delay": 3}, 504, "upstream_timeout"),  # the provider's read timeout is 2 s
    ],
)
def test_it_maps_provider_failures_to_gateway_errors(
    gateway, make_account, directive, status, code
):
    account = make_account()

    response = _ask(gateway, account.key, directive)

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    # OpenAI's types: a 5xx is a server_error
    assert response.json()["error"]["type"] == (
        "rate_limit_error" if status == 429 else "server_error"
    )
    if status == 429:
        assert response.headers["retry-after"] == "7"
    log = settled(response.headers["x-request-id"])
    assert (log.status, log.error_type, log.cost) == (status, code, 0)
    assert _balance(account) == (Decimal("10"), 0)


def test_it_fails_over_to_the_next_deployment(gateway, make_account):
    # test/failover: a dead provider, then one whose credential the upstream refuses, then mock.
    account = make_account()
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=account.key, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model="test/failover", messages=[{"role": "user", "content": "hi"}]
    )

    assert raw.parse().choices[0].message.content == "You said: hi"
    assert raw.headers["x-gatewayz-provider"] == "mock"
    assert settled(raw.headers["x-request-id"]).provider == "mock"


def test_it_answers_503_when_no_provider_is_reachable(gateway, make_account):
    account = make_account()
    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "test/dead", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {account.key}"},
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "upstream_unavailable"
    assert settled(response.headers["x-request-id"]).status == 503
    assert _balance(account) == (Decimal("10"), 0)


def test_it_ends_a_cut_stream_with_an_error_event_and_bills_what_was_produced(
    gateway, make_account
):
    account = make_account()

    response = _ask(gateway, account.key, {"chunks": 10, "cut_after": 3}, stream=True)

    events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
    assert response.status_code == 200
    contents = [json.loads(e)["choices"][0]["delta"].get("content") for e in events[:-1]]
    assert contents[1:] == ["w0", " w1", " w2"]
    assert json.loads(events[-1])["error"]["code"] == "upstream_stream_interrupted"
    log = settled(response.headers["x-request-id"])
    assert (log.status, log.error_type) == (502, "upstream_stream_interrupted")
    assert log.completion_tokens > 0 and log.cost > 0
    assert _balance(account) == (Decimal("10") - log.cost, 0)


def test_it_settles_a_stream_the_client_abandons_for_what_was_relayed(gateway, make_account):
    account = make_account()
    body = {
        "model": "test/echo",
        "stream": True,
        "messages": [{"role": "user", "content": '!mock {"chunks": 30, "chunk_delay": 0.02}'}],
    }

    with httpx.stream(
        "POST",
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.key}"},
    ) as response:
        request_id = response.headers["x-request-id"]
        next(response.iter_lines())  # read the first event, then hang up

    # The provider was stopped; what had been relayed is billed (tests/gateway/test_client_gone.py)
    log = settled(request_id)
    assert (log.status, log.error_type) == (499, "client_closed")
    assert log.completion_tokens < 30
    assert _balance(account) == (Decimal("10") - log.cost, 0)


# What providers put in their errors: our organisation, our limits, their own model ids.
LEAKY = (
    "Rate limit reached for echo-internal-v2 in organization org-Q8mZ3xYp1 on tokens per "
    "min (TPM): Limit 30000, Used 29950, key sk-proj-abcd****wxyz"
)


@pytest.mark.parametrize("status", [429, 500, 401])
def test_a_providers_own_words_reach_staff_not_the_customer(gateway, make_account, status):
    account = make_account()

    model = "test/throttled-leaky" if status == 429 else "test/echo"
    response = _ask(gateway, account.key, {"status": status, "message": LEAKY}, model=model)

    error = response.json()["error"]
    request_id = response.headers["x-request-id"]
    # Ours: the provider's name, what kind of answer it gave, and the request id to quote.
    assert "mock" in error["message"] and request_id in error["message"]
    ours = error["message"].replace(request_id, "")  # an id's digits may be anything
    for secret in ("org-Q8mZ3xYp1", "30000", "echo-internal-v2", "sk-proj", "Used"):
        assert secret not in ours
    if status != 429:
        assert f"{str(status)[0]}xx" in error["message"]
    # The provider's words are kept for staff, in the request log's attempts.
    assert settled(request_id).attempts[0]["detail"] == LEAKY


def test_a_providers_complaint_about_the_request_reaches_the_client_scrubbed(gateway, make_account):
    account = make_account()
    message = "max_tokens is too large for model echo in organization org-Q8mZ3xYp1 (limit 8)"

    response = _ask(gateway, account.key, {"status": 400, "message": message})

    assert response.status_code == 400
    text = response.json()["error"]["message"]
    assert "max_tokens is too large for model test/echo" in text  # the model the client named
    assert "org-Q8mZ3xYp1" not in text and "[redacted]" in text
