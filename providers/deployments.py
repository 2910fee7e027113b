"""A deployment: one provider serving one model, as the catalog (providers.catalog) builds it
and the wire protocols (providers.protocols) speak to it. Apart from the catalog so that the
protocols, which the catalog asks for their defaults, need nothing of it."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

ZERO = Decimal(0)


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
    cache_write_price: Decimal = ZERO
    cache_write_1h_price: Decimal = ZERO  # below cache_write_price: that price (billing.pricing)
    auth: str = "bearer"
    extra_headers: tuple[tuple[str, str], ...] = ()
    drop_params: frozenset[str] = frozenset()
    unsupported_params: frozenset[str] = frozenset()
    rename_params: tuple[tuple[str, str], ...] = ()
    default_params: tuple[tuple[str, Any], ...] = ()
    default_params_unless: frozenset[str] = frozenset()
    # Takes Anthropic-style `cache_control` marks on OpenAI-shape content parts and tools
    # (providers.translate.cache_control); an OpenAI-protocol provider without it gets none.
    cache_control: bool = False
    # Answers in a JSON schema natively (the model's `structured_outputs` capability): an
    # Anthropic-protocol provider then takes `output_config.format`, else a forced tool
    # stands in for it (providers.translate.structured_output).
    structured_outputs: bool = False
    per_image_price: Decimal = ZERO
    size_multipliers: tuple[tuple[str, Decimal], ...] = ()
    quality_multipliers: tuple[tuple[str, Decimal], ...] = ()
    weight: int = 1
    byok: bool = False  # served with the customer's own key (providers.byok)
    # What the customer pays over the prices above, which are the provider's
    # (GATEWAYZ_MARKUP; 1 with the customer's own key, whose fee is the price: billing.pricing).
    markup: Decimal = Decimal(1)
