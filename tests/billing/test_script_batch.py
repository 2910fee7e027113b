"""Script calls made in one event-loop turn share a pipeline, each getting its own answer."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis
from django.conf import settings

from billing.script_batch import ScriptBatcher

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="the embedded lane has no Redis")

ECHO_OR_FAIL = """
if ARGV[1] == 'bad' then return redis.error_reply('refused ' .. KEYS[1]) end
return ARGV[1] .. '@' .. KEYS[1]
"""


def test_it_answers_each_call_of_a_batch_and_fails_only_the_bad_one():
    async def scenario() -> tuple[list[object], list[object]]:
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        batcher = ScriptBatcher(client, ECHO_OR_FAIL)
        together = await asyncio.gather(
            batcher(["k1"], ["a"]),
            batcher(["k2"], ["bad"]),
            batcher(["k3"], ["c"]),
            return_exceptions=True,
        )
        alone = [await batcher(["k4"], ["d"])]
        await client.aclose()
        return together, alone

    together, alone = asyncio.run(scenario())

    assert together[0] == b"a@k1" and together[2] == b"c@k3"
    assert isinstance(together[1], Exception) and "refused k2" in str(together[1])
    assert alone == [b"d@k4"]
