"""50 concurrent requests on a balance that covers exactly 10: never overspent, every request
either served and charged or refused with 402 and not charged, ledger == request log."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal

import httpx
import openai
import pytest
from django.db.models import Sum

from billing.models import CreditAccount, CreditHold, LedgerEntry, RequestLog
from tests.support.waits import settled_count

pytestmark = pytest.mark.smoke

# test/output-only: input free, output 1000 credits per 1M tokens, at most 10 output tokens.
# So each request holds exactly 0.01 and, producing 10 tokens, costs exactly 0.01.
COST = Decimal("0.01")
DIRECTIVE = "!mock " + json.dumps({"completion_tokens": 10})


async def _one(client: openai.AsyncOpenAI, stream: bool) -> str:
    try:
        kwargs = {"model": "test/output-only", "messages": [{"role": "user", "content": DIRECTIVE}]}
        if stream:
            response = await client.chat.completions.create(**kwargs, stream=True)
            async for _ in response:
                pass
        else:
            await client.chat.completions.create(**kwargs)
        return "served"
    except openai.APIStatusError as exc:
        return f"refused {exc.status_code}"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_it_never_spends_more_than_the_balance(gateway, make_account, stream):
    account = make_account(credit=COST * 10)

    async def burst() -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=account.key, max_retries=0)
        results = await asyncio.gather(*(_one(client, stream) for _ in range(50)))
        await client.close()
        return results

    results = asyncio.run(burst())

    assert results.count("served") == 10
    assert results.count("refused 402") == 40
    logs = settled_count(account.user.pk, 50)
    served = [log for log in logs if log.status == 200]
    refused = [log for log in logs if log.status == 402]
    assert len(served) == 10 and len(refused) == 40
    assert all(log.cost == COST for log in served)
    assert all(log.cost == 0 for log in refused)
    row = CreditAccount.objects.get(user=account.user)
    assert (row.balance, row.held) == (0, 0)
    charges = LedgerEntry.objects.filter(user=account.user, kind="usage")
    assert charges.aggregate(total=Sum("amount"))["total"] == -sum(log.cost for log in logs)
    assert set(charges.values_list("reference", flat=True)) == {log.request_id for log in served}
    assert not CreditHold.objects.filter(user=account.user).exists()
    assert RequestLog.objects.filter(user=account.user).count() == 50
    balance = httpx.get(
        f"{gateway}/user/balance", headers={"authorization": f"Bearer {account.key}"}
    )
    assert balance.json() == {
        "balance": "0",
        "held": "0",
        "available": "0",
        "allowance": "0",
        "allowance_expires_at": None,
        "purchased": "0",
        "currency": "credits",
    }


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_plans_allowance_is_spent_before_purchased_credit(gateway, make_account, stream):
    """25 requests' worth of allowance and 30 of purchased credit, 50 requests at once: all
    served; the allowance is gone and 5 requests' worth of purchased credit is left."""
    from datetime import timedelta

    from django.utils import timezone

    from billing.allowance import allowance_grant

    account = make_account(credit=COST * 30)
    allowance_grant(
        user_id=account.user.pk,
        amount=COST * 25,
        expires_at=timezone.now() + timedelta(days=30),
        reference=f"test-allowance:{account.user.pk}",
        memo="Pro allowance",
    )

    async def burst() -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{gateway}/v1", api_key=account.key, max_retries=0)
        results = await asyncio.gather(*(_one(client, stream) for _ in range(50)))
        await client.close()
        return results

    assert asyncio.run(burst()).count("served") == 50
    settled_count(account.user.pk, 50)
    row = CreditAccount.objects.get(user=account.user)
    assert (row.balance, row.allowance, row.purchased, row.held) == (COST * 5, 0, COST * 5, 0)
    shown = httpx.get(
        f"{gateway}/user/balance", headers={"authorization": f"Bearer {account.key}"}
    ).json()
    assert (shown["available"], shown["allowance"], shown["purchased"]) == ("0.05", "0", "0.05")
