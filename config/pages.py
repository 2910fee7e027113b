"""The landing page: what Gatewayz is and how to call it, with the catalog's real figures
and the base URL this deployment answers on."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.web import cached
from monitoring.discovery import models_trending
from providers.catalog import catalog_recent


def home(request: HttpRequest) -> HttpResponse:
    catalog = catalog_recent()
    chat = sorted(m.id for m in catalog.models.values() if m.kind == "chat")
    trending = cached(
        "pages:home:trending",
        60,
        lambda: models_trending({"time_range": "7d", "limit": "6"}, catalog)["data"],
    )
    example = trending[0]["model"] if trending else (chat[0] if chat else "openai/gpt-4o-mini")
    context = {
        "model_count": len(catalog.models),
        "provider_count": len({d.provider for m in catalog.models.values() for d in m.deployments}),
        "trending": trending,
        "example_model": example,
    }
    return render(request, "home.html", context)
