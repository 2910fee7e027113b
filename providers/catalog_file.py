"""Loads a catalog data file (TOML) into the catalog tables: upsert, never delete.

Deleting is left to staff in the admin: a file that forgets a model must not silently take
it away from customers.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from django.db import transaction

from core.models import CacheInvalidation, invalidation_announce
from providers.models import Alias, CatalogState, Model, Offering, PrefixRoute, Provider

BUNDLED_CATALOG = Path(__file__).resolve().parent / "catalog" / "catalog.toml"
DEMO_CATALOG = Path(__file__).resolve().parent / "catalog" / "demo.toml"


class CatalogFileError(ValueError):
    pass


@dataclass(frozen=True)
class CatalogLoadResult:
    version: str
    providers: int
    models: int
    offerings: int


def _price(raw: Any, where: str) -> Decimal:
    # Floats are refused: 0.1 in TOML is a binary fraction, and money stays exact.
    if isinstance(raw, bool) or not isinstance(raw, (str, int)):
        raise CatalogFileError(f'{where}: write prices as strings, e.g. "2.50" (got {raw!r})')
    try:
        value = Decimal(str(raw))
    except InvalidOperation as exc:
        raise CatalogFileError(f"{where}: {raw!r} is not a price") from exc
    if value < 0 or value != value.quantize(Decimal("0.000001")):
        raise CatalogFileError(f"{where}: {raw!r} must be ≥ 0 with at most 6 decimal places")
    return value


def _weight(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CatalogFileError(f"{where}.weight: a whole number of at least 0")
    return value


def _multipliers(raw: Any, where: str) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise CatalogFileError(f"{where}: write multipliers as a table of strings")
    return {str(k): str(_price(v, f"{where}.{k}")) for k, v in raw.items()}


def _str_list(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(x, str) for x in raw):
        raise CatalogFileError(f"{where}: must be a list of strings")
    return list(raw)


def _str_table(raw: Any, where: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise CatalogFileError(f"{where}: must be a table")
    return dict(raw)


def _flag(raw: Any, where: str) -> bool:
    if not isinstance(raw, bool):
        raise CatalogFileError(f"{where}: must be true or false")
    return raw


def _require(table: dict[str, Any], key: str, where: str) -> Any:
    if key not in table:
        raise CatalogFileError(f"{where}: missing {key!r}")
    return table[key]


@transaction.atomic
def catalog_file_load(*, path: Path) -> CatalogLoadResult:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CatalogFileError(f"{path}: {exc}") from exc
    version = str(_require(data, "version", str(path)))
    n_offerings = 0

    for i, p in enumerate(data.get("providers", [])):
        where = f"{path.name}: providers[{i}]"
        protocol = p.get("protocol", Provider.Protocol.OPENAI)
        if protocol not in Provider.Protocol.values:
            raise CatalogFileError(f"{where}: unknown protocol {protocol!r}")
        auth = p.get("auth", "")
        if auth not in Provider.Auth.values:
            raise CatalogFileError(f"{where}: unknown auth {auth!r}")
        Provider.objects.update_or_create(
            slug=_require(p, "slug", where),
            defaults={
                "name": p.get("name", p["slug"]),
                "protocol": protocol,
                "base_url": str(_require(p, "base_url", where)).rstrip("/"),
                "credential_env": p.get("credential_env", ""),
                "connect_timeout": float(p.get("connect_timeout", 5)),
                "read_timeout": float(p.get("read_timeout", 120)),
                "enabled": bool(p.get("enabled", True)),
                "auth": auth,
                "extra_headers": _str_table(p.get("headers", {}), f"{where}.headers"),
                "drop_params": _str_list(p.get("drop_params", []), f"{where}.drop_params"),
                "unsupported_params": _str_list(
                    p.get("unsupported_params", []), f"{where}.unsupported_params"
                ),
                "rename_params": _str_table(p.get("rename_params", {}), f"{where}.rename_params"),
                "accepts_cache_control": _flag(
                    p.get("cache_control", False), f"{where}.cache_control"
                ),
            },
        )

    for i, m in enumerate(data.get("models", [])):
        where = f"{path.name}: models[{i}]"
        kind = m.get("kind", Model.Kind.CHAT)
        if kind not in Model.Kind.values:
            raise CatalogFileError(f"{where}: unknown kind {kind!r}")
        strategy = m.get("strategy", Model.Strategy.PRIORITY)
        if strategy not in Model.Strategy.values:
            raise CatalogFileError(f"{where}: unknown strategy {strategy!r}")
        model, _ = Model.objects.update_or_create(
            canonical_id=_require(m, "id", where),
            defaults={
                "kind": kind,
                "routing_strategy": strategy,
                "name": m.get("name", m["id"]),
                "context_length": int(m.get("context_length", 0)),
                "max_output_tokens": m.get("max_output_tokens"),
                "capabilities": list(m.get("capabilities", [])),
            },
        )
        for alias in m.get("aliases", []):
            Alias.objects.update_or_create(alias=alias, defaults={"model": model})
        for j, o in enumerate(m.get("offerings", [])):
            owhere = f"{where}.offerings[{j}]"
            slug = _require(o, "provider", owhere)
            provider = Provider.objects.filter(slug=slug).first()
            if provider is None:
                raise CatalogFileError(f"{owhere}: unknown provider {slug!r}")
            if kind == Model.Kind.IMAGE:
                prices = {
                    "per_image_price": _price(_require(o, "per_image", owhere), owhere),
                    "size_multipliers": _multipliers(o.get("size_multipliers", {}), owhere),
                    "quality_multipliers": _multipliers(o.get("quality_multipliers", {}), owhere),
                }
            else:
                input_price = _price(_require(o, "input", owhere), f"{owhere}.input")
                cache_write = o.get("cache_write", o["input"])
                output = o.get("output", "0") if kind == Model.Kind.EMBEDDING else None
                prices = {
                    "input_price": input_price,
                    "output_price": _price(
                        output if output is not None else _require(o, "output", owhere),
                        f"{owhere}.output",
                    ),
                    "cached_input_price": _price(
                        o.get("cached_input", o["input"]), f"{owhere}.cached_input"
                    ),
                    "cache_write_price": _price(cache_write, f"{owhere}.cache_write"),
                    "cache_write_1h_price": _price(
                        o.get("cache_write_1h", cache_write), f"{owhere}.cache_write_1h"
                    ),
                }
            Offering.objects.update_or_create(
                provider=provider,
                model=model,
                defaults={
                    "upstream_model_id": _require(o, "upstream_id", owhere),
                    **prices,
                    "default_params": _str_table(
                        o.get("default_params", {}), f"{owhere}.default_params"
                    ),
                    "default_params_unless": _str_list(
                        o.get("default_params_unless", []), f"{owhere}.default_params_unless"
                    ),
                    "accepts_cache_control": (
                        _flag(o["cache_control"], f"{owhere}.cache_control")
                        if "cache_control" in o
                        else None
                    ),
                    "priority": int(o.get("priority", 100)),
                    "weight": _weight(o.get("weight", 1), owhere),
                    "enabled": bool(o.get("enabled", True)),
                },
            )
            n_offerings += 1

    for i, r in enumerate(data.get("prefix_routes", [])):
        where = f"{path.name}: prefix_routes[{i}]"
        slug = _require(r, "provider", where)
        provider = Provider.objects.filter(slug=slug).first()
        if provider is None:
            raise CatalogFileError(f"{where}: unknown provider {slug!r}")
        PrefixRoute.objects.update_or_create(
            prefix=_require(r, "prefix", where),
            defaults={
                "provider": provider,
                "input_price": _price(_require(r, "input", where), f"{where}.input"),
                "output_price": _price(_require(r, "output", where), f"{where}.output"),
                "enabled": bool(r.get("enabled", True)),
            },
        )

    catalog_changed(file_version=version)
    return CatalogLoadResult(
        version, len(data.get("providers", [])), len(data.get("models", [])), n_offerings
    )


def catalog_changed(*, file_version: str | None = None) -> None:
    """Tell every gateway process to reload the catalog (call inside the editing transaction)."""
    state, _ = CatalogState.objects.get_or_create(pk=1)
    state.version += 1
    if file_version is not None:
        state.loaded_file_version = file_version
    state.save()
    invalidation_announce(CacheInvalidation.Kind.CATALOG)
