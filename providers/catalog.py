"""The hot path's catalog: an immutable in-memory snapshot of what can be served.

Built from the database once per process and rebuilt when a catalog invalidation arrives.
Only deployments whose provider is enabled and whose credential is present are kept, so
real providers switch on by setting their API key in the environment.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from decimal import Decimal

from config.asyncdb import db_call
from providers.models import Alias, Model, Offering


@dataclass(frozen=True, slots=True)
class Deployment:
    provider: str
    protocol: str
    base_url: str
    api_key: str
    connect_timeout: float
    read_timeout: float
    upstream_model_id: str
    input_price: Decimal  # credits per 1M tokens
    output_price: Decimal
    cached_input_price: Decimal


@dataclass(frozen=True, slots=True)
class CatalogModel:
    id: str
    name: str
    context_length: int
    max_output_tokens: int | None
    capabilities: tuple[str, ...]
    created: int
    deployments: tuple[Deployment, ...]


@dataclass(frozen=True)
class Catalog:
    models: dict[str, CatalogModel]
    aliases: dict[str, str] = field(default_factory=dict)
    built_at: float = field(default_factory=time.monotonic)

    def resolve(self, name: str) -> CatalogModel | None:
        model = self.models.get(name)
        if model is None:
            canonical = self.aliases.get(name)
            model = self.models.get(canonical) if canonical else None
        return model


def catalog_build() -> Catalog:
    offerings = (
        Offering.objects.filter(enabled=True, provider__enabled=True)
        .select_related("provider")
        .order_by("model_id", "priority", "provider__slug")
    )
    by_model: dict[int, list[Deployment]] = {}
    for o in offerings:
        p = o.provider
        api_key = os.environ.get(p.credential_env, "") if p.credential_env else ""
        if p.credential_env and not api_key:
            continue  # no credential here: this provider is switched off
        by_model.setdefault(o.model_id, []).append(
            Deployment(
                provider=p.slug,
                protocol=p.protocol,
                base_url=p.base_url.rstrip("/"),
                api_key=api_key,
                connect_timeout=p.connect_timeout,
                read_timeout=p.read_timeout,
                upstream_model_id=o.upstream_model_id,
                input_price=o.input_price,
                output_price=o.output_price,
                cached_input_price=o.cached_input_price,
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
        )
        for m in Model.objects.filter(pk__in=by_model)
    }
    aliases = {a: m for a, m in Alias.objects.values_list("alias", "model__canonical_id")}
    return Catalog(models=models, aliases=aliases)


class CatalogHolder:
    def __init__(self) -> None:
        self._catalog: Catalog | None = None
        self._generation = 0  # bumped by invalidate(): a build that raced one is not kept

    async def get(self) -> Catalog:
        catalog = self._catalog
        if catalog is None:
            generation = self._generation
            catalog = await db_call(catalog_build)
            if generation == self._generation:
                self._catalog = catalog
        return catalog

    def invalidate(self) -> None:
        self._generation += 1
        self._catalog = None


catalog_holder = CatalogHolder()
