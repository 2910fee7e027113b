"""The live feed: `/ws/monitoring/`, a websocket that pushes the realtime figures
(monitoring.realtime) every second to staff, for the admin's analytics page.

Staff only, by their Django session (Channels' AuthMiddlewareStack; the origin checked
against ALLOWED_HOSTS): anyone else is closed with 4403 before a figure is sent. The figures
are computed once a second per process however many staff watch (`Latest`), so ten open
dashboards cost what one does.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from monitoring.realtime import realtime_stats

INTERVAL_SECONDS = 1.0
FORBIDDEN = 4403  # a websocket close code in the private range, read as HTTP's 403


class Latest:
    """The latest figures, recomputed at most once an interval; callers waiting on a
    recomputation share it."""

    def __init__(self) -> None:
        self._figures: dict[str, Any] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> dict[str, Any]:
        async with self._lock:
            if self._figures is None or time.monotonic() - self._at >= INTERVAL_SECONDS:
                self._figures = await database_sync_to_async(realtime_stats)()
                self._at = time.monotonic()
            return self._figures


latest = Latest()


def _may_watch(user: Any) -> bool:
    return bool(
        user
        and user.is_authenticated
        and user.is_staff
        and user.has_perm("monitoring.view_usagerollup")
    )


class MonitoringFeed(AsyncJsonWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        # Permissions come from the database (Channels' way: one thread for consumers'
        # database work, its connections closed when stale as between requests).
        allowed = await database_sync_to_async(_may_watch)(user)
        if not allowed:
            await self.close(code=FORBIDDEN)
            return
        await self.accept()
        self._pushing = asyncio.create_task(self._push())

    async def _push(self) -> None:
        while True:
            await self.send_json({"type": "realtime", "data": await latest.get()})
            await asyncio.sleep(INTERVAL_SECONDS)

    async def disconnect(self, code: int) -> None:
        pushing = getattr(self, "_pushing", None)
        if pushing is not None:
            pushing.cancel()

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """Nothing to receive: the feed only pushes."""
