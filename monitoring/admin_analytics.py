"""The staff console's analytics page (/admin/analytics/): requests, tokens, revenue,
provider cost and margin per day over the last 30 days, the top models and customers, error
rates per provider, all from the rollups; and the live figures of the last minute, pushed by
the websocket feed (monitoring.live) once a second. Staff with the monitoring view
permission (developers, support, admins: accounts.roles)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet, Sum
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from accounts.models import User
from core.amounts import amount_text
from core.replica import read_alias
from monitoring.models import UsageRollup
from monitoring.rollups import bucket_start
from monitoring.stats import Totals, Window, ranked, rollups_in, sums_by

DAYS = 30
TOP = 10
MONEY = ("revenue", "provider_cost", "margin")
PERMISSION = "monitoring.view_usagerollup"


def _rows(window: Window, customer: User | None) -> QuerySet[UsageRollup]:
    """Everyone's total rows, or one customer's own."""
    if customer is None:
        return rollups_in(window)
    return UsageRollup.objects.using(read_alias()).filter(
        total=False,
        user_id=customer.pk,
        granularity=window.granularity,
        bucket__gte=window.start,
        bucket__lt=window.end,
    )


def _day_rows(rows: QuerySet[UsageRollup], window: Window) -> list[dict[str, Any]]:
    per_day = sums_by(rows, "bucket")
    days = []
    day = window.start
    while day < window.end:
        part = per_day.get(day, Totals())
        days.append(
            {
                "day": day,
                "requests": part.requests,
                "errors": part.errors,
                "tokens": part.tokens,
                "revenue": part.cost,
                "provider_cost": part.provider_cost,
                "margin": part.cost - part.provider_cost,
            }
        )
        day += timedelta(days=1)
    return days


def _top_customers(window: Window) -> list[dict[str, Any]]:
    spent = list(
        UsageRollup.objects.using(read_alias())
        .filter(
            total=False,
            granularity="day",
            bucket__gte=window.start,
            bucket__lt=window.end,
            user_id__isnull=False,
        )
        .values("user_id")
        .annotate(revenue=Sum("cost"), requests=Sum("requests"))
        .order_by("-revenue", "user_id")[:TOP]
    )
    emails = dict(
        User.objects.filter(pk__in=[r["user_id"] for r in spent]).values_list("pk", "email")
    )
    for row in spent:
        row["email"] = emails.get(row["user_id"], f"(user {row['user_id']})")
    return spent


def analytics(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    # ?user=<id>: one customer's usage, read-only, linked from their page in the admin.
    chosen = request.GET.get("user", "")
    customer = User.objects.filter(pk=int(chosen)).first() if chosen.isdigit() else None
    if chosen and customer is None:
        raise Http404("No such user.")
    now = timezone.now()
    window = Window(bucket_start(now, "day") - timedelta(days=DAYS - 1), now, "day")
    days = _day_rows(_rows(window, customer), window)
    per_model = sums_by(_rows(window, customer), "model")
    per_provider = sums_by(_rows(window, customer), "provider")
    totals = {
        name: sum((d[name] for d in days), Decimal(0) if name in MONEY else 0)
        for name in ("requests", "errors", "tokens", *MONEY)
    }
    chart = {
        "labels": [d["day"].strftime("%b %d") for d in days],
        "datasets": [
            {
                "label": "Revenue",
                "data": [amount_text(d["revenue"]) for d in days],
                "backgroundColor": "#4f46e5",
            },
            {
                "label": "Provider cost",
                "data": [amount_text(d["provider_cost"]) for d in days],
                "backgroundColor": "#f59f00",
            },
        ],
    }
    providers = sorted(
        ((p, t) for p, t in per_provider.items() if p),
        key=lambda item: (-item[1].error_rate, item[0]),
    )
    errors_chart = {
        "labels": [p for p, _ in providers],
        "datasets": [
            {
                "label": "Client errors (4xx)",
                "data": [t.errors - t.server_errors for _, t in providers],
                "backgroundColor": "#f59f00",
            },
            {
                "label": "Server errors (5xx)",
                "data": [t.server_errors for _, t in providers],
                "backgroundColor": "#d63939",
            },
        ],
    }
    context = {
        **admin.site.each_context(request),
        "title": f"Usage of {customer.email}, last {DAYS} days"
        if customer
        else f"Analytics, last {DAYS} days",
        "customer": customer,
        "days": days,
        "totals": totals,
        "models": [
            {
                "model": m,
                "requests": t.requests,
                "revenue": t.cost,
                "margin": t.cost - t.provider_cost,
            }
            for m, t in ranked({m: t for m, t in per_model.items() if m}, "cost", limit=TOP)
        ],
        "providers": providers,
        "errors_chart": errors_chart,
        "customers": [] if customer else _top_customers(window),
        "chart": chart,
    }
    return TemplateResponse(request, "admin/analytics.html", context)
