"""GET /user/usage: the customer's usage over time, from the rollups (never the request log):
`from`, `to` (ISO dates or times, UTC; default the last 7 days), `granularity` (hour | day,
default day) and `group_by` (model | key | provider, or none: one series)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Sum
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from core.amounts import amount_text
from core.replica import read_alias
from monitoring.models import UsageRollup
from monitoring.params import ParamRefused, moment
from monitoring.rollups import bucket_start

GROUPS = {"model": "model", "key": "api_key_id", "provider": "provider"}
MAX_POINTS = {"hour": 24 * 31, "day": 2 * 366}  # hours in a month, days in two years


def usage_query(params: Any) -> tuple[datetime, datetime, str, str | None]:
    now = timezone.now()
    end = moment(params, "to", now)
    start = moment(params, "from", end - timedelta(days=7))
    granularity = params.get("granularity") or "day"
    if granularity not in MAX_POINTS:
        raise ParamRefused("'granularity' must be hour or day.", "granularity")
    group = params.get("group_by") or None
    if group is not None and group not in GROUPS:
        raise ParamRefused("'group_by' must be model, key or provider.", "group_by")
    if start >= end:
        raise ParamRefused("'from' must be before 'to'.", "from")
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    if (end - start) / step > MAX_POINTS[granularity]:
        raise ParamRefused(f"At most {MAX_POINTS[granularity]} {granularity}s at a time.", "from")
    return start, end, granularity, group


def usage_sums(
    *,
    user_id: int,
    start: datetime,
    end: datetime,
    granularity: str,
    group: str | None,
    by_bucket: bool = True,
) -> list[dict[str, Any]]:
    """The customer's rollups summed per bucket (unless not `by_bucket`) and `group`: rows
    of `bucket`, the group's column, n, failed, prompt, completion, cached, spent (Decimal)."""
    first = bucket_start(start, granularity)  # the bucket holding `from`, whole
    rows = UsageRollup.objects.using(read_alias()).filter(
        user_id=user_id, granularity=granularity, bucket__gte=first, bucket__lt=end
    )
    fields = (["bucket"] if by_bucket else []) + ([GROUPS[group]] if group else [])
    return list(
        rows.values(*fields)
        .annotate(
            n=Sum("requests"),
            failed=Sum("errors"),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cached=Sum("cached_tokens"),
            spent=Sum("cost"),
        )
        .order_by(*fields)
    )


def usage_series(
    *, user_id: int, start: datetime, end: datetime, granularity: str, group: str | None
) -> list[dict[str, Any]]:
    sums = usage_sums(user_id=user_id, start=start, end=end, granularity=granularity, group=group)
    points = []
    for row in sums:
        point: dict[str, Any] = {
            "bucket": row["bucket"],
            "requests": row["n"],
            "errors": row["failed"],
            "prompt_tokens": row["prompt"],
            "completion_tokens": row["completion"],
            "cached_tokens": row["cached"],
            "cost": amount_text(row["spent"] or Decimal(0)),
        }
        if group:
            point[group] = row[GROUPS[group]]
        points.append(point)
    return points


class UserUsage(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "usage:read"

    @extend_schema(
        parameters=[
            OpenApiParameter("from", str, description="ISO date or time (UTC)"),
            OpenApiParameter("to", str, description="ISO date or time (UTC); default now"),
            OpenApiParameter("granularity", str, enum=["hour", "day"]),
            OpenApiParameter("group_by", str, enum=["model", "key", "provider"]),
        ],
        responses=inline_serializer(
            "Usage",
            {
                "from": serializers.DateTimeField(),
                "to": serializers.DateTimeField(),
                "granularity": serializers.CharField(),
                "group_by": serializers.CharField(allow_null=True),
                "data": inline_serializer(
                    "UsagePoint",
                    {
                        "bucket": serializers.DateTimeField(),
                        "requests": serializers.IntegerField(),
                        "errors": serializers.IntegerField(),
                        "prompt_tokens": serializers.IntegerField(),
                        "completion_tokens": serializers.IntegerField(),
                        "cached_tokens": serializers.IntegerField(),
                        "cost": serializers.CharField(),
                        "model": serializers.CharField(required=False),
                        "key": serializers.IntegerField(required=False, allow_null=True),
                        "provider": serializers.CharField(required=False),
                    },
                    many=True,
                ),
            },
        ),
    )
    def get(self, request: Request) -> Response:
        try:
            start, end, granularity, group = usage_query(request.query_params)
        except ParamRefused as refused:
            body = {"detail": str(refused), "code": "invalid_request", "param": refused.param}
            return Response(body, status=400)
        data = usage_series(
            user_id=request_user(request).pk,
            start=start,
            end=end,
            granularity=granularity,
            group=group,
        )
        return Response(
            {"from": start, "to": end, "granularity": granularity, "group_by": group, "data": data}
        )
