"""Public discovery: which models are used, fast, cheap; the providers and their figures.

Each function takes the query's parameters and the served catalog and returns the answer's
body; monitoring.public_api serves them, cached. Traffic figures come from the rollups
(monitoring.stats); names, prices and context lengths from the catalog, never copied into
the figures. Only what the catalog serves now is listed: a model or provider that was
removed or switched off keeps its rollups for the record, not a place in these lists.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from core.amounts import amount_text
from core.errors import not_found
from core.replica import read_alias
from monitoring.models import HealthSample
from monitoring.params import TIME_RANGES, choice, decimal, integer
from monitoring.stats import (
    Totals,
    ranked,
    rollups_in,
    sums_by,
    users_by,
    users_count,
    window_last,
    with_users,
)
from providers.catalog import Catalog, CatalogModel
from providers.models import Provider

Params = Mapping[str, str]

MODALITIES = ("any", "text", "image", "embedding", "vision")
SEARCH_SORTS = ("name", "context", "price", "popularity", "created")


def _modalities(model: CatalogModel) -> list[str]:
    kinds = {"chat": "text", "image": "image", "embedding": "embedding"}
    found = [kinds.get(model.kind, model.kind)]
    if "vision" in model.capabilities:
        found.append("vision")
    return found


def _price(model: CatalogModel) -> tuple[Decimal, Decimal]:
    """The cheapest deployment's prices as the customer pays them (credits per 1M tokens)."""
    cheapest = min(model.deployments, key=lambda d: (d.input_price, d.output_price))
    return cheapest.input_price * cheapest.markup, cheapest.output_price * cheapest.markup


def _model_card(model: CatalogModel) -> dict[str, Any]:
    price_in, price_out = _price(model)
    return {
        "id": model.id,
        "name": model.name or model.id,
        "context_length": model.context_length,
        "modalities": _modalities(model),
        "capabilities": list(model.capabilities),
        "providers": sorted({d.provider for d in model.deployments}),
        "pricing": {
            "unit": "credits per 1M tokens",
            "input": amount_text(price_in),
            "output": amount_text(price_out),
        },
    }


def _now() -> str:
    return timezone.now().isoformat()


def _figures(summed: Totals) -> dict[str, Any]:
    return {
        "requests": summed.requests,
        "total_tokens": summed.tokens,
        "unique_users": summed.users,
        "total_cost": amount_text(summed.cost),
        "error_rate": summed.error_rate,
        "latency_p50_ms": summed.latency_ms(0.5),
        "latency_p95_ms": summed.latency_ms(0.95),
        "ttft_p50_ms": summed.ttft_ms(0.5),
    }


def _pagination(limit: int, offset: int, total: int) -> dict[str, Any]:
    return {"limit": limit, "offset": offset, "total": total, "has_more": offset + limit < total}


def _span(params: Params) -> tuple[str, int]:
    span = choice(params, "time_range", ("1h", "24h", "7d", "30d"), "24h")
    return span, TIME_RANGES[span]


def models_trending(params: Params, catalog: Catalog) -> dict[str, Any]:
    """The most used models over the window: by requests, tokens or distinct users."""
    span, hours = _span(params)
    sort_by = choice(params, "sort_by", ("requests", "tokens", "users"), "requests")
    limit = integer(params, "limit", 10, 1, 100)
    offset = integer(params, "offset", 0, 0, 100_000)
    window = window_last(hours)
    per_model = sums_by(rollups_in(window), "model", histograms=True)
    used = {m: t for m, t in per_model.items() if m in catalog.models and t.requests}
    if sort_by == "users":
        with_users(used, users_by(window, "model"))
    order = ranked(used, sort_by, limit=offset + limit)[offset:]
    if sort_by != "users":  # counted for the page's models only: the costly figure
        shown = [m for m, _ in order]
        with_users(dict(order), users_by(window, "model", model__in=shown))
    data = [
        {
            "rank": rank,
            "model": m,
            **_model_card(catalog.models[m]),
            **_figures(t),
        }
        for rank, (m, t) in enumerate(order, start=offset + 1)
    ]
    return {
        "success": True,
        "data": data,
        "count": len(data),
        "time_range": span,
        "sort_by": sort_by,
        "timestamp": _now(),
        "pagination": _pagination(limit, offset, len(used)),
    }


def models_low_latency(params: Params, catalog: Catalog) -> dict[str, Any]:
    """Models by median latency over the window, measured on answers (a model whose every
    request failed fast is not fast), among those with enough of them to say."""
    span, hours = _span(params)
    limit = integer(params, "limit", 50, 1, 500)
    offset = integer(params, "offset", 0, 0, 100_000)
    least = integer(params, "min_requests", 10, 1, 1_000_000)
    window = window_last(hours)
    per_model = sums_by(rollups_in(window), "model", histograms=True)
    with_users(per_model, users_by(window, "model"))
    measured = {
        m: t
        for m, t in per_model.items()
        if m in catalog.models and t.successes >= least and t.latency_ms(0.5) is not None
    }
    order = ranked(measured, "latency", limit=offset + limit, descending=False)[offset:]
    data = [
        {"rank": rank, "model": m, **_model_card(catalog.models[m]), **_figures(t)}
        for rank, (m, t) in enumerate(order, start=offset + 1)
    ]
    return {
        "models": [row["model"] for row in data],
        "count": len(data),
        "data": data,
        "time_range": span,
        "min_requests": least,
        "pagination": _pagination(limit, offset, len(measured)),
    }


def models_search(params: Params, catalog: Catalog) -> dict[str, Any]:
    text = (params.get("q") or "").strip().lower()
    provider = (params.get("provider") or "").strip()
    modality = choice(params, "modality", MODALITIES, "any")
    min_context = integer(params, "min_context", 0, 0, 100_000_000)
    max_context = integer(params, "max_context", 0, 0, 100_000_000) or None
    min_price, max_price = decimal(params, "min_price"), decimal(params, "max_price")
    sort_by = choice(params, "sort_by", SEARCH_SORTS, "name")
    order = choice(params, "order", ("asc", "desc"), "desc" if sort_by == "popularity" else "asc")
    limit = integer(params, "limit", 20, 1, 100)
    offset = integer(params, "offset", 0, 0, 100_000)

    def matches(model: CatalogModel) -> bool:
        price_in = _price(model)[0]
        return (
            (not text or text in model.id.lower() or text in model.name.lower())
            and (not provider or any(d.provider == provider for d in model.deployments))
            and (modality == "any" or modality in _modalities(model))
            and model.context_length >= min_context
            and (max_context is None or model.context_length <= max_context)
            and (min_price is None or price_in >= min_price)
            and (max_price is None or price_in <= max_price)
        )

    found = [m for m in catalog.models.values() if matches(m)]
    popularity: dict[str, int] = {}
    if sort_by == "popularity":
        week = sums_by(rollups_in(window_last(24 * 7)), "model")
        popularity = {m: t.requests for m, t in week.items()}
    keys: dict[str, Any] = {
        "name": lambda m: (m.name or m.id).lower(),
        "context": lambda m: m.context_length,
        "price": lambda m: _price(m)[0],
        "popularity": lambda m: popularity.get(m.id, 0),
        "created": lambda m: m.created,
    }
    found.sort(key=lambda m: m.id)
    found.sort(key=keys[sort_by], reverse=order == "desc")
    page = found[offset : offset + limit]
    applied = {
        "query": text or None,
        "provider": provider or None,
        "modality": None if modality == "any" else modality,
        "min_context": min_context or None,
        "max_context": max_context,
        "min_price": None if min_price is None else str(min_price),
        "max_price": None if max_price is None else str(max_price),
        "sort_by": sort_by,
        "order": order,
    }
    return {
        "success": True,
        "data": [_model_card(m) for m in page],
        "meta": {
            "total": len(found),
            "limit": limit,
            "offset": offset,
            "returned": len(page),
            "filters_applied": applied,
        },
        "timestamp": _now(),
    }


def _served_providers(catalog: Catalog) -> dict[str, set[str]]:
    """Provider slug -> the catalog's models it serves."""
    served: dict[str, set[str]] = {}
    for model in catalog.models.values():
        for deployment in model.deployments:
            served.setdefault(deployment.provider, set()).add(model.id)
    return served


STATUS_RANK = {"operational": 0, "degraded": 1, "down": 2}


def _latest_status(provider: str | None = None) -> dict[str, str]:
    """Each provider's worst status among its latest checks of the last hour; absent: none
    (unknown, which is not good news)."""
    worst: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    recent = HealthSample.objects.using(read_alias()).filter(
        checked_at__gte=timezone.now() - timedelta(hours=1)
    )
    if provider:
        recent = recent.filter(provider=provider)
    for sample in recent.order_by("-checked_at").values("provider", "model", "status"):
        key = (sample["provider"], sample["model"])
        if key in seen:
            continue
        seen.add(key)
        current = worst.get(sample["provider"])
        if current is None or STATUS_RANK[sample["status"]] > STATUS_RANK[current]:
            worst[sample["provider"]] = sample["status"]
    return worst


def providers_list(params: Params, catalog: Catalog) -> dict[str, Any]:
    limit = integer(params, "limit", 100, 1, 500)
    offset = integer(params, "offset", 0, 0, 100_000)
    served = _served_providers(catalog)
    slugs = sorted(served)
    page = slugs[offset : offset + limit]
    names = dict(Provider.objects.filter(slug__in=page).values_list("slug", "name"))
    day = sums_by(rollups_in(window_last(24), provider__in=page), "provider")
    status = _latest_status()
    data = [
        {
            "slug": slug,
            "name": names.get(slug, slug),
            "model_count": len(served[slug]),
            "status": status.get(slug, "unknown"),
            "requests_24h": day[slug].requests if slug in day else 0,
        }
        for slug in page
    ]
    return {
        "data": data,
        "total": len(slugs),
        "returned": len(data),
        "offset": offset,
        "limit": limit,
        "timestamp": _now(),
    }


def _provider_models(name: str, catalog: Catalog) -> set[str]:
    models = _served_providers(catalog).get(name)
    if models is None:
        raise not_found(f"The provider '{name}' does not exist.", code="provider_not_found")
    return models


def _per_request(summed: Totals) -> dict[str, Any]:
    n = summed.requests
    return {
        "avg_tokens_per_request": round(summed.tokens / n, 2) if n else 0.0,
        "avg_cost_per_request": amount_text(summed.cost / n) if n else "0",
    }


def provider_stats(params: Params, catalog: Catalog, name: str) -> dict[str, Any]:
    models = _provider_models(name, catalog)
    span, hours = _span(params)
    window = window_last(hours)
    per_model = sums_by(rollups_in(window, provider=name), "model", histograms=True)
    summed = Totals()
    for part in per_model.values():
        summed.merge(part)
    summed.users = users_count(window, provider=name)
    top = next(iter(ranked(per_model, "requests", limit=1)), None)
    data = {
        "provider": name,
        "time_range": span,
        "status": _latest_status(name).get(name, "unknown"),
        "models_served": len(models),
        "total_requests": summed.requests,
        "total_tokens": summed.tokens,
        "total_cost": amount_text(summed.cost),
        "unique_users": summed.users,
        "unique_models": sum(1 for t in per_model.values() if t.requests),
        "top_model": top[0] if top else None,
        "model_breakdown": {
            m: {"requests": t.requests, "tokens": t.tokens} for m, t in sorted(per_model.items())
        },
        "error_rate": summed.error_rate,
        "latency_p50_ms": summed.latency_ms(0.5),
        "latency_p95_ms": summed.latency_ms(0.95),
        **_per_request(summed),
    }
    return {"success": True, "data": data, "timestamp": _now()}


def provider_top_models(params: Params, catalog: Catalog, name: str) -> dict[str, Any]:
    models = _provider_models(name, catalog)
    span, hours = _span(params)
    limit = integer(params, "limit", 5, 1, 20)
    offset = integer(params, "offset", 0, 0, 100_000)
    rows = rollups_in(window_last(hours), provider=name)
    used = {m: t for m, t in sums_by(rows, "model").items() if t.requests}
    order = ranked(used, "requests", limit=offset + limit)[offset:]
    data = [
        {
            "model": m,
            "name": catalog.models[m].name if m in models else m,
            "requests": t.requests,
            "tokens": t.tokens,
            "cost": amount_text(t.cost),
        }
        for m, t in order
    ]
    return {
        "success": True,
        "provider": name,
        "data": data,
        "count": len(data),
        "time_range": span,
        "timestamp": _now(),
        "pagination": _pagination(limit, offset, len(used)),
    }


def gateways_summary(params: Params, catalog: Catalog) -> dict[str, Any]:
    """The gateway at a glance over the window: each provider's part and the totals."""
    span, hours = _span(params)
    served = _served_providers(catalog)
    window = window_last(hours)
    rows = rollups_in(window)
    per_provider: dict[str, Totals] = {}
    models_used: dict[str, set[str]] = {}
    for (provider, model), part in sums_by(rows, "provider", "model").items():
        per_provider.setdefault(provider, Totals()).merge(part)
        if part.requests:
            models_used.setdefault(provider, set()).add(model)
    whole = Totals()
    for part in per_provider.values():
        whole.merge(part)
    with_users(per_provider, users_by(window, "provider"))
    whole.users = users_count(window)
    status = _latest_status()
    gateways = {
        slug: {
            "gateway": slug,
            "status": status.get(slug, "unknown"),
            "models_served": len(served.get(slug, ())),
            "total_requests": part.requests,
            "total_tokens": part.tokens,
            "total_cost": amount_text(part.cost),
            "unique_users": part.users,
            "unique_models": len(models_used.get(slug, ())),
            "error_rate": part.error_rate,
            **_per_request(part),
        }
        for slug, part in sorted(per_provider.items())
        if slug and part.requests
    }
    totals_view = {
        "requests": whole.requests,
        "tokens": whole.tokens,
        "cost": amount_text(whole.cost),
        "unique_users": whole.users,
        "models": len(set().union(*models_used.values())) if models_used else 0,
        "providers_serving": len(served),
        "models_served": len(catalog.models),
    }
    data = {"time_range": span, "gateways": gateways, "totals": totals_view}
    return {"success": True, "data": data, "timestamp": _now()}
