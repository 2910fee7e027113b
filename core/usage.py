"""Token usage, as providers report it and as a request is billed for."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0  # the part of prompt_tokens read from the provider's cache
    cache_write_tokens: int = 0  # the part of prompt_tokens written to it
    # The part of cache_write_tokens written for an hour (Anthropic's `ttl: "1h"`, dearer than
    # the default five minutes); only providers that report the split fill it in.
    cache_write_1h_tokens: int = 0


def usage_estimate(body_bytes: int, completion_tokens: int) -> Usage:
    """For an upstream that sent no usage: ~4 bytes of request per prompt token."""
    return Usage(prompt_tokens=body_bytes // 4, completion_tokens=completion_tokens)
