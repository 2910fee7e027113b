"""The live monitoring feed (monitoring.live): `/ws/monitoring/` pushes the realtime figures
every second to staff, by their session; anyone else is closed with 4403."""

from __future__ import annotations

import asyncio

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import connections
from django.test import Client

from accounts.services import user_create
from config.asgi import application
from tests.support.request_logs import request_logged

# The consumer reads the database from a worker thread: the rows must be committed.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.smoke]


def _session_cookie(email: str, role: str = "user") -> bytes:
    user = user_create(email=email, password="long pass phrase!")
    user.role = role
    user.save()
    client = Client()
    client.force_login(user)
    return f"sessionid={client.cookies['sessionid'].value}".encode()


async def _hang_up(feed: WebsocketCommunicator) -> None:
    await feed.disconnect()
    # The consumers' database thread outlives the test: its connection must not (the test
    # database could not be dropped).
    await database_sync_to_async(connections.close_all)()


def _feed(cookie: bytes | None, origin: bytes = b"http://localhost") -> WebsocketCommunicator:
    headers = [(b"origin", origin)]
    if cookie:
        headers.append((b"cookie", cookie))
    return WebsocketCommunicator(application, "/ws/monitoring/", headers=headers)


def test_staff_get_the_figures_every_second():
    cookie = _session_cookie("feed-staff@example.com", role="developer")
    request_logged(model="test/echo", provider="mock")

    async def watch() -> list[dict]:
        feed = _feed(cookie)
        connected, _ = await feed.connect()
        assert connected
        received = [await feed.receive_json_from(timeout=5) for _ in range(2)]
        await _hang_up(feed)
        return received

    first, second = asyncio.run(watch())
    assert first["type"] == second["type"] == "realtime"
    assert first["data"]["windows"]["5m"]["requests"] == 1
    assert "in_flight" in first["data"]


def test_customers_and_strangers_are_closed():
    cookie = _session_cookie("feed-customer@example.com")

    async def knock(who: bytes | None) -> tuple[bool, int | None]:
        feed = _feed(who)
        connected, code = await feed.connect()
        await _hang_up(feed)
        return connected, code

    assert asyncio.run(knock(cookie)) == (False, 4403)
    assert asyncio.run(knock(None)) == (False, 4403)


def test_another_sites_page_cannot_open_it():
    cookie = _session_cookie("feed-staff2@example.com", role="developer")

    async def knock() -> bool:
        feed = _feed(cookie, origin=b"https://evil.example")
        connected, _ = await feed.connect()
        await _hang_up(feed)
        return connected

    assert asyncio.run(knock()) is False
