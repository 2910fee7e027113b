"""The management API's pagination: DRF's limit/offset, bounded. Unbounded, a `limit` or
`offset` past 2^63 reaches Postgres and fails the request (a 500)."""

from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

MAX_OFFSET = 10**12


class BoundedPagination(LimitOffsetPagination):
    max_limit = 500

    def get_offset(self, request: Request) -> int:
        return min(super().get_offset(request), MAX_OFFSET)
