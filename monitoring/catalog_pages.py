"""The catalog's pages, discovery as people browse it: every model with search, filters and
sorting (/models) and one model's providers side by side (/models/<id>): prices per 1M
tokens, context, and each provider's measured latency and uptime. Here, not in providers,
because the figures are monitoring's."""

from __future__ import annotations

from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from core.web import cached
from monitoring.discovery import MODALITIES, SEARCH_SORTS, models_search
from monitoring.params import ParamRefused
from monitoring.stats import rollups_in, sums_by, window_last
from monitoring.uptime import models_uptime
from providers.catalog import catalog_recent
from providers.models import Provider

PAGE_SIZE = 50
FILTERS = ("q", "provider", "modality", "min_context", "max_price", "sort_by", "order")


def models(request: HttpRequest) -> HttpResponse:
    catalog = catalog_recent()
    params = {k: request.GET[k] for k in (*FILTERS, "offset") if request.GET.get(k)}
    refused = None
    try:
        found = models_search({**params, "limit": str(PAGE_SIZE)}, catalog)
    except ParamRefused as error:  # a hand-edited address: say so, show everything
        refused = str(error)
        params = {}
        found = models_search({"limit": str(PAGE_SIZE)}, catalog)
    meta = found["meta"]
    offset = meta["offset"]
    query = {k: v for k, v in params.items() if k != "offset"}
    context = {
        "models": found["data"],
        "meta": meta,
        "params": params,
        "refused": refused,
        "providers": sorted({d.provider for m in catalog.models.values() for d in m.deployments}),
        "modalities": [m for m in MODALITIES if m != "any"],
        "sorts": SEARCH_SORTS,
        "previous_offset": max(0, offset - PAGE_SIZE) if offset else None,
        "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < meta["total"] else None,
        "query": query,
    }
    return render(request, "monitoring/models.html", context)


def _measured(model_id: str) -> dict[str, dict[str, Any]]:
    """Per provider of the model: last week's median latency and success, last month's
    uptime (cached a minute: a popular model's page is not a query per visit)."""

    def compute() -> dict[str, dict[str, Any]]:
        week = sums_by(rollups_in(window_last(24 * 7), model=model_id), "provider", histograms=True)
        uptime = models_uptime(
            {"period": "30d", "model": model_id, "limit": "100"}, catalog_recent()
        )
        out: dict[str, dict[str, Any]] = {}
        for provider, summed in week.items():
            out[provider] = {
                "requests": summed.requests,
                "latency_p50_ms": summed.latency_ms(0.5),
                "ttft_p50_ms": summed.ttft_ms(0.5),
                "error_rate": summed.error_rate,
            }
        for line in uptime["models"]:
            out.setdefault(line["provider"], {})["uptime"] = line["uptime_percentage"]
        return out

    return cached(f"pages:model:{model_id}", 60, compute)


def model(request: HttpRequest, model_id: str) -> HttpResponse:
    catalog = catalog_recent()
    found = catalog.models.get(model_id)
    if found is None:
        raise Http404(f"No model {model_id!r} in the catalog.")
    measured = _measured(found.id)
    names = dict(
        Provider.objects.filter(slug__in=[d.provider for d in found.deployments]).values_list(
            "slug", "name"
        )
    )
    offers = sorted(
        (
            {
                "provider": d.provider,
                "name": names.get(d.provider, d.provider),
                "input": d.input_price * d.markup,
                "output": d.output_price * d.markup,
                "cached_input": d.cached_input_price * d.markup if d.cached_input_price else None,
                **measured.get(d.provider, {}),
            }
            for d in found.deployments
        ),
        key=lambda o: (o["input"] + o["output"], o["provider"]),
    )
    context = {"model": found, "offers": offers}
    return render(request, "monitoring/model.html", context)
