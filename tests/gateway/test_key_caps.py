"""A key's own caps: a maximum number of requests, and spend limits per day, per month and in
all. Reached, they are a 403 that says which (waiting does not help a lifetime cap); a
refused request is not charged. Spend counts what a request may cost while it runs, then
what it did cost."""

from __future__ import annotations

import calendar
import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
from rest_framework.test import APIClient

from accounts.models import ApiKey
from billing.models import CreditAccount
from tests.support.waits import settled

pytestmark = pytest.mark.smoke


def _capped(make_account: Any, **caps: Any) -> Any:
    account = make_account(credit=Decimal("1"))
    ApiKey.objects.filter(pk=account.key_id).update(**caps)
    return account


def _chat(gateway: str, key: str, **extra: Any) -> httpx.Response:
    body = {"model": "test/echo", "messages": [{"role": "user", "content": "hi"}], **extra}
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json=body,
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_max_requests_is_a_403_once_reached_and_costs_nothing(gateway, make_account):
    account = _capped(make_account, max_requests=2)

    answers = [_chat(gateway, account.key) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 403]
    error = answers[2].json()["error"]
    assert (error["type"], error["code"]) == ("permission_error", "key_max_requests_reached")
    assert "2 requests" in error["message"]
    log = settled(answers[2].headers["x-request-id"])
    assert (log.status, log.cost) == (403, 0)
    charged = sum(Decimal(a.headers["x-gatewayz-cost"]) for a in answers[:2])
    assert CreditAccount.objects.get(user=account.user).balance == Decimal(1) - charged


def test_the_lifetime_count_is_rebuilt_from_the_request_log(gateway, make_account, live_db):
    from django.conf import settings

    account = _capped(make_account, max_requests=3)
    for _ in range(2):
        settled(_chat(gateway, account.key).headers["x-request-id"])
    if settings.REDIS_URL:  # Redis loses the counter (a restart without persistence)
        from core.redis_sync import sync_client

        sync_client().delete(f"gwz:rl:key:{account.key_id}:requests_total")
    key = ApiKey.objects.get(pk=account.key_id)
    key.name = "reloaded"  # a save makes every process load the key again, with its count
    key.save()
    time.sleep(1.1)

    assert [_chat(gateway, account.key).status_code for _ in range(2)] == [200, 403]


def test_a_daily_spend_limit_refuses_what_could_exceed_it(gateway, make_account):
    # test/echo: 1.00 in / 2.00 out per 1M tokens, max 1000 output tokens: a request without
    # max_tokens may cost ~0.0022; with max_tokens 10, ~0.0002.
    account = _capped(make_account, spend_limit_day=Decimal("0.002"))

    refused = _chat(gateway, account.key)
    served = _chat(gateway, account.key, max_tokens=10)

    assert refused.status_code == 403
    error = refused.json()["error"]
    assert error["code"] == "key_spend_limit_reached"
    assert "0.002 credits today" in error["message"]
    tomorrow = (int(time.time()) // 86400 + 1) * 86400
    assert refused.headers["x-gatewayz-limit-resets-at"] == str(tomorrow)
    assert settled(refused.headers["x-request-id"]).cost == 0
    assert served.status_code == 200


def test_a_monthly_limit_resets_at_the_start_of_next_month(gateway, make_account):
    account = _capped(make_account, spend_limit_month=Decimal("0.000001"))
    refused = _chat(gateway, account.key, max_tokens=10)
    assert refused.status_code == 403
    now = time.gmtime()
    year, month = (now.tm_year + 1, 1) if now.tm_mon == 12 else (now.tm_year, now.tm_mon + 1)
    assert refused.headers["x-gatewayz-limit-resets-at"] == str(
        calendar.timegm((year, month, 1, 0, 0, 0))
    )


def test_spend_counts_the_actual_cost_once_a_request_is_over(gateway, make_account):
    # A request with max_tokens 10 holds ~0.000105 (~85 body bytes at 1.00, 10 tokens at
    # 2.00 per 1M) and costs ~0.00001. Room for one hold; a second fits only if the first
    # counts what it cost, not what it held.
    account = _capped(make_account, spend_limit_total=Decimal("0.00015"))

    first = _chat(gateway, account.key, max_tokens=10)
    settled(first.headers["x-request-id"])
    second = _chat(gateway, account.key, max_tokens=10)

    assert first.status_code == 200
    cost = Decimal(first.headers["x-gatewayz-cost"])
    assert cost < Decimal("0.00004")
    assert second.status_code == 200  # had the first counted its hold, it would be refused


def test_customers_cap_their_own_keys(make_account):
    account = make_account()
    client = APIClient()
    client.force_login(account.user)

    bad = client.patch(
        f"/user/api-keys/{account.key_id}",
        {"max_requests": 0, "spend_limit_day": "-1"},
        format="json",
    )
    assert bad.status_code == 400 and set(bad.json()) == {"max_requests", "spend_limit_day"}
    ok = client.patch(
        f"/user/api-keys/{account.key_id}",
        {"max_requests": 1000, "spend_limit_month": "25.5"},
        format="json",
    )
    assert ok.status_code == 200
    assert (ok.json()["max_requests"], ok.json()["spend_limit_month"]) == (1000, "25.500000")
