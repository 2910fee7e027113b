"""Single requests from the log: a customer's own (`GET /user/requests`, paginated, filtered,
CSV export) and, for staff, everyone's (`GET /api/monitoring/chat-requests`, with the seed's
envelope `{success, data, metadata{total_count, limit, offset, returned_count, filters}}`),
with its summaries (`/counts`, `/models`, `/providers`, `/plot-data`) from the rollups.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Mapping
from datetime import timedelta
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from billing.models import RequestLog
from core.amounts import amount_text
from core.replica import read_alias
from monitoring.params import ParamRefused, choice, integer, moment_or_none
from monitoring.staff_api import Body, StaffView
from monitoring.stats import Totals, Window, ranked, rollups_in, sums_by
from providers.models import Provider

CSV_MAX_ROWS = 100_000
COUNT_CAP = 1_000
OUTCOMES = {"completed": True, "failed": False}
CUSTOMER_COLUMNS = (
    "request_id",
    "created_at",
    "endpoint",
    "requested_model",
    "served_model",
    "provider",
    "status",
    "error_type",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost",
    "total_latency_ms",
    "ttft_ms",
    "stream",
    "api_key_id",
)
STAFF_COLUMNS = (*CUSTOMER_COLUMNS, "id", "user_id", "provider_cost", "attempts")


def requests_filtered(
    rows: QuerySet[RequestLog], params: Mapping[str, str]
) -> tuple[QuerySet[RequestLog], dict[str, Any]]:
    """The log narrowed by the query's filters; returns them as applied (None: not given)."""
    applied: dict[str, Any] = {}
    for param, field in (("model", "served_model"), ("provider", "provider")):
        value = params.get(param) or params.get(f"{param}_id") or None
        applied[param] = value
        if value:
            rows = rows.filter(**{field: value})
    name = params.get("model_name") or None
    applied["model_name"] = name
    if name:
        rows = rows.filter(served_model__icontains=name)
    status = params.get("status") or None
    applied["status"] = status
    if status in OUTCOMES:
        rows = rows.filter(status=200) if OUTCOMES[status] else rows.exclude(status=200)
    elif status:
        code = integer(params, "status", 0, 100, 599)  # or an HTTP status, exactly
        rows = rows.filter(status=code)
    for param, alias, lookup in (
        ("start_date", "from", "created_at__gte"),
        ("end_date", "to", "created_at__lt"),
    ):
        at = moment_or_none(params, param) or moment_or_none(params, alias)
        applied[param] = at.isoformat() if at else None
        if at:
            rows = rows.filter(**{lookup: at})
    key = params.get("api_key_id") or params.get("key") or None
    applied["api_key_id"] = key
    if key:
        rows = rows.filter(
            api_key_id=integer(
                params, "api_key_id" if "api_key_id" in params else "key", 0, 1, 2**62
            )
        )
    return rows, applied


def _row(row: dict[str, Any]) -> dict[str, Any]:
    out = dict(row)
    out["outcome"] = "completed" if row["status"] == 200 else "failed"
    out["cost"] = amount_text(row["cost"])
    if "provider_cost" in row:
        out["provider_cost"] = amount_text(row["provider_cost"])
    return out


def _page(params: Mapping[str, str]) -> tuple[int, int]:
    return integer(params, "limit", 100, 1, 1000), integer(params, "offset", 0, 0, 10_000_000)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv(rows: QuerySet[RequestLog], columns: tuple[str, ...]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(columns)
    for row in rows.values_list(*columns)[:CSV_MAX_ROWS].iterator(chunk_size=2000):
        yield writer.writerow(row)


class JSONAnswers(DefaultContentNegotiation):
    """DRF's answers (refusals included) in JSON whatever `format` says: the view reads
    `format=csv` itself and streams the file (DRF would take it for a renderer's name)."""

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return JSONRenderer(), JSONRenderer.media_type


def _counted(rows: QuerySet[RequestLog], offset: int) -> tuple[int, bool]:
    """The rows counted up to COUNT_CAP past the page, and whether that is all of them: an
    exact count of a heavy customer's (or everyone's) million rows is a scan of them all on
    every page turn."""
    reach = offset + COUNT_CAP
    counted = rows.order_by()[: reach + 1].count()
    return min(counted, reach), counted <= reach


class UserRequests(APIView):
    """The caller's requests, newest first: `limit`/`offset`, filters `model`, `provider`,
    `status` (completed | failed | an HTTP status), `from`/`to`, `key`; `format=csv` for all
    of them (up to CSV_MAX_ROWS) as a file."""

    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "usage:read"
    content_negotiation_class = JSONAnswers

    @extend_schema(
        parameters=[
            OpenApiParameter(name, str)
            for name in ("model", "provider", "status", "from", "to", "key", "format")
        ]
        + [OpenApiParameter("limit", int), OpenApiParameter("offset", int)],
        responses={200: dict, 400: dict},
    )
    def get(self, request: Request) -> Response | StreamingHttpResponse:
        params = request.query_params
        mine = (
            RequestLog.objects.using(read_alias())
            .filter(user=request_user(request))
            .order_by("-created_at")
        )
        try:
            rows, applied = requests_filtered(mine, params)
            limit, offset = _page(params)
            wants = choice(params, "format", ("json", "csv"), "json")
        except ParamRefused as refused:
            body = {"detail": str(refused), "code": "invalid_request", "param": refused.param}
            return Response(body, status=400)
        if wants == "csv":
            answer = StreamingHttpResponse(_csv(rows, CUSTOMER_COLUMNS), content_type="text/csv")
            stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
            answer["Content-Disposition"] = f'attachment; filename="requests-{stamp}.csv"'
            return answer
        data = [_row(r) for r in rows.values(*CUSTOMER_COLUMNS)[offset : offset + limit]]
        total, exact = _counted(rows, offset)
        return Response(
            {
                "data": data,
                "total": total,
                "total_exact": exact,
                "limit": limit,
                "offset": offset,
                "has_more": offset + len(data) < total,
                "filters": applied,
            }
        )


class ChatRequests(StaffView):
    """Everyone's requests, newest first, with the seed's envelope; filters as the
    customer's, and `user_id`."""

    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        rows, applied = requests_filtered(
            RequestLog.objects.using(read_alias()).order_by("-created_at"), params
        )
        user = params.get("user_id") or None
        applied["user_id"] = user
        if user:
            rows = rows.filter(user_id=integer(params, "user_id", 0, 1, 2**62))
        limit, offset = _page(params)
        data = [_row(r) for r in rows.values(*STAFF_COLUMNS)[offset : offset + limit]]
        total, exact = _counted(rows, offset)
        return {
            "data": data,
            "metadata": {
                "total_count": total,
                "total_count_exact": exact,
                "limit": limit,
                "offset": offset,
                "returned_count": len(data),
                "filters": applied,
                "timestamp": timezone.now().isoformat(),
            },
        }


def _all_time() -> Window:
    """What the summaries count: the day rollups of the last two years (their retention)."""
    now = timezone.now()
    return Window(now - timedelta(days=731), now, "day")


class ChatRequestCounts(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        per = sums_by(rollups_in(_all_time()), "model", "provider")
        data = [
            {"model": m, "provider": p, "request_count": t.requests}
            for (m, p), t in ranked(per, "requests", limit=len(per))
            if t.requests
        ]
        meta = {"total_models": len({row["model"] for row in data})}
        meta["total_requests"] = sum(row["request_count"] for row in data)
        return {"data": data, "metadata": {**meta, "timestamp": timezone.now().isoformat()}}


class ChatRequestModels(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        rows = rollups_in(_all_time()).exclude(model="")
        if params.get("provider") or params.get("provider_id"):
            rows = rows.filter(provider=params.get("provider") or params.get("provider_id"))
        per = sums_by(rows, "model", "provider")
        data = [
            {
                "model": m,
                "provider": p,
                "stats": {
                    "total_requests": t.requests,
                    "total_input_tokens": t.prompt_tokens,
                    "total_output_tokens": t.completion_tokens,
                    "total_tokens": t.tokens,
                    "avg_processing_time_ms": t.latency_avg_ms,
                    "error_rate": t.error_rate,
                    "total_cost": amount_text(t.cost),
                },
            }
            for (m, p), t in ranked(per, "requests", limit=len(per))
            if t.requests
        ]
        meta = {"total_models": len(data), "timestamp": timezone.now().isoformat()}
        return {"data": data, "metadata": meta}


class ChatRequestProviders(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        per_provider: dict[str, Totals] = {}
        models: dict[str, int] = {}
        rows = rollups_in(_all_time()).exclude(provider="")
        for (p, _), part in sums_by(rows, "provider", "model").items():
            per_provider.setdefault(p, Totals()).merge(part)
            models[p] = models.get(p, 0) + (1 if part.requests else 0)
        names = dict(Provider.objects.values_list("slug", "name"))
        data = [
            {
                "provider": p,
                "name": names.get(p, p),
                "slug": p,
                "models_with_requests": models[p],
                "total_requests": t.requests,
            }
            for p, t in ranked(per_provider, "requests", limit=len(per_provider))
        ]
        meta = {"total_providers": len(data), "timestamp": timezone.now().isoformat()}
        return {"data": data, "metadata": meta}


class ChatRequestPlotData(StaffView):
    """Tokens and median latency per hour (per day past a month) between `start_date` and
    `end_date` (the last day by default), as parallel arrays; the 10 newest requests."""

    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        now = timezone.now()
        end = moment_or_none(params, "end_date") or now
        start = moment_or_none(params, "start_date") or end - timedelta(days=1)
        if start >= end:
            raise ParamRefused("'start_date' must be before 'end_date'.", "start_date")
        granularity = "hour" if end - start <= timedelta(days=31) else "day"
        filters: dict[str, str] = {}
        for param in ("model", "provider"):
            value = params.get(param) or params.get(f"{param}_id")
            if value:
                filters[param] = value
        rows = rollups_in(Window(start, end, granularity), **filters)
        per_bucket = sums_by(rows, "bucket", histograms=True)
        ordered = sorted(per_bucket.items())
        recent, _ = requests_filtered(
            RequestLog.objects.using(read_alias()).order_by("-created_at"), params
        )
        latest = [_row(r) for r in recent.values(*CUSTOMER_COLUMNS)[:10]]
        return {
            "recent_requests": latest,
            "plot_data": {
                "timestamps": [at.isoformat() for at, _ in ordered],
                "tokens": [t.tokens for _, t in ordered],
                "requests": [t.requests for _, t in ordered],
                "latency": [t.latency_ms(0.5) for _, t in ordered],
            },
            "metadata": {
                "recent_count": len(latest),
                "total_count": sum(t.requests for _, t in ordered),
                "granularity": granularity,
                "timestamp": now.isoformat(),
                "compression": "arrays",
                "format_version": "1.0",
            },
        }
