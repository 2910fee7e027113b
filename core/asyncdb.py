"""Database work from async code: run in a worker thread, never on the event loop.

Each call first lets Django drop a connection that broke or outlived CONN_MAX_AGE, as it
does between requests; threads outside Django's request cycle would otherwise keep a dead
connection after a database restart. With Django's pool (GATEWAYZ_DB_POOL_SIZE), the
connection goes back to the pool when the call ends, as at the end of a web request: a
thread that holds one idle would keep it from every other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections, connection

P = ParamSpec("P")
R = TypeVar("R")


def _with_fresh_connection(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    close_old_connections()
    return fn(*args, **kwargs)


def _pooled(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    try:
        return fn(*args, **kwargs)
    finally:
        connection.close()  # back to the pool, not closed


POOLED = "pool" in settings.DATABASES["default"].get("OPTIONS", {})


_in_thread = sync_to_async(_pooled if POOLED else _with_fresh_connection, thread_sensitive=False)


async def db_call(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await _in_thread(fn, *args, **kwargs)
