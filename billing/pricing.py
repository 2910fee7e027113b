"""What a request may cost (the hold) and what it did cost (the charge), exactly."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from providers.catalog import Deployment

PER_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # the part of prompt_tokens read from the provider's cache


def usage_cost(usage: Usage, deployment: Deployment) -> Decimal:
    uncached = max(usage.prompt_tokens - usage.cached_tokens, 0)
    cached = usage.prompt_tokens - uncached
    micro = (
        uncached * deployment.input_price
        + cached * deployment.cached_input_price
        + usage.completion_tokens * deployment.output_price
    )
    # Prices carry ≤ 6 places, so dividing by 10^6 is exact within 12 places.
    return micro / PER_MILLION


def hold_amount(*, body_bytes: int, max_output_tokens: int, deployment: Deployment) -> Decimal:
    """The most this request can cost on this deployment.

    A token is at least one byte of text, so the request body's size bounds its prompt
    tokens; completion is bounded by what the request (or the model) lets the provider write.
    """
    bound = Usage(prompt_tokens=body_bytes, completion_tokens=max_output_tokens)
    return usage_cost(bound, deployment)
