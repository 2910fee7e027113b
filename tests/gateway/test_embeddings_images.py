"""POST /v1/embeddings and /v1/images/generations through the official openai SDK: served by
OpenAI-compatible providers and Fal, priced per token and per image."""

from __future__ import annotations

import base64
import json
from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import CreditAccount
from tests.support.waits import settled

pytestmark = pytest.mark.smoke


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)


def test_embeddings_are_relayed_and_billed_per_input_token(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    raw = _client(gateway, account.key).embeddings.with_raw_response.create(
        model="test/embed", input=["one two three", "four five"], dimensions=8
    )
    result = raw.parse()

    assert [len(e.embedding) for e in result.data] == [8, 8]
    assert result.model == "test/embed" and result.usage.prompt_tokens == 5
    expected = 5 * Decimal("0.02") / Decimal(1_000_000)
    assert Decimal(raw.headers["x-gatewayz-cost"]) == expected
    log = settled(raw.headers["x-request-id"])
    assert (log.endpoint, log.prompt_tokens, log.cost) == ("embeddings", 5, expected)


def test_dall_e_images_are_billed_by_size_and_quality(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    raw = _client(gateway, account.key).images.with_raw_response.generate(
        model="test/dall-e", prompt="a red fox", size="1792x1024", quality="hd"
    )
    result = raw.parse()

    assert result.data is not None and len(result.data) == 1
    assert result.data[0].url and httpx.get(result.data[0].url).status_code == 200
    assert Decimal(raw.headers["x-gatewayz-cost"]) == Decimal("0.16")  # 0.04 × 2 × 2
    log = settled(raw.headers["x-request-id"])
    assert (log.endpoint, log.cost) == ("images.generations", Decimal("0.16"))
    balance = CreditAccount.objects.get(user=account.user).balance
    assert balance == Decimal("1") - Decimal("0.16")


def test_fal_serves_openai_shaped_images_as_urls_or_base64(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    client = _client(gateway, account.key)

    urls = client.images.with_raw_response.generate(
        model="test/flux", prompt="a lighthouse", n=3, size="512x512"
    )
    inline = client.images.generate(
        model="test/flux", prompt="a lighthouse", response_format="b64_json"
    )

    assert urls.parse().data is not None and len(urls.parse().data or []) == 3
    assert urls.headers["x-gatewayz-provider"] == "mock-fal"
    assert Decimal(urls.headers["x-gatewayz-cost"]) == Decimal("0.003") * Decimal("0.25") * 3
    assert inline.data is not None
    assert base64.b64decode(inline.data[0].b64_json or "")[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/v1/images/generations", {"model": "test/dall-e", "prompt": "x", "size": "big"}, "size"),
        ("/v1/images/generations", {"model": "test/dall-e", "prompt": ""}, "prompt"),
        ("/v1/images/generations", {"model": "test/dall-e", "prompt": "x", "n": 11}, "n"),
        ("/v1/images/generations", {"model": "test/echo", "prompt": "x"}, "model"),
        ("/v1/embeddings", {"model": "test/embed", "input": []}, "input"),
        ("/v1/embeddings", {"model": "test/echo", "input": "x"}, "model"),
        (
            "/v1/chat/completions",
            {"model": "test/embed", "messages": [{"role": "user", "content": "x"}]},
            "model",
        ),
    ],
)
def test_bad_requests_are_400s_that_cost_nothing(gateway, make_account, path, body, param):
    account = make_account(credit=Decimal("1"))

    response = httpx.post(
        f"{gateway}{path}", json=body, headers={"authorization": f"Bearer {account.key}"}
    )

    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert settled(response.headers["x-request-id"]).cost == 0
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("1")


def test_an_image_provider_failure_is_not_charged(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    prompt = "!mock " + json.dumps({"status": 500})

    with pytest.raises(openai.APIStatusError) as failed:
        _client(gateway, account.key).images.generate(model="test/flux", prompt=prompt)

    assert failed.value.status_code == 502
    assert settled(failed.value.response.headers["x-request-id"]).cost == 0


def test_a_size_the_catalog_does_not_price_is_billed_at_the_dearest(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    raw = _client(gateway, account.key).images.with_raw_response.generate(
        model="test/flux", prompt="a boat", size="640x480"
    )

    assert raw.parse().data
    assert Decimal(raw.headers["x-gatewayz-cost"]) == Decimal("0.003")  # × 1, the dearest
