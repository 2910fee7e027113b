"""Credit and limit keys in groups (core.redis_groups), the layout a Redis Cluster shards by:
a gateway with GATEWAYZ_REDIS_CREDIT_GROUPS=4 serves, settles and records as with one
group, every key of a customer under its group's hash tag, each group's stream drained,
an expired hold released group by group, and a system-wide limit shared out."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path

import openai
import pytest
from django.conf import settings
from django.test import override_settings

from billing.models import CreditAccount
from billing.redis_credit import (
    RedisCredit,
    avail_key,
    credit_holds_release_expired_redis,
    from_pico,
)
from billing.services import credit_avail_seed_from_ledger
from core.redis_sync import sync_client
from tests.support.waits import settled

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="key groups are Redis'")

GROUPS = 4
INFERENCE_APP = "config.asgi_inference:application"


def _client(url: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=20)


def _tag(user_id: int) -> str:
    return f"{{g{user_id % GROUPS}}}:"


def _grouped(own_gateway, spool: Path, **env: str) -> str:
    """A gateway with 4 key groups. Its spool folder is its own: a host's processes share
    one layout, and the session's other gateways' journal files name keys of one group."""
    return own_gateway(
        app=INFERENCE_APP,
        GATEWAYZ_REDIS_CREDIT_GROUPS=str(GROUPS),
        GATEWAYZ_USAGE_SPOOL_DIR=str(spool),
        **env,
    )


def test_a_gateway_with_groups_serves_settles_and_records(own_gateway, make_account, tmp_path):
    url = _grouped(own_gateway, tmp_path)
    accounts = [make_account(credit=Decimal("1")) for _ in range(GROUPS)]
    assert len({a.user.pk % GROUPS for a in accounts}) == GROUPS  # every group in use
    redis = sync_client()
    for account in accounts:
        client = _client(url, account.key)
        raw = client.chat.completions.with_raw_response.create(
            model="test/echo", messages=[{"role": "user", "content": "hi"}]
        )
        log = settled(raw.headers["x-request-id"])
        assert log.cost == Decimal(raw.headers["x-gatewayz-cost"])
        stream = client.chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "a stream"}], stream=True
        )
        assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

        user = account.user.pk
        tag = _tag(user)
        with override_settings(GATEWAYZ_REDIS_CREDIT_GROUPS=GROUPS):
            grouped = avail_key(user)
        assert grouped == f"gwz:credit:{tag}avail:{user}"
        # Both requests recorded; Redis' balance (under the group's tag only) is the
        # database's once the second one is written.
        deadline = time.monotonic() + 15
        while True:
            balance = CreditAccount.objects.get(user_id=user).balance
            if balance < Decimal(1) - log.cost:
                break
            assert time.monotonic() < deadline, "the stream was never recorded"
            time.sleep(0.1)
        assert from_pico(redis.get(grouped)) == balance
        assert not redis.exists(f"gwz:credit:avail:{user}")
        # The key's rate-limit counters carry the tag: the admission script's keys share
        # one slot.
        assert redis.keys(f"gwz:rl:{tag}key:{account.key_id}:*")
        assert not redis.keys(f"gwz:rl:key:{account.key_id}:*")
    for group in range(GROUPS):
        assert redis.xinfo_groups(f"gwz:credit:{{g{group}}}:usage")  # drained, by its group


def test_an_expired_hold_is_released_in_its_group(make_account):
    account = make_account(credit=Decimal("1"))
    user = account.user.pk

    async def admit() -> list[int]:
        credit = RedisCredit(settings.REDIS_URL)
        try:
            return await credit.admit(
                user_id=user,
                request_id=f"groups-expired-{user}",
                amount=Decimal("0.25"),
                expires_at=time.time() - 1,
            )
        finally:
            await credit.close()

    with override_settings(GATEWAYZ_REDIS_CREDIT_GROUPS=GROUPS):
        credit_avail_seed_from_ledger(user_id=user)
        assert asyncio.run(admit()) == [1]
        key = avail_key(user)
        assert from_pico(sync_client().get(key)) == Decimal("0.75")
        assert sync_client().zscore(f"gwz:credit:{_tag(user)}holds", f"groups-expired-{user}")
        assert credit_holds_release_expired_redis(now=time.time()) >= 1
        assert from_pico(sync_client().get(key)) == Decimal("1")


def test_a_system_limit_is_shared_out_between_the_groups(own_gateway, make_account, tmp_path):
    """8 requests a minute for the whole system, in 4 groups: 2 per group."""
    url = _grouped(own_gateway, tmp_path, GATEWAYZ_SYSTEM_RPM="8")
    client = _client(url, make_account(credit=Decimal("1")).key)
    into_minute = time.time() % 60
    if into_minute > 50:  # the minute's window could turn over mid-test: wait for the next
        time.sleep(60 - into_minute)
    for _ in range(2):
        client.chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.RateLimitError, match="Gatewayz"):
        client.chat.completions.create(
            model="test/echo", messages=[{"role": "user", "content": "hi"}]
        )
