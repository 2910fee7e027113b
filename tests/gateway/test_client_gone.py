"""A client that leaves before its answer is whole: the provider is told at once (its
connection closed, so it stops generating and billing us), and the request is charged for
what was produced up to then, by the one rule for cut streams, and logged `client_closed`.

The mock providers record, for a request whose directive names a `watch` tag, whether
their client left and how many body messages they had sent by then."""

from __future__ import annotations

import json
import re
import time
import uuid
from decimal import Decimal

import httpx
import pytest

from billing.models import CreditAccount
from tests.support.waits import settled

# model -> (route, its prices per 1M tokens: input, output)
PRICES = {
    "test/echo": (Decimal("1.00"), Decimal("2.00")),
    "test/claude": (Decimal("3.00"), Decimal("15.00")),
}


TEXT = re.compile(r'"(?:content|text)":"[^"]')  # an event with text, in either protocol


def _departure(upstream: str, tag: str) -> dict:
    """The mock's record, once the leaving has reached it (boundedly)."""
    deadline = time.monotonic() + 5
    while True:
        seen = httpx.get(f"{upstream}/mock/departures/{tag}").json()
        if (seen and seen["gone"]) or time.monotonic() > deadline:
            return seen
        time.sleep(0.02)


def _request(route: str, model: str, key: str, directive: dict) -> tuple[str, dict, dict]:
    content = "!mock " + json.dumps(directive)
    body: dict = {
        "model": model,
        "stream": True,
        "messages": [{"role": "user", "content": content}],
    }
    headers = {"authorization": f"Bearer {key}"}
    if route == "/v1/messages":
        body["max_tokens"] = 500
        headers["anthropic-version"] = "2023-06-01"
    return route, body, headers


def _read_then_leave(gateway: str, request: tuple[str, dict, dict], pieces: int) -> tuple[str, int]:
    """Reads `pieces` events with text, then closes the connection; returns the request id
    and the size of the request's body."""
    route, body, headers = request
    seen = 0
    with httpx.stream("POST", f"{gateway}{route}", json=body, headers=headers) as response:
        assert response.status_code == 200
        request_id = response.headers["x-request-id"]
        size = len(response.request.content)
        for line in response.iter_lines():
            if line.startswith("data:") and TEXT.search(line):
                seen += 1
                if seen == pieces:
                    break
    return request_id, size


@pytest.mark.parametrize(
    ("route", "model"),
    [
        ("/v1/chat/completions", "test/echo"),  # same protocol: relayed undecoded
        ("/v1/messages", "test/claude"),  # Anthropic to Anthropic: relayed natively
        ("/v1/chat/completions", "test/claude"),  # translated
    ],
)
def test_a_client_leaving_mid_stream_stops_the_provider_and_pays_for_what_it_got(
    gateway, mock_upstream, make_account, route, model
):
    # given: a provider streaming 200 pieces slowly
    account, tag = make_account(), uuid.uuid4().hex
    directive = {"chunks": 200, "chunk_delay": 0.05, "watch": tag}

    # when: the client reads two of them and closes
    request_id, size = _read_then_leave(
        gateway, _request(route, model, account.key, directive), pieces=2
    )

    # then: the provider saw its client leave long before the end
    seen = _departure(mock_upstream.url, tag)
    assert seen["gone"] and not seen["finished"] and seen["sent"] < 30
    # and the request is billed for what was relayed, by the rule for cut streams
    log = settled(request_id)
    assert (log.status, log.error_type) == (499, "client_closed")
    assert 2 <= log.completion_tokens <= 12
    price_in, price_out = PRICES[model]
    if model == "test/echo":  # the provider reports usage only at the end: an estimate
        assert log.prompt_tokens == size // 4
    else:  # Anthropic reports the prompt's tokens in message_start
        assert 0 < log.prompt_tokens < size // 4
    expected = (log.prompt_tokens * price_in + log.completion_tokens * price_out) / 10**6
    assert log.cost == expected > 0
    row = CreditAccount.objects.get(user=account.user)
    assert (row.balance, row.held) == (Decimal(10) - expected, 0)


def test_a_client_leaving_before_a_json_answer_stops_the_provider_and_pays_nothing(
    gateway, mock_upstream, make_account
):
    account, tag = make_account(), uuid.uuid4().hex
    content = "!mock " + json.dumps({"delay": 1.5, "watch": tag})
    body = {"model": "test/echo", "messages": [{"role": "user", "content": content}]}

    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway}/v1/chat/completions",
            json=body,
            timeout=0.4,
            headers={"authorization": f"Bearer {account.key}"},
        )

    seen = _departure(mock_upstream.url, tag)
    assert seen["gone"] and seen["sent"] == 0  # the provider's connection was closed
    log = _latest_settled(account)
    assert (log.status, log.error_type, log.cost) == (499, "client_closed", 0)
    row = CreditAccount.objects.get(user=account.user)
    assert (row.balance, row.held) == (Decimal(10), 0)


def _latest_settled(account):  # type: ignore[no-untyped-def]
    from billing.models import RequestLog

    deadline = time.monotonic() + 10
    while (log := RequestLog.objects.filter(user=account.user).first()) is None:
        assert time.monotonic() < deadline, "the request was not settled"
        time.sleep(0.02)
    return log
