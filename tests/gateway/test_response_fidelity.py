"""What a client gets back is what it asked for: the model id it named on every path, the
body it sent forwarded as sent, and one rule for a stream the provider cut, whatever the
route and protocol."""

from __future__ import annotations

import json
from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

from billing.models import CreditAccount
from core.usage import Usage
from gateway.relay.stream import cut_stream_usage, model_renamer
from tests.support.waits import settled


def _openai(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def _anthropic(gateway: str, key: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway, api_key=key, max_retries=0)


HI = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("model", ["test/echo", "echo-alias", "test/claude", "test/gemini"])
def test_chat_answers_name_the_model_the_client_asked_for(gateway, make_account, model):
    client = _openai(gateway, make_account().key)

    raw = client.chat.completions.with_raw_response.create(model=model, messages=HI)
    chunks = list(
        client.chat.completions.create(
            model=model, messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )

    assert raw.parse().model == model
    assert chunks and {c.model for c in chunks} == {model}
    # Which provider served, and the canonical model, are the gateway's headers.
    assert raw.headers["x-gatewayz-provider"]
    assert settled(raw.headers["x-request-id"]).attempts[-1]["status"] == 200


@pytest.mark.parametrize("model", ["test/claude", "claude-test", "test/echo"])
def test_messages_answers_name_the_model_the_client_asked_for(gateway, make_account, model):
    client = _anthropic(gateway, make_account().key)

    message = client.messages.create(model=model, max_tokens=50, messages=HI)
    with client.messages.stream(model=model, max_tokens=50, messages=HI) as stream:
        final = stream.get_final_message()

    assert message.model == model and final.model == model


def test_a_client_without_an_output_limit_gets_none_added(gateway, make_account):
    client = _openai(gateway, make_account().key)
    content = '!mock {"echo_request": true}'

    completion = client.chat.completions.create(
        model="test/echo", messages=[{"role": "user", "content": content}]
    )

    sent = json.loads(completion.choices[0].message.content)["body"]
    assert "max_tokens" not in sent and "max_completion_tokens" not in sent


def test_a_json_answer_cut_after_its_headers_fails_over_and_is_not_charged(gateway, make_account):
    account = make_account()
    content = "!mock " + json.dumps({"cut_after": 1, "only_model": "echo-a"})

    raw = _openai(gateway, account.key).chat.completions.with_raw_response.create(
        model="test/multi", messages=[{"role": "user", "content": content}]
    )

    completion = raw.parse()
    log = settled(raw.headers["x-request-id"])
    assert [(a["provider"], a["status"], a["error"]) for a in log.attempts] == [
        ("mock-a", 200, "upstream_invalid_response"),
        ("mock-b", 200, ""),
    ]
    # Charged once, mock-b's answer at mock-b's prices; nothing for mock-a's half answer.
    usage = completion.usage
    expected = (Decimal(usage.prompt_tokens) * Decimal("0.5") + usage.completion_tokens) / 10**6
    assert log.cost == expected == Decimal(raw.headers["x-gatewayz-cost"])
    assert CreditAccount.objects.get(user=account.user).balance == Decimal(10) - expected


# The one rule for a cut stream, on each path: (route, model, prices in, out per 1M)
CUT_PATHS = [
    ("/v1/chat/completions", "test/echo", "1.00", "2.00"),  # OpenAI → OpenAI, undecoded
    ("/v1/chat/completions", "test/claude", "3.00", "15.00"),  # OpenAI → Anthropic
    ("/v1/messages", "test/claude", "3.00", "15.00"),  # Anthropic → Anthropic, native
    ("/v1/messages", "test/echo", "1.00", "2.00"),  # Anthropic → OpenAI
]


def _cut_stream(gateway: str, key: str, route: str, model: str, cut_after: int):
    content = "!mock " + json.dumps({"chunks": 10, "cut_after": cut_after})
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": content}]}
    headers = {"authorization": f"Bearer {key}", "anthropic-version": "2023-06-01"}
    if route == "/v1/messages":
        body["max_tokens"] = 100
    response = httpx.post(f"{gateway}{route}", json=body, headers=headers, timeout=10)
    return response, len(response.request.content)


@pytest.mark.parametrize(("route", "model", "price_in", "price_out"), CUT_PATHS)
def test_a_stream_cut_by_the_provider_is_billed_by_one_rule_everywhere(
    gateway, make_account, route, model, price_in, price_out
):
    account = make_account()

    response, size = _cut_stream(gateway, account.key, route, model, cut_after=4)

    # One well-formed error event ends it, in the client's protocol.
    events = [line for line in response.text.splitlines() if line.startswith("data:")]
    error = json.loads(events[-1][5:])
    assert error["error"]["type"] in ("server_error", "api_error")
    assert "[DONE]" not in response.text and "message_stop" not in response.text
    log = settled(response.headers["x-request-id"])
    assert (log.status, log.error_type) == (502, "upstream_stream_interrupted")
    # Four pieces of output reached the client: at least four output tokens are billed;
    # the prompt as the provider reported it, else ~4 request bytes per token.
    assert log.completion_tokens == 4
    if model == "test/echo":
        assert log.prompt_tokens == size // 4
    expected = (log.prompt_tokens * Decimal(price_in) + 4 * Decimal(price_out)) / 10**6
    assert log.cost == expected > 0


@pytest.mark.parametrize(("route", "model", "price_in", "price_out"), CUT_PATHS)
def test_a_stream_cut_before_any_output_costs_nothing(
    gateway, make_account, route, model, price_in, price_out
):
    account = make_account()

    response, _ = _cut_stream(gateway, account.key, route, model, cut_after=0)

    log = settled(response.headers["x-request-id"])
    assert (log.status, log.cost) == (502, 0)
    assert CreditAccount.objects.get(user=account.user).balance == Decimal(10)


@pytest.mark.smoke
def test_the_cut_stream_rule():
    reported = Usage(prompt_tokens=50, completion_tokens=1)  # Anthropic's message_start
    assert cut_stream_usage(reported, 0, 400) == Usage()
    assert cut_stream_usage(None, 3, 400) == Usage(prompt_tokens=100, completion_tokens=3)
    assert cut_stream_usage(reported, 3, 400) == Usage(prompt_tokens=50, completion_tokens=3)
    whole = Usage(prompt_tokens=50, completion_tokens=9)
    assert cut_stream_usage(whole, 3, 400) == whole


@pytest.mark.smoke
def test_only_model_fields_are_renamed():
    renamed = model_renamer('my "odd" \\ model')
    text = (
        b'{"model":"gpt-4o-2024-08-06","choices":[{"delta":{"content":"say \\"model\\":\\"x\\""}}]}'
    )
    out = json.loads(renamed(text))
    assert out["model"] == 'my "odd" \\ model'
    assert out["choices"][0]["delta"]["content"] == 'say "model":"x"'
    # A provider writes one `model` in every event: found once, replaced in every piece.
    later = b'{"model":"gpt-4o-2024-08-06","choices":[]}'
    assert json.loads(renamed(later))["model"] == 'my "odd" \\ model'
    spaced = model_renamer("m")
    assert json.loads(spaced(b'{"model": "a\\"b", "x": 1}')) == {"model": "m", "x": 1}
