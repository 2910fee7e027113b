"""The inference workers' entry point serves the gateway's routes in full, without the web
side's apps."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import httpx
import openai
import pytest

from billing.models import CreditAccount
from tests.support.servers import REPO_ROOT
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

INFERENCE_APP = "config.asgi_inference:application"


@pytest.fixture(scope="module")
def inference(start_gateway, stop_gateway) -> Iterator[str]:
    url = start_gateway(app=INFERENCE_APP)
    yield url
    stop_gateway(url)


def test_it_serves_a_chat_completion_and_settles_it(inference, make_account):
    account = make_account(credit=Decimal("1"))
    client = openai.OpenAI(base_url=f"{inference}/v1", api_key=account.key, max_retries=0)

    raw = client.chat.completions.with_raw_response.create(
        model="test/echo", messages=[{"role": "user", "content": "hi"}]
    )

    assert raw.parse().choices[0].message.content == "You said: hi"
    log = settled(raw.headers["x-request-id"])
    assert log.status == 200 and log.cost == Decimal(raw.headers["x-gatewayz-cost"])
    assert CreditAccount.objects.get(user=account.user).balance == Decimal("1") - log.cost


def test_web_routes_are_not_served_here(inference):
    for path in ("/user/balance", "/admin/", "/api/schema"):
        response = httpx.get(f"{inference}{path}")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "unknown_url"
    assert httpx.get(f"{inference}/health").status_code == 200


def test_it_does_not_load_the_web_only_apps():
    probe = "import sys, config.asgi_inference; print(sorted(m for m in ('djstripe', 'stripe') if m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
