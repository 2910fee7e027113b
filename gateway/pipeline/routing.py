"""Which deployments a request tries, in which order: the model's routing strategy, then the
caller's preferences (OpenRouter's `provider` object, a `:nitro`/`:floor` suffix), then the
`models` it names as fallbacks.

The common case (the model's priority order, no preferences) returns the catalog's own
tuple: routing costs nothing until someone asks for more. What the strategies read about
each deployment (latency, throughput, requests in flight) is measured in this process from
its own traffic (`DeploymentStats`).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from core.errors import GatewayError, bad_request
from gateway.guards.deployment_stats import stats_of
from providers.catalog import Catalog, CatalogModel, Deployment

STRATEGIES = ("priority", "weighted", "latency", "cost", "least_busy")
SORTS = ("price", "latency", "throughput")
MAX_FALLBACK_MODELS = 4
PREFERENCE_FIELDS = {
    "order",
    "only",
    "ignore",
    "allow_fallbacks",
    "sort",
    "max_price",
    "require_parameters",
}
# Model id suffixes (OpenRouter's): the fastest, the cheapest, or only free deployments.
VARIANTS = {"nitro": "throughput", "floor": "price", "free": None}


@dataclass(frozen=True, slots=True)
class Preferences:
    order: tuple[str, ...] = ()
    only: frozenset[str] | None = None
    ignore: frozenset[str] = frozenset()
    allow_fallbacks: bool = True
    sort: str | None = None
    max_prompt_price: Decimal | None = None  # credits per 1M tokens
    max_completion_price: Decimal | None = None
    max_image_price: Decimal | None = None
    require_parameters: bool = False
    free_only: bool = False  # a `:free` variant


NO_PREFERENCES = Preferences()  # what a request without preferences gets, by identity


def _providers(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise bad_request(
            f"'provider.{name}' must be an array of provider slugs.", param=f"provider.{name}"
        )
    return tuple(value)


def _price(value: Any, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad_request(f"'provider.max_price.{name}' must be a number.", param="provider")
    try:
        price = Decimal(str(value))
    except ArithmeticError:
        price = Decimal(-1)
    if not price.is_finite() or price < 0:
        raise bad_request(
            f"'provider.max_price.{name}' must be a number of at least 0.", param="provider"
        )
    return price


def preferences_parse(raw: Any) -> Preferences:
    """The `provider` object of a request, checked field by field."""
    if raw is None:
        return NO_PREFERENCES
    if not isinstance(raw, dict):
        raise bad_request("'provider' must be an object.", param="provider")
    unknown = sorted(set(raw) - PREFERENCE_FIELDS)
    if unknown:
        raise bad_request(
            f"'provider.{unknown[0]}' is not supported; Gatewayz takes "
            f"{', '.join(sorted(PREFERENCE_FIELDS))}.",
            param=f"provider.{unknown[0]}",
        )
    fields: dict[str, Any] = {}
    if "order" in raw:
        fields["order"] = _providers(raw["order"], "order")
    if "only" in raw:
        fields["only"] = frozenset(_providers(raw["only"], "only"))
    if "ignore" in raw:
        fields["ignore"] = frozenset(_providers(raw["ignore"], "ignore"))
    for flag in ("allow_fallbacks", "require_parameters"):
        if flag in raw:
            if not isinstance(raw[flag], bool):
                raise bad_request(f"'provider.{flag}' must be a boolean.", param=f"provider.{flag}")
            fields[flag] = raw[flag]
    if "sort" in raw:
        if raw["sort"] not in SORTS:
            raise bad_request(
                f"'provider.sort' must be one of {', '.join(SORTS)}.", param="provider.sort"
            )
        fields["sort"] = raw["sort"]
    if "max_price" in raw:
        prices = raw["max_price"]
        if not isinstance(prices, dict) or set(prices) - {"prompt", "completion", "image"}:
            raise bad_request(
                "'provider.max_price' must be an object with prompt, completion or image "
                "(credits per million tokens; per image).",
                param="provider.max_price",
            )
        for name in ("prompt", "completion", "image"):
            if name in prices:
                fields[f"max_{name}_price"] = _price(prices[name], name)
    return Preferences(**fields)


def fallback_models_parse(raw: Any, model: str) -> tuple[str, ...]:
    """The `models` array: the models to try, in order, after `model`."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
        raise bad_request("'models' must be an array of model ids.", param="models")
    chain = tuple(dict.fromkeys(m for m in raw if m != model))
    if len(chain) > MAX_FALLBACK_MODELS:
        raise bad_request(
            f"'models' may name at most {MAX_FALLBACK_MODELS} fallback models.", param="models"
        )
    return chain


def _price_of(d: Deployment) -> Decimal:
    return d.per_image_price or d.input_price + d.output_price


def _free(d: Deployment) -> bool:
    return not (d.input_price or d.output_price or d.per_image_price)


def _weighted_order(deployments: list[Deployment]) -> list[Deployment]:
    # Weighted sampling without replacement (Efraimidis-Spirakis): each deployment draws
    # u^(1/w) and the largest go first, so the first choice follows the weights exactly.
    def key(d: Deployment) -> float:
        return math.log(random.random() or 1e-300) / d.weight if d.weight > 0 else -math.inf

    return sorted(deployments, key=key, reverse=True)


def _latency(model: str) -> Any:
    def key(d: Deployment) -> float:
        measured = stats_of(d.provider, model).latency_ms
        return -1.0 if measured is None else measured  # the unmeasured get measured first

    return key


def _throughput(model: str) -> Any:
    def key(d: Deployment) -> float:
        measured = stats_of(d.provider, model).tokens_per_second
        return -math.inf if measured is None else -measured

    return key


def _strategy_order(model: CatalogModel, sort: str | None) -> list[Deployment]:
    deployments = list(model.deployments)
    how = {"price": "cost", "latency": "latency", "throughput": "throughput"}.get(
        sort or "", model.strategy
    )
    if how == "weighted":
        return _weighted_order(deployments)
    if how == "cost":
        return sorted(deployments, key=_price_of)
    if how == "latency":
        return sorted(deployments, key=_latency(model.family))
    if how == "throughput":
        return sorted(deployments, key=_throughput(model.family))
    if how == "least_busy":
        return sorted(deployments, key=lambda d: stats_of(d.provider, model.family).in_flight)
    return deployments  # priority: the catalog's order


def _fits(
    d: Deployment,
    p: Preferences,
    body: dict[str, Any],
    dropped: Callable[[dict[str, Any], Deployment], list[str]],
) -> bool:
    if p.only is not None and d.provider not in p.only:
        return False
    if d.provider in p.ignore or (p.free_only and not _free(d)):
        return False
    if p.max_prompt_price is not None and d.input_price > p.max_prompt_price:
        return False
    if p.max_completion_price is not None and d.output_price > p.max_completion_price:
        return False
    if p.max_image_price is not None and d.per_image_price > p.max_image_price:
        return False
    # Only deployments that honour every parameter the request sets (none dropped, by the
    # provider or by a translation; one that would refuse a parameter does not fit either).
    if not p.require_parameters:
        return True
    try:
        return not dropped(body, d)
    except GatewayError:
        return False


def deployments_for(
    model: CatalogModel,
    prefs: Preferences,
    body: dict[str, Any],
    dropped: Callable[[dict[str, Any], Deployment], list[str]] = lambda body, d: [],
) -> tuple[Deployment, ...]:
    """The model's deployments this request may try, in the order to try them (`dropped`:
    the fields a deployment would not get, for `require_parameters`)."""
    if prefs is NO_PREFERENCES and model.strategy == "priority":
        return model.deployments
    ordered = [d for d in _strategy_order(model, prefs.sort) if _fits(d, prefs, body, dropped)]
    if prefs.order:
        rank = {slug: i for i, slug in enumerate(prefs.order)}
        named = sorted((d for d in ordered if d.provider in rank), key=lambda d: rank[d.provider])
        rest = [d for d in ordered if d.provider not in rank]
        ordered = named + (rest if prefs.allow_fallbacks else [])
    elif not prefs.allow_fallbacks:
        ordered = ordered[:1]
    return tuple(ordered)


def resolve_variant(catalog: Catalog, name: str) -> tuple[CatalogModel | None, str | None]:
    """The model `name` calls for, and its variant suffix if it has one (an id that itself
    ends in `:free` in the catalog is a model of its own, and is found first)."""
    model = catalog.resolve(name)
    if model is not None:
        return model, None
    base, colon, suffix = name.rpartition(":")
    if colon and suffix in VARIANTS:
        return catalog.resolve(base), suffix
    return None, None


def variant_preferences(prefs: Preferences, variant: str | None) -> Preferences:
    if variant is None:
        return prefs
    if variant == "free":
        return replace(prefs, free_only=True)
    return replace(prefs, sort=prefs.sort or VARIANTS[variant])


def no_deployment_fits(model: str) -> GatewayError:
    return GatewayError(
        404,
        f"No provider of '{model}' meets this request's provider preferences.",
        param="provider",
        code="no_provider_fits",
    )
