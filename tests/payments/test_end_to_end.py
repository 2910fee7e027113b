"""End to end over real HTTP, as a customer and Stripe would: sign up, make a key, be refused
for want of credit, buy credit at the Stripe double, whose signed event reaches the gateway
process's webhook over HTTP, spend it; and a purchase granted while 50 requests spend at
once, the balance equal to the ledger and to Redis' figure afterwards."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openai
import pytest
from django.db.models import Sum

from billing.models import CreditAccount, LedgerEntry
from tests.conftest import STRIPE_KEY, WEBHOOK_SECRET
from tests.support.waits import settled_count

DIRECTIVE = "!mock " + json.dumps({"completion_tokens": 10})  # 0.01 on test/output-only


@pytest.fixture
def paying_gateway(own_gateway: Any, stripe_double: str, live_db: None) -> Iterator[str]:
    gateway = own_gateway(
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_API_BASE=stripe_double,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
    )
    hook = {"url": f"{gateway}/api/stripe/webhook", "secret": WEBHOOK_SECRET}
    httpx.post(f"{stripe_double}/_double/webhook", data=hook).raise_for_status()
    yield gateway
    # The double is shared: its events go nowhere again (tests post them themselves).
    httpx.post(f"{stripe_double}/_double/webhook", data={"url": "", "secret": WEBHOOK_SECRET})


def _balance(gateway: str, token: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway}/user/balance", headers={"authorization": f"Bearer {token}"})
    return dict(answer.json())


def _buy(gateway: str, double: str, token: str, amount: str) -> None:
    opened = httpx.post(
        f"{gateway}/api/stripe/checkout-session",
        json={"amount": amount},
        headers={"authorization": f"Bearer {token}"},
    )
    assert opened.status_code == 201, opened.text
    paid = httpx.post(
        f"{double}/_double/checkout/sessions/{opened.json()['session_id']}/pay", timeout=30
    ).json()
    assert paid["delivered"] == 200  # the gateway took Stripe's event over HTTP


def test_sign_up_buy_and_spend_over_http(paying_gateway, stripe_double):
    gateway = paying_gateway
    signed_up = httpx.post(
        f"{gateway}/auth/signup",
        json={"email": f"e2e{time.time_ns()}@example.com", "password": "a long passphrase"},
    )
    assert signed_up.status_code == 201, signed_up.text
    jwt = signed_up.json()["access"]
    made = httpx.post(
        f"{gateway}/user/api-keys", json={"name": "app"}, headers={"authorization": f"Bearer {jwt}"}
    )
    key = made.json()["key"]
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0)
    request = {"model": "test/output-only", "messages": [{"role": "user", "content": DIRECTIVE}]}
    with pytest.raises(openai.APIStatusError) as refused:
        client.chat.completions.create(**request)
    assert refused.value.status_code == 402

    _buy(gateway, stripe_double, jwt, "10")
    assert _balance(gateway, jwt)["balance"] == "10"
    answer = client.chat.completions.create(**request)
    assert answer.choices[0].message.content

    # A second purchase granted while 50 requests spend at once.
    user_id = signed_up.json()["id"]

    async def burst() -> list[int]:
        async with openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0) as c:

            async def one() -> int:
                await c.chat.completions.create(**request)
                return 1

            buying = asyncio.to_thread(_buy, gateway, stripe_double, jwt, "5")
            results = await asyncio.gather(*(one() for _ in range(50)), buying)
            return [r for r in results if r]

    assert len(asyncio.run(burst())) == 50
    settled_count(user_id, 51)
    account = CreditAccount.objects.get(user_id=user_id)
    ledger = LedgerEntry.objects.filter(user_id=user_id).aggregate(s=Sum("amount"))["s"]
    assert account.balance == ledger == Decimal("15") - Decimal("0.01") * 51
    shown = _balance(gateway, jwt)
    assert (shown["balance"], shown["available"], shown["held"]) == ("14.49", "14.49", "0")
