"""Database work from async code: run in a worker thread, never on the event loop.

Each call first lets Django drop a connection that broke or outlived CONN_MAX_AGE, as it
does between requests; threads outside Django's request cycle would otherwise keep a dead
connection after a database restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def _with_fresh_connection(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    close_old_connections()
    return fn(*args, **kwargs)


_in_thread = sync_to_async(_with_fresh_connection, thread_sensitive=False)


async def db_call(fn: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    return await _in_thread(fn, *args, **kwargs)
