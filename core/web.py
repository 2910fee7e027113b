"""What every page's template is given (settings' context processors): the site's name and
the API's base URL as a caller should write it; and the cache the public pages' figures are
kept in."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest

T = TypeVar("T")


def site(request: HttpRequest) -> dict[str, Any]:
    # The base URL customers paste into their SDKs: the public one when the deployment
    # names it (the proxy's host), else the host this page was asked from.
    base = settings.GATEWAYZ_PUBLIC_URL or request.build_absolute_uri("/").rstrip("/")
    # The Anthropic SDK adds /v1 itself; the OpenAI SDK is given it.
    return {"site_name": "Gatewayz", "api_root": base, "api_base": f"{base}/v1"}


def cached(key: str, seconds: int, compute: Callable[[], T]) -> T:
    """`compute()`'s answer kept `seconds` in the shared cache: public pages' figures (the
    catalog's traffic, uptime) cost one computation per period, not one per visit."""
    found = cache.get(key)
    if found is None:
        found = compute()
        cache.set(key, found, seconds)
    return found
