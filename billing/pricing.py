"""What a request may cost (the hold) and what it did cost (the charge), exactly.

The catalog's prices are the provider's; the customer pays them times the deployment's
markup (GATEWAYZ_MARKUP), rounded up to the ledger's pico-credit. Both figures are recorded
per request: `provider_cost` (what the provider bills us; nothing when the customer's own
key served it) and the cost charged."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_UP, Decimal

from core.usage import Usage
from providers.catalog import Deployment

PER_MILLION = Decimal(1_000_000)
PICO_STEP = Decimal("1e-12")  # the ledger's exactness
ZERO = Decimal(0)


def cache_write_1h_price(deployment: Deployment) -> Decimal:
    """An hour's cache write never costs less than five minutes' (unset: the same price)."""
    return max(deployment.cache_write_1h_price, deployment.cache_write_price)


def priced(amount: Decimal, deployment: Deployment) -> Decimal:
    """A provider's price as the customer pays it."""
    if deployment.markup == 1:
        return amount
    return (amount * deployment.markup).quantize(PICO_STEP, rounding=ROUND_CEILING)


def usage_cost(usage: Usage, deployment: Deployment) -> Decimal:
    """What the customer is charged for `usage`."""
    return priced(list_cost(usage, deployment), deployment)


def usage_costs(usage: Usage, deployment: Deployment) -> tuple[Decimal, Decimal]:
    """What the customer is charged for `usage`, and what the provider bills us for it
    (nothing on the customer's own key): the usage priced once."""
    at_provider = list_cost(usage, deployment)
    return priced(at_provider, deployment), ZERO if deployment.byok else at_provider


def list_cost(usage: Usage, deployment: Deployment) -> Decimal:
    cached = min(usage.cached_tokens, usage.prompt_tokens)
    written = min(usage.cache_write_tokens, usage.prompt_tokens - cached)
    written_1h = min(usage.cache_write_1h_tokens, written)
    uncached = usage.prompt_tokens - cached - written
    micro = (
        uncached * deployment.input_price
        + cached * deployment.cached_input_price
        + (written - written_1h) * deployment.cache_write_price
        + usage.completion_tokens * deployment.output_price
    )
    if written_1h:
        micro += written_1h * cache_write_1h_price(deployment)
    # Prices carry ≤ 6 places, so dividing by 10^6 is exact within 12 places.
    return micro / PER_MILLION


def hold_amount(*, body_bytes: int, max_output_tokens: int, deployment: Deployment) -> Decimal:
    """The most this request can cost on this deployment.

    A token is at least one byte of text, so the request body's size bounds its prompt
    tokens; completion is bounded by what the request (or the model) lets the provider write.
    """
    # Any prompt token may turn out to be a cache write, dearer than a plain input token.
    prompt_price = max(
        deployment.input_price, cache_write_1h_price(deployment), deployment.cached_input_price
    )
    micro = body_bytes * prompt_price + max_output_tokens * deployment.output_price
    return priced(micro / PER_MILLION, deployment)


def image_unit_price(deployment: Deployment, *, size: str | None, quality: str | None) -> Decimal:
    """One image's price to the customer (the provider's, times the markup)."""
    return priced(image_list_price(deployment, size=size, quality=quality), deployment)


def image_list_price(deployment: Deployment, *, size: str | None, quality: str | None) -> Decimal:
    """One image's price at the provider: the base price × the size and quality multipliers.

    A value the catalog lists has its multiplier; an absent one (the provider's default)
    the table's `default` entry; anything else the table's dearest, so an image is never
    billed below its cost. Exact to 12 places, rounded up."""
    price = deployment.per_image_price
    for chosen, table in (
        (size, dict(deployment.size_multipliers)),
        (quality, dict(deployment.quality_multipliers)),
    ):
        if not table:
            continue
        dearest = max(Decimal(1), *table.values())
        if chosen is None:
            price *= table.get("default", dearest)
        else:
            price *= table.get(chosen, dearest)
    return price.quantize(PICO_STEP, rounding=ROUND_UP)
