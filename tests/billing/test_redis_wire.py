"""The multiplexed hot-path connection: each caller gets its own answer, in any interleaving,
and the connection survives a flushed script cache and a killed socket."""

from __future__ import annotations

import asyncio
import os

import hiredis
import pytest
import redis
from django.conf import settings

from core.redis_wire import Endpoint, RedisWire, RedisWireError

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="the embedded lane has no Redis")

ECHO_OR_FAIL = """
if ARGV[1] == 'bad' then return redis.error_reply('refused ' .. KEYS[1]) end
return ARGV[1] .. '@' .. KEYS[1]
"""


def test_concurrent_calls_each_get_their_own_answer_and_only_the_bad_one_fails():
    async def scenario() -> list[object]:
        wire = RedisWire(settings.REDIS_URL)
        calls = [
            wire.evalsha(ECHO_OR_FAIL, [f"k{i}"], ["bad" if i % 7 == 3 else f"v{i}"])
            for i in range(500)
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        await wire.close()
        return results

    results = asyncio.run(scenario())

    for i, result in enumerate(results):
        if i % 7 == 3:
            assert isinstance(result, hiredis.ReplyError) and f"refused k{i}" in str(result)
        else:
            assert result == f"v{i}@k{i}".encode()


def test_it_selects_the_urls_database():
    sync = redis.Redis.from_url(settings.REDIS_URL)
    sync.delete("gwz:test:wire")

    async def scenario() -> None:
        wire = RedisWire(settings.REDIS_URL)
        await asyncio.gather(*(wire.call("INCR", "gwz:test:wire") for _ in range(10)))
        await wire.close()

    asyncio.run(scenario())

    assert Endpoint.from_url(settings.REDIS_URL).db == sync.connection_pool.connection_kwargs["db"]
    assert sync.get("gwz:test:wire") == b"10"


def test_it_reloads_scripts_after_redis_forgets_them():
    sync = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario() -> list[object]:
        wire = RedisWire(settings.REDIS_URL)
        first = await wire.evalsha(ECHO_OR_FAIL, ["k"], ["a"])
        sync.script_flush()
        again = await asyncio.gather(*(wire.evalsha(ECHO_OR_FAIL, ["k"], ["b"]) for _ in range(5)))
        await wire.close()
        return [first, *again]

    assert asyncio.run(scenario()) == [b"a@k"] + [b"b@k"] * 5


def test_a_killed_connection_fails_what_was_in_flight_and_the_next_call_reconnects():
    sync = redis.Redis.from_url(settings.REDIS_URL)

    async def scenario() -> tuple[object, object]:
        wire = RedisWire(settings.REDIS_URL)
        name = f"gwz-wire-test-{os.getpid()}"
        await wire.call("CLIENT", "SETNAME", name)
        in_flight = asyncio.ensure_future(wire.call("BLPOP", "gwz:test:never", 5))
        await asyncio.sleep(0.1)
        for client in sync.client_list():
            if client["name"] == name:
                sync.client_kill_filter(_id=client["id"])
        lost = await asyncio.gather(in_flight, return_exceptions=True)
        after = await wire.call("PING")
        await wire.close()
        return lost[0], after

    lost, after = asyncio.run(scenario())

    assert isinstance(lost, RedisWireError)
    assert after == b"PONG"


def test_a_reply_that_never_comes_drops_the_connection_after_the_timeout():
    async def scenario() -> object:
        wire = RedisWire(settings.REDIS_URL, timeout=0.5)
        # BLPOP on an empty list holds the reply for 10 s: to the client, a stuck Redis.
        result = await asyncio.gather(
            wire.call("BLPOP", "gwz:test:never", 10), return_exceptions=True
        )
        await wire.close()
        return result[0]

    assert isinstance(asyncio.run(asyncio.wait_for(scenario(), 5)), RedisWireError)


def test_it_reads_every_url_form():
    assert Endpoint.from_url("redis://:s%40cret@cache.internal:6380/3") == Endpoint(
        "cache.internal", 6380, 3, None, "s@cret", False
    )
    assert Endpoint.from_url("rediss://app:pw@r.example.com/0").tls
    assert Endpoint.from_url("unix:///run/redis.sock?db=2").unix_path == "/run/redis.sock"
    with pytest.raises(ValueError):
        Endpoint.from_url("http://127.0.0.1:6379")


def test_an_argument_that_cannot_be_sent_fails_alone_and_shifts_no_reply():
    sync = redis.Redis.from_url(settings.REDIS_URL)
    sync.set("gwz:test:a", "A")
    sync.set("gwz:test:b", "B")

    async def scenario() -> list[object]:
        wire = RedisWire(settings.REDIS_URL)
        bad = await asyncio.gather(wire.call("SET", "gwz:test:a", None), return_exceptions=True)  # type: ignore[arg-type]
        good = await asyncio.gather(wire.call("GET", "gwz:test:a"), wire.call("GET", "gwz:test:b"))
        await wire.close()
        return [bad[0], *good]

    bad, a, b = asyncio.run(asyncio.wait_for(scenario(), 5))

    assert isinstance(bad, Exception) and (a, b) == (b"A", b"B")


def test_a_server_that_never_answers_the_handshake_fails_within_the_timeout():
    async def scenario() -> object:
        silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        port = silent.sockets[0].getsockname()[1]
        wire = RedisWire(f"redis://:pw@127.0.0.1:{port}/3", timeout=0.5)
        result = await asyncio.gather(wire.call("PING"), return_exceptions=True)
        await wire.close()
        silent.close()
        return result[0]

    assert isinstance(asyncio.run(asyncio.wait_for(scenario(), 5)), RedisWireError)


def test_the_database_in_the_query_string_wins_as_in_redis_py():
    assert Endpoint.from_url("redis://h:6379?db=2").db == 2
    with pytest.raises(ValueError):
        Endpoint.from_url("redis://h:6379/0?socket_timeout=3")
