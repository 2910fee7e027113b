"""Nothing dropped or leaked silently (providers.translate.fields): a field a translated
request cannot carry is dropped by a declared rule and named in `x-gatewayz-dropped-params`,
never forwarded to a provider that refuses it; `provider.require_parameters` routes only to
deployments that drop nothing."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

pytestmark = pytest.mark.smoke

ANTHROPIC = {"anthropic-version": "2023-06-01"}
ECHO = '!mock {"echo_request": true}'


def _messages(gateway: str, key: str, **body: object) -> httpx.Response:
    payload = {"max_tokens": 100, "messages": [{"role": "user", "content": ECHO}], **body}
    return httpx.post(
        f"{gateway}/v1/messages", json=payload, headers={**ANTHROPIC, "x-api-key": key}
    )


def _seen(response: httpx.Response) -> dict:
    """What the provider was sent, as the mock echoes it back."""
    return json.loads(response.json()["content"][0]["text"])["body"]


def test_top_k_is_dropped_and_named_for_the_chat_api(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    response = _messages(gateway, account.key, model="test/echo", top_k=40, temperature=0.5)

    assert response.status_code == 200  # OpenAI's API refuses top_k: it never gets it
    assert response.headers["x-gatewayz-dropped-params"] == "top_k"
    assert "top_k" not in _seen(response) and _seen(response)["temperature"] == 0.5


def test_top_k_reaches_gemini_which_takes_it(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    response = _messages(gateway, account.key, model="test/gemini", top_k=40)

    assert response.status_code == 200
    assert "x-gatewayz-dropped-params" not in response.headers
    assert _seen(response)["generationConfig"]["topK"] == 40


def test_a_chat_request_to_claude_names_what_anthropic_cannot_take(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    body = {
        "model": "test/claude",
        "messages": [{"role": "user", "content": "hi"}],
        "seed": 7,
        "store": False,  # set to nothing: nothing lost
        "x_vendor_hint": "a",
    }

    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.key}"},
    )

    assert response.status_code == 200
    assert response.headers["x-gatewayz-dropped-params"] == "seed,x_vendor_hint"


def test_a_native_request_drops_nothing(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    body = {"model": "test/echo", "messages": [{"role": "user", "content": "hi"}], "seed": 7}

    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {account.key}"},
    )

    assert response.status_code == 200 and "x-gatewayz-dropped-params" not in response.headers


def test_require_parameters_routes_only_where_nothing_is_dropped(gateway, make_account):
    account = make_account(credit=Decimal("1"))
    strict = {"require_parameters": True}

    dropping = _messages(gateway, account.key, model="test/echo", top_k=40, provider=strict)
    taking = _messages(gateway, account.key, model="test/gemini", top_k=40, provider=strict)

    assert dropping.status_code == 404
    assert dropping.json()["error"]["type"] == "not_found_error"
    assert taking.status_code == 200


def test_what_would_change_the_answer_is_refused_with_its_name(gateway, make_account):
    account = make_account(credit=Decimal("1"))

    response = _messages(gateway, account.key, model="test/echo", mcp_servers=[{"url": "x"}])

    assert response.status_code == 400
    assert "mcp_servers" in response.json()["error"]["message"]
