"""The database out of reach, as the request path answers it: a 503 with Retry-After that
the client may retry, never a 500 (docs/request-path.md, "Cache invalidation").

The request path needs the database only for what it has not cached: a key no process has
seen lately, a catalog never built, credit while Redis is away too. Those requests are
refused this way while the database cannot be reached; the rest are served.
"""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

from core.errors import GatewayError

# What Django raises when it cannot connect, or a connection broke mid-query. (Other
# database errors are bugs or bad data: they stay 500s, to be seen.)
DATABASE_UNREACHABLE = (OperationalError, InterfaceError)
RETRY_AFTER_SECONDS = 5


def database_unreachable(exc: BaseException) -> bool:
    return isinstance(exc, DATABASE_UNREACHABLE)


def database_unavailable(needs: str = "") -> GatewayError:
    """`needs`: what the request could not have checked, if the client should know (its API
    key: the request is then unauthenticated, and no request log row can name its owner)."""
    what = f"to check {needs}" if needs else "for what this request needs"
    return GatewayError(
        503,
        f"The gateway cannot reach its database just now {what}, and holds no copy of it; "
        f"the request was not charged. Please retry in {RETRY_AFTER_SECONDS} seconds.",
        type="server_error",
        code="database_unavailable",
        headers=[(b"retry-after", str(RETRY_AFTER_SECONDS).encode())],
    )
