"""The staff monitoring API (`/api/monitoring/…`): the seed's paths and answer shapes, each
with `success: true`, for its dashboards and clients.

Everything here reads the rollups (monitoring.stats), but for what only single requests
can say: `stats/realtime` (the last minutes, from the log's newest rows), `errors/{provider}`
(its latest failures) and `chat-requests` (the log, paginated). Staff only: the figures
name customers' usage and the business's margins.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db.models.functions import TruncDate
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.models import RequestLog
from core.amounts import amount_text
from core.replica import read_alias
from monitoring.anomalies import anomalies_detect
from monitoring.api import staff_may
from monitoring.models import LATENCY_BUCKETS_MS
from monitoring.params import ParamRefused, integer
from monitoring.realtime import realtime_stats
from monitoring.stats import (
    Totals,
    ranked,
    rollups_in,
    sums_by,
    totals,
    totals_by,
    window_last,
)

Body = dict[str, Any]


def _now() -> str:
    return timezone.now().isoformat()


def _hour_key(at: datetime) -> str:
    return at.strftime("%Y-%m-%d:%H")


def _money(amount: Decimal) -> str:
    return amount_text(amount)


class StaffView(APIView):
    """Staff who may see monitoring; a bad parameter answers 400 naming it."""

    permission_classes = (staff_may("monitoring.view_usagerollup"),)

    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        raise NotImplementedError

    @extend_schema(
        parameters=[OpenApiParameter("hours", int), OpenApiParameter("limit", int)],
        responses={200: dict, 400: dict, 403: dict},
    )
    def get(self, request: Request, **path: str) -> Response:
        try:
            body = self.answer(request.query_params, **path)
        except ParamRefused as refused:
            detail = {"detail": str(refused), "code": "invalid_request", "param": refused.param}
            return Response(detail, status=400)
        status = body.pop("_status", 200)
        return Response({"success": status == 200, **body}, status=status)


def _hours(params: Mapping[str, str], default: int = 24) -> int:
    return integer(params, "hours", default, 1, 168)


def _hour_stats(t: Totals) -> Body:
    return {
        "total_requests": t.requests,
        "successful_requests": t.successes,
        "failed_requests": t.errors,
        "tokens_input": t.prompt_tokens,
        "tokens_output": t.completion_tokens,
        "total_cost": _money(t.cost),
        "latency_p50_ms": t.latency_ms(0.5),
        "latency_p95_ms": t.latency_ms(0.95),
    }


class RealtimeStats(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        return realtime_stats()


class HourlyStats(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        provider, hours = path["provider"], _hours(params)
        rows = rollups_in(window_last(hours), provider=provider)
        per_hour = sums_by(rows, "bucket", histograms=True)
        data = {_hour_key(at): _hour_stats(t) for at, t in sorted(per_hour.items())}
        return {"provider": provider, "hours": hours, "data": data}


class ProviderErrors(StaffView):
    """A provider's latest failed requests (newest first), with what failed."""

    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        limit = integer(params, "limit", 100, 1, 1000)
        failed = (
            RequestLog.objects.using(read_alias())
            .filter(provider=path["provider"])
            .exclude(status=200)
            .order_by("-created_at")
        )
        data = []
        for row in failed.values(
            "request_id",
            "served_model",
            "status",
            "error_type",
            "attempts",
            "created_at",
            "total_latency_ms",
        )[:limit]:
            attempts = row["attempts"] or [{}]
            data.append(
                {
                    "request_id": row["request_id"],
                    "model": row["served_model"],
                    "status": row["status"],
                    "error_type": row["error_type"],
                    "error": str(attempts[-1].get("error") or row["error_type"])[:500],
                    "timestamp": row["created_at"].timestamp(),
                    "latency_ms": round(row["total_latency_ms"]),
                }
            )
        return {"provider": path["provider"], "data": data, "count": len(data)}


class ErrorRates(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        hours = _hours(params)
        rows = rollups_in(window_last(hours)).exclude(model="")
        per_model: dict[str, Totals] = {}
        providers: dict[str, set[str]] = {}
        for (model, provider), part in totals_by(
            rows, lambda r: (r["model"], r["provider"])
        ).items():
            per_model.setdefault(model, Totals()).merge(part)
            providers.setdefault(model, set()).add(provider)
        order = ranked(per_model, "error_rate", limit=len(per_model))
        models = {
            m: {
                "total_requests": t.requests,
                "failed_requests": t.errors,
                "server_errors": t.server_errors,
                "errors_by_type": t.errors_by_type,
                "providers": sorted(providers[m]),
                "error_rate": t.error_rate,
            }
            for m, t in order
        }
        return {"timestamp": _now(), "hours": hours, "models": models}


class ProvidersComparison(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        hours = _hours(params)
        rows = rollups_in(window_last(hours)).exclude(provider="")
        per_provider: dict[str, Totals] = {}
        models: dict[str, set[str]] = {}
        for (provider, model), part in sums_by(rows, "provider", "model", histograms=True).items():
            per_provider.setdefault(provider, Totals()).merge(part)
            if part.requests:
                models.setdefault(provider, set()).add(model)
        data = [
            {
                "provider": p,
                "total_requests": t.requests,
                "successful_requests": t.successes,
                "failed_requests": t.errors,
                "avg_latency_ms": t.latency_avg_ms,
                "latency_p50_ms": t.latency_ms(0.5),
                "latency_p95_ms": t.latency_ms(0.95),
                "total_cost": _money(t.cost),
                "provider_cost": _money(t.provider_cost),
                "total_tokens": t.tokens,
                "avg_error_rate": t.error_rate,
                "unique_models": len(models.get(p, ())),
                "success_rate": round(t.successes / t.requests, 4) if t.requests else None,
            }
            for p, t in ranked(per_provider, "requests", limit=len(per_provider))
        ]
        return {
            "timestamp": _now(),
            "hours": hours,
            "providers": data,
            "total_providers": len(data),
        }


class ModelLatency(StaffView):
    """Latency percentiles of a model at a provider (`percentiles`, e.g. "50,95,99")."""

    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        provider, model = path["provider"], path["model"]
        hours = _hours(params, default=1)
        try:
            wanted = [int(p) for p in (params.get("percentiles") or "50,95,99").split(",")]
        except ValueError:
            wanted = [0]
        if not all(1 <= p <= 99 for p in wanted):
            raise ParamRefused(
                "'percentiles' must be integers from 1 to 99, e.g. 50,95,99.", "percentiles"
            )
        t = totals(rollups_in(window_last(hours), provider=provider, model=model))
        if not t.requests:
            return {
                "_status": 404,
                "detail": f"No latency data for {provider}/{model} in the last {hours}h.",
            }
        return {
            "provider": provider,
            "model": model,
            "hours": hours,
            "count": t.requests,
            "avg": t.latency_avg_ms,
            **{f"p{p}": t.latency_ms(p / 100) for p in sorted({50, 95, 99, *wanted})},
            "ttft_p50": t.ttft_ms(0.5),
            "buckets": dict(zip([*map(str, LATENCY_BUCKETS_MS), "+Inf"], t.latency, strict=True)),
        }


class LatencyTrends(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        provider, hours = path["provider"], _hours(params)
        per_hour = sums_by(
            rollups_in(window_last(hours), provider=provider), "bucket", histograms=True
        )
        overall = Totals()
        for part in per_hour.values():
            overall.merge(part)
        return {
            "timestamp": _now(),
            "provider": provider,
            "hours": hours,
            "overall_avg_latency_ms": overall.latency_avg_ms,
            "overall_p95_latency_ms": overall.latency_ms(0.95),
            "hourly_data": [
                {
                    "hour": _hour_key(at),
                    "requests": t.requests,
                    "avg_latency_ms": t.latency_avg_ms,
                    "p50_latency_ms": t.latency_ms(0.5),
                    "p95_latency_ms": t.latency_ms(0.95),
                    "p99_latency_ms": t.latency_ms(0.99),
                }
                for at, t in sorted(per_hour.items())
            ],
        }


def _margin(t: Totals) -> Body:
    margin = t.cost - t.provider_cost
    return {
        "revenue": _money(t.cost),
        "provider_cost": _money(t.provider_cost),
        "margin": _money(margin),
        "margin_percent": round(float(100 * margin / t.cost), 2) if t.cost else None,
        "total_requests": t.requests,
        "cost_per_request": _money(t.cost / t.requests) if t.requests else "0",
    }


class CostAnalysis(StaffView):
    """Revenue (what customers paid), provider cost and margin, by provider, model and day."""

    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        days = integer(params, "days", 7, 1, 90)
        window = window_last(days * 24)
        rows = rollups_in(window)
        by: dict[str, dict[Any, Totals]] = {
            "provider": sums_by(rows, "provider"),
            "model": sums_by(rows, "model"),
            "day": sums_by(rows.annotate(day=TruncDate("bucket")), "day"),
        }
        whole = Totals()
        for part in by["provider"].values():
            whole.merge(part)

        def costliest(groups: dict[Any, Totals]) -> Body:
            return {
                k: {"total_cost": _money(t.cost), **_margin(t)}
                for k, t in ranked(groups, "cost", limit=len(groups))
            }

        return {
            "timestamp": _now(),
            "period_days": days,
            "start_date": window.start.isoformat(),
            "end_date": window.end.isoformat(),
            "providers": costliest(by["provider"]),
            "models": costliest(by["model"]),
            "days": {k.isoformat(): _margin(t) for k, t in sorted(by["day"].items())},
            "total_cost": _money(whole.cost),
            "total_requests": whole.requests,
            **{k: v for k, v in _margin(whole).items() if k != "total_requests"},
        }


def _efficiency(t: Totals) -> Body:
    n, tokens = t.requests, t.tokens
    return {
        "total_cost": _money(t.cost),
        "total_tokens": tokens,
        "total_requests": n,
        "cost_per_token": _money(t.cost / tokens) if tokens else None,
        "cost_per_1k_tokens": _money(1000 * t.cost / tokens) if tokens else None,
        "tokens_per_request": round(tokens / n, 2) if n else None,
        "cost_per_request": _money(t.cost / n) if n else None,
        "avg_input_tokens": round(t.prompt_tokens / n, 2) if n else None,
        "avg_output_tokens": round(t.completion_tokens / n, 2) if n else None,
        "cached_input_share": round(t.cached_tokens / t.prompt_tokens, 4)
        if t.prompt_tokens
        else None,
    }


class TokenEfficiency(StaffView):
    """The last 7 days (`hours` to change it): per provider × model, or one of them."""

    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        hours = _hours(params, default=168)
        rows = rollups_in(window_last(hours)).exclude(model="")
        if "provider" in path:
            one = sums_by(rows.filter(provider=path["provider"], model=path["model"]), "model")
            t = next(iter(one.values()), Totals())
            figures = _efficiency(t) if t.requests else {"data": None}
            return {
                "timestamp": _now(),
                "provider": path["provider"],
                "model": path["model"],
                **figures,
            }
        per = sums_by(rows, "provider", "model")
        data = [
            {"provider": p, "model": m, **_efficiency(t)}
            for (p, m), t in ranked(per, "tokens", limit=len(per))
        ]
        return {"timestamp": _now(), "hours": hours, "data": data}


@extend_schema_view(get=extend_schema(operation_id="api_monitoring_token_efficiency_model"))
class ModelTokenEfficiency(TokenEfficiency):
    """One model at one provider (its own class: one operation per path in the OpenAPI)."""


class Anomalies(StaffView):
    def answer(self, params: Mapping[str, str], **path: str) -> Body:
        found = [a.view() for a in anomalies_detect()]
        critical = sum(1 for a in found if a["severity"] == "critical")
        return {
            "timestamp": _now(),
            "anomalies": found,
            "total_count": len(found),
            "critical_count": critical,
            "warning_count": len(found) - critical,
        }
