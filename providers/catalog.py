"""The hot path's catalog: an immutable in-memory snapshot of what can be served.

Built from the database once per process and rebuilt when a catalog invalidation arrives.
Only deployments whose provider is enabled and whose credential is present are kept, so
real providers switch on by setting their API key in the environment.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from django.conf import settings

from core.asyncdb import db_call
from core.outage import DATABASE_UNREACHABLE
from providers.credentials import CredentialUnreadable
from providers.deployments import Deployment
from providers.models import Alias, Model, Offering, PrefixRoute, Provider
from providers.protocols import PROTOCOLS
from providers.ssrf import base_url_problem

log = logging.getLogger(__name__)

PLACEHOLDER = re.compile(r"\{([A-Z][A-Z0-9_]*)\}")
ZERO = Decimal(0)
REBUILD_RETRY_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class CatalogModel:
    id: str
    name: str
    context_length: int
    max_output_tokens: int | None
    capabilities: tuple[str, ...]
    created: int
    deployments: tuple[Deployment, ...]
    kind: str = "chat"
    strategy: str = "priority"
    routed_by: str = ""  # the prefix route that made it (its id is the client's name)

    @property
    def family(self) -> str:
        """What its breakers, measurements and metrics are kept under: its id, or for a
        prefix-routed model its route (`mistralai/*`), since a client may name any number
        of models under a prefix and each must not make state of its own."""
        return f"{self.routed_by}*" if self.routed_by else self.id


@dataclass(frozen=True)
class Catalog:
    models: dict[str, CatalogModel]
    aliases: dict[str, str] = field(default_factory=dict)
    # (prefix, deployment template) longest prefix first; see PrefixRoute.
    prefix_routes: tuple[tuple[str, Deployment], ...] = ()
    # A provider's own id for a model (`accounts/fireworks/models/...`, `@cf/...`), or
    # `<provider>/<its id>`: the model, served by that provider only.
    native: dict[str, CatalogModel] = field(default_factory=dict)
    built_at: float = field(default_factory=time.monotonic)

    def resolve(self, name: str) -> CatalogModel | None:
        model = self.models.get(name)
        if model is None:
            canonical = self.aliases.get(name)
            model = self.models.get(canonical) if canonical else self.native.get(name)
        if model is None and self.prefix_routes:
            model = self._routed(name)
        return model

    def _routed(self, name: str) -> CatalogModel | None:
        for prefix, template in self.prefix_routes:
            if name.startswith(prefix) and len(name) > len(prefix):
                deployment = replace(template, upstream_model_id=name)
                return CatalogModel(name, name, 0, None, (), 0, (deployment,), routed_by=prefix)
        return None


def _provider_base(p: Provider) -> dict[str, Any] | None:
    """What every deployment of `p` shares, or None when this environment lacks its
    credential or a variable its base URL names (the provider is switched off here)."""
    try:
        api_key = p.credential_plaintext()
    except CredentialUnreadable:
        log.error("provider %s is switched off: no key of the ring opens its credential", p.slug)
        return None
    if not api_key and p.credential_env:
        api_key = os.environ.get(p.credential_env, "")
        if not api_key:
            return None
    missing = [n for n in PLACEHOLDER.findall(p.base_url) if not os.environ.get(n)]
    if missing:
        return None
    base_url = PLACEHOLDER.sub(lambda m: os.environ[m.group(1)], p.base_url).rstrip("/")
    problem = base_url_problem(base_url)
    if problem:
        log.error("provider %s is switched off: %s", p.slug, problem)
        return None
    return {
        "provider": p.slug,
        "protocol": p.protocol,
        "base_url": base_url,
        "api_key": api_key,
        "connect_timeout": p.connect_timeout,
        "read_timeout": p.read_timeout,
        "auth": p.auth or PROTOCOLS[p.protocol].default_auth,
        "extra_headers": tuple(sorted((str(k), str(v)) for k, v in p.extra_headers.items())),
        "drop_params": frozenset(p.drop_params),
        "unsupported_params": frozenset(p.unsupported_params),
        "rename_params": tuple(sorted(p.rename_params.items())),
        "cache_control": p.accepts_cache_control,
    }


def _multipliers(raw: dict[str, Any]) -> tuple[tuple[str, Decimal], ...]:
    return tuple(sorted((str(k), Decimal(str(v))) for k, v in raw.items()))


def catalog_build() -> Catalog:
    offerings = (
        Offering.objects.filter(enabled=True, provider__enabled=True)
        .select_related("provider", "model")
        .order_by("model_id", "priority", "provider__slug")
    )
    bases: dict[int, dict[str, Any] | None] = {}
    by_model: dict[int, list[Deployment]] = {}
    markup: Decimal = settings.GATEWAYZ_MARKUP
    for o in offerings:
        if o.provider_id not in bases:
            bases[o.provider_id] = _provider_base(o.provider)
        base = bases[o.provider_id]
        if base is None:
            continue
        if o.accepts_cache_control is not None:
            base = {**base, "cache_control": o.accepts_cache_control}
        by_model.setdefault(o.model_id, []).append(
            Deployment(
                **base,
                upstream_model_id=o.upstream_model_id,
                input_price=o.input_price,
                output_price=o.output_price,
                cached_input_price=o.cached_input_price,
                # A cache write never costs less than a plain input token (Anthropic's are
                # 1.25-2×; OpenAI-protocol providers report none).
                cache_write_price=max(o.cache_write_price, o.input_price),
                cache_write_1h_price=max(
                    o.cache_write_1h_price, o.cache_write_price, o.input_price
                ),
                default_params=tuple(sorted(o.default_params.items())),
                default_params_unless=frozenset(o.default_params_unless),
                per_image_price=o.per_image_price,
                size_multipliers=_multipliers(o.size_multipliers),
                quality_multipliers=_multipliers(o.quality_multipliers),
                weight=o.weight,
                structured_outputs="structured_outputs" in o.model.capabilities,
                markup=markup,
            )
        )
    models = {
        m.canonical_id: CatalogModel(
            id=m.canonical_id,
            name=m.name,
            context_length=m.context_length,
            max_output_tokens=m.max_output_tokens,
            capabilities=tuple(m.capabilities),
            created=int(m.created_at.timestamp()),
            deployments=tuple(by_model[m.pk]),
            kind=m.kind,
            strategy=m.routing_strategy,
        )
        for m in Model.objects.filter(pk__in=by_model)
    }
    aliases = {a: m for a, m in Alias.objects.values_list("alias", "model__canonical_id")}
    native = _native_ids(models, aliases)
    routes = []
    for r in PrefixRoute.objects.filter(enabled=True, provider__enabled=True).select_related(
        "provider"
    ):
        base = _provider_base(r.provider)
        if base is not None:
            template = Deployment(
                **base,
                upstream_model_id="",
                input_price=r.input_price,
                output_price=r.output_price,
                cached_input_price=r.input_price,
                cache_write_price=r.input_price,
                cache_write_1h_price=r.input_price,
                markup=markup,
            )
            routes.append((r.prefix, template))
    routes.sort(key=lambda route: -len(route[0]))
    return Catalog(models=models, aliases=aliases, prefix_routes=tuple(routes), native=native)


def _native_ids(
    models: dict[str, CatalogModel], aliases: dict[str, str]
) -> dict[str, CatalogModel]:
    """Each provider's own model ids (and `<provider>/<id>`) that are not already canonical
    ids or aliases, each to its model restricted to the providers that use that id."""
    by_name: dict[str, dict[str, list[Deployment]]] = {}
    for model in models.values():
        for d in model.deployments:
            for name in (d.upstream_model_id, f"{d.provider}/{d.upstream_model_id}"):
                by_name.setdefault(name, {}).setdefault(model.id, []).append(d)
    native = {}
    for name, per_model in by_name.items():
        if name in models or name in aliases or len(per_model) != 1:
            continue  # taken, or ambiguous between two models: not a way in
        ((model_id, deployments),) = per_model.items()
        native[name] = replace(models[model_id], deployments=tuple(deployments))
    return native


class CatalogHolder:
    """The process's catalog. An invalidated one is rebuilt on the next request; should the
    database be out of reach then, the last one built keeps serving (retried every
    REBUILD_RETRY_SECONDS, not per request) until it answers."""

    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._last: Catalog | None = None  # the latest built, invalidated or not
        self._generation = 0  # bumped by invalidate(): a build that raced one is not kept
        self._retry_at = 0.0  # monotonic: no rebuild before, while the database is away

    async def get(self) -> Catalog:
        catalog = self._catalog
        if catalog is None:
            if self._last is not None and time.monotonic() < self._retry_at:
                return self._last
            generation = self._generation
            try:
                catalog = await db_call(catalog_build)
            except DATABASE_UNREACHABLE:
                if self._last is None:
                    raise
                self._retry_at = time.monotonic() + REBUILD_RETRY_SECONDS
                return self._last
            if generation == self._generation:
                self._catalog = self._last = catalog
        return catalog

    def has_one(self) -> bool:
        """Whether it can serve without the database (readiness)."""
        return self._last is not None or self._catalog is not None

    def invalidate(self) -> None:
        self._generation += 1
        self._catalog = None
        self._retry_at = 0.0


catalog_holder = CatalogHolder()


PAGE_CATALOG_SECONDS = 30.0
_page_catalog: tuple[float, Catalog] | None = None


def catalog_recent() -> Catalog:
    """The catalog for the web pages (sync views): built at most every
    PAGE_CATALOG_SECONDS per process, so a page view costs no catalog queries. An edit by
    staff shows on the pages within that time; the gateway's own catalog is invalidated at
    once (CatalogHolder)."""
    global _page_catalog
    kept = _page_catalog
    if kept is None or kept[0] < time.monotonic():
        kept = _page_catalog = (time.monotonic() + PAGE_CATALOG_SECONDS, catalog_build())
    return kept[1]
