"""The garbage collector's tuning (gateway.runtime.gc_tune) rests on one property of the
request path: a served request is freed by reference counting alone, leaving no reference
cycles for the collector. Checked on an inference worker through the official SDKs, streams
included; a change that makes every request leave a cycle fails here."""

from __future__ import annotations

from decimal import Decimal

import anthropic
import httpx
import openai
import pytest

from gateway.runtime import GC_YOUNG_THRESHOLD

pytestmark = pytest.mark.smoke

REQUESTS = 20  # of each kind


@pytest.fixture(scope="module")
def probed_gateway(start_gateway, stop_gateway):
    url = start_gateway("tests.support.gc_probe:application")
    yield url
    stop_gateway(url)


def _reading(gateway: str) -> dict:
    response = httpx.get(f"{gateway}/__gc", timeout=10)
    assert response.status_code == 200
    return response.json()


def test_startup_objects_are_frozen_and_young_collections_rare(probed_gateway):
    reading = _reading(probed_gateway)

    assert reading["frozen"] > 10_000  # Django, the modules, the settings
    assert reading["young_threshold"] == GC_YOUNG_THRESHOLD


def test_served_requests_leave_no_cycles(probed_gateway, make_account):
    account = make_account(credit=Decimal("1"))
    chat = openai.OpenAI(base_url=f"{probed_gateway}/v1", api_key=account.key, max_retries=0)
    messages = anthropic.Anthropic(base_url=probed_gateway, api_key=account.key, max_retries=0)
    prompt = [{"role": "user", "content": "hello there"}]
    chat.chat.completions.create(model="test/echo", messages=prompt)  # warm: key, catalog
    _reading(probed_gateway)

    for _ in range(REQUESTS):
        answer = chat.chat.completions.create(model="test/echo", messages=prompt)
        assert answer.choices[0].message.content == "You said: hello there"
        chunks = list(chat.chat.completions.create(model="test/echo", messages=prompt, stream=True))
        assert chunks
        reply = messages.messages.create(model="test/echo", max_tokens=50, messages=prompt)
        assert reply.content
    unreachable = _reading(probed_gateway)["unreachable"]

    assert unreachable < REQUESTS, f"{3 * REQUESTS} requests left {unreachable} objects in cycles"
