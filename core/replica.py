"""Which database the dashboards and monitoring read: the read replica when one is set
(DATABASE_REPLICA_URL), else the primary.

Only reads that tolerate a replica's lag (usually under a second) go there: usage,
request lists, monitoring figures and uptime, for customers and staff. Everything that
decides something (keys, balances, limits, rollup computation, incidents) reads the
primary: a decision taken on a stale row is wrong, a chart a second late is not.
"""

from __future__ import annotations

from django.conf import settings


def read_alias() -> str:
    return "replica" if "replica" in settings.DATABASES else "default"
