"""Token usage between Anthropic Messages and OpenAI Chat Completions.

It maps exactly: Anthropic's `input_tokens` excludes the prompt tokens read from or written
to the cache, OpenAI's `prompt_tokens` includes them (`cached_tokens` says how many were
read)."""

from __future__ import annotations

from typing import Any

from core.usage import Usage

JSON = dict[str, Any]


def anthropic_usage(usage: Usage) -> JSON:
    written_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens - written_1h,
            "ephemeral_1h_input_tokens": written_1h,
        },
    }


def usage_from_anthropic(usage: Any, *, previous: Usage | None = None) -> Usage | None:
    """Anthropic usage (whole, or a message_delta's update on `previous`) → our Usage."""
    if not isinstance(usage, dict):
        return None
    base = previous or Usage()
    read = usage.get("cache_read_input_tokens")
    written = usage.get("cache_creation_input_tokens")
    fresh = usage.get("input_tokens")
    cached = int(read) if read is not None else base.cached_tokens
    cache_write = int(written) if written is not None else base.cache_write_tokens
    # How much of the write is kept for an hour: priced apart (billing.pricing).
    by_ttl = usage.get("cache_creation")
    written_1h = by_ttl.get("ephemeral_1h_input_tokens") if isinstance(by_ttl, dict) else None
    cache_write_1h = int(written_1h) if written_1h is not None else base.cache_write_1h_tokens
    uncached = (
        int(fresh)
        if fresh is not None
        else base.prompt_tokens - base.cached_tokens - base.cache_write_tokens
    )
    output = usage.get("output_tokens")
    return Usage(
        prompt_tokens=uncached + cached + cache_write,
        completion_tokens=int(output) if output is not None else base.completion_tokens,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=cache_write_1h,
    )


def openai_usage(usage: Usage) -> JSON:
    details: JSON = {"cached_tokens": usage.cached_tokens}
    if usage.cache_write_tokens:
        details["cache_write_tokens"] = usage.cache_write_tokens  # OpenRouter's name for it
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": details,
    }
