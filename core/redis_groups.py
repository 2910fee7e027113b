"""Which group of Redis keys a customer's credit and limits live in (docs/deployment.md,
"Cluster").

Every key a money script touches for one request belongs to the request's customer, so
they can all carry one hash tag and share a Redis Cluster slot, which keeps each script
atomic on one shard. A customer's group is `user_id % GATEWAYZ_REDIS_CREDIT_GROUPS`; with
one group (the default) there is no tag and every key keeps its plain name.
"""

from __future__ import annotations

from django.conf import settings


def group_count() -> int:
    count: int = settings.GATEWAYZ_REDIS_CREDIT_GROUPS
    return count


def group_tag(user_id: int) -> str:
    """`{g7}:` (put after a key's prefix), or "" with one group."""
    count = group_count()
    return "" if count == 1 else f"{{g{user_id % count}}}:"


def group_tags() -> list[str]:
    count = group_count()
    return [""] if count == 1 else [f"{{g{i}}}:" for i in range(count)]


def group_budget(cap: int) -> int:
    """A system-wide cap shared by the groups: each counts to its share, so all together
    never pass the cap (a share is at least 1)."""
    count = group_count()
    return cap if count == 1 else max(1, cap // count)
