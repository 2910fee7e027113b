"""The markup (billing.pricing, GATEWAYZ_MARKUP): customers pay the provider's price times the
markup, rounded up to the pico-credit; each request records both what it cost the customer
and what the provider bills; the customer's own key pays the BYOK fee with no markup and no
provider cost; holds and the listed prices include the markup."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal

import httpx
import pytest

from billing.pricing import hold_amount, image_unit_price, usage_cost, usage_costs
from core.usage import Usage
from providers.byok import byok_deployment
from providers.deployments import Deployment
from tests.support.waits import settled

LISTED = Deployment(
    provider="p",
    protocol="openai",
    base_url="http://x",
    api_key="k",
    connect_timeout=1,
    read_timeout=1,
    upstream_model_id="m",
    input_price=Decimal("0.15"),
    output_price=Decimal("0.6"),
    cached_input_price=Decimal("0.075"),
    per_image_price=Decimal("0.04"),
    markup=Decimal("1.25"),
)


def test_the_customer_pays_the_providers_price_times_the_markup():
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    at_provider = Decimal("0.00045")  # 1000 × 0.15/1M + 500 × 0.6/1M
    assert usage_costs(usage, LISTED) == (Decimal("0.0005625"), at_provider)
    assert usage_cost(usage, LISTED) == Decimal("0.0005625")


def test_a_cost_finer_than_a_pico_credit_is_rounded_up():
    odd = replace(LISTED, markup=Decimal("1.333"), input_price=Decimal("0.000007"))
    usage = Usage(prompt_tokens=1, completion_tokens=0)
    # 7e-12 × 1.333 = 9.331e-12: charged 1e-11, never less than the markup asks.
    assert usage_costs(usage, odd) == (Decimal("1E-11"), Decimal("7E-12"))


def test_the_customers_own_key_pays_the_fee_and_costs_us_nothing(settings):
    settings.GATEWAYZ_BYOK_FEE = Decimal("0.05")
    own = byok_deployment(LISTED, "sk-customer")
    usage = Usage(prompt_tokens=1000, completion_tokens=500)
    assert usage_costs(usage, own) == (Decimal("0.0000225"), 0)  # 5 % of the list price


def test_holds_and_images_include_the_markup():
    plain = replace(LISTED, markup=Decimal(1))
    hold = hold_amount(body_bytes=400, max_output_tokens=100, deployment=LISTED)
    assert hold == hold_amount(body_bytes=400, max_output_tokens=100, deployment=plain) * Decimal(
        "1.25"
    )
    assert image_unit_price(LISTED, size=None, quality=None) == Decimal("0.05")


@pytest.mark.smoke
def test_a_request_records_the_price_and_the_providers_cost(own_gateway, make_account):
    gateway = own_gateway(GATEWAYZ_MARKUP="1.25")
    account = make_account()
    directive = "!mock " + json.dumps({"completion_tokens": 10})
    answer = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "test/output-only", "messages": [{"role": "user", "content": directive}]},
        headers={"authorization": f"Bearer {account.key}"},
    )
    assert answer.status_code == 200, answer.text
    row = settled(answer.headers["x-request-id"])
    # 10 tokens at 1000 credits per 1M: 0.01 at the provider, 0.0125 to the customer.
    assert (row.provider_cost, row.cost) == (Decimal("0.01"), Decimal("0.0125"))
    assert answer.headers["x-gatewayz-cost"] == "0.0125"
    listed = httpx.get(
        f"{gateway}/v1/models/test/output-only", headers={"authorization": f"Bearer {account.key}"}
    ).json()
    assert Decimal(listed["pricing"]["output"]) == Decimal("1250")
