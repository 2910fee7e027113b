"""The bundled catalog data file has the shape docs/catalog.md describes (tomllib only, no DB)."""

from __future__ import annotations

import re
import tomllib
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.smoke

CATALOG = Path(__file__).resolve().parents[2] / "providers" / "catalog" / "catalog.toml"
DATA: dict[str, Any] = tomllib.loads(CATALOG.read_text(encoding="utf-8"))
PROVIDERS: list[dict[str, Any]] = DATA.get("providers", [])
MODELS: list[dict[str, Any]] = DATA.get("models", [])
ROUTES: list[dict[str, Any]] = DATA.get("prefix_routes", [])
BY_SLUG = {p["slug"]: p for p in PROVIDERS}
BY_ID = {m["id"]: m for m in MODELS}
OFFERINGS = [(m, o) for m in MODELS for o in m.get("offerings", [])]
OFFERING_IDS = [f"{m['id']}@{o.get('provider')}" for m, o in OFFERINGS]

REQUIRED_SLUGS = {
    "openrouter",
    "featherless",
    "fireworks",
    "together",
    "huggingface",
    "xai",
    "deepinfra",
    "chutes",
    "clarifai",
    "onerouter",
    "groq",
    "zai",
    "cloudflare-workers-ai",
    "akash",
    "morpheus",
    "openai",
    "cerebras",
    "alibaba-cloud",
    "novita",
    "nebius",
    "near",
    "aimo",
    "aihubmix",
    "anannas",
    "vercel-ai-gateway",
    "helicone",
    "canopywave",
    "sybil",
    "simplismart",
    "alpaca-network",
    "anthropic",
    "google-vertex",
    "google-gemini",
    "fal",
}
PROTOCOLS = {"openai", "anthropic", "gemini", "fal"}
AUTHS = {"bearer", "x-api-key", "x-goog-api-key", "key"}
KINDS = {"chat", "embedding", "image"}
CAPABILITIES = {"tools", "vision", "json_mode", "structured_outputs", "reasoning", "prompt_caching"}
# Parameters that may be dropped silently: none of them changes what the answer means.
HARMLESS = {"user", "metadata", "store", "service_tier", "parallel_tool_calls", "seed"}
ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
SIX_PLACES = Decimal("0.000001")


def _price(raw: Any) -> Decimal:
    assert isinstance(raw, str), f"price {raw!r} must be a string"
    try:
        value = Decimal(raw)
    except InvalidOperation:
        pytest.fail(f"price {raw!r} is not a decimal")
    assert value.is_finite() and value >= 0, raw
    assert value == value.quantize(SIX_PLACES), f"{raw!r} has more than 6 decimal places"
    return value


def _kind(model: dict[str, Any]) -> str:
    return model.get("kind", "chat")


def _where(model: dict[str, Any], offering: dict[str, Any]) -> str:
    return f"{model['id']} @ {offering.get('provider')}"


# --- Providers ------------------------------------------------------------------------------


def test_it_declares_every_provider_once():
    slugs = [p["slug"] for p in PROVIDERS]

    assert len(slugs) >= 33
    assert len(slugs) == len(set(slugs))
    assert set(slugs) >= REQUIRED_SLUGS, REQUIRED_SLUGS - set(slugs)


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p["slug"])
def test_a_provider_has_every_field(provider):
    for key in ("slug", "name", "protocol", "base_url", "credential_env"):
        assert isinstance(provider.get(key), str) and provider[key], key
    assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", provider["slug"])
    assert provider["protocol"] in PROTOCOLS
    assert provider["base_url"].startswith("https://")
    assert not provider["base_url"].endswith("/")
    assert ENV_NAME.fullmatch(provider["credential_env"])
    for key in ("connect_timeout", "read_timeout"):
        value = provider.get(key)
        assert isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0, key
    assert provider.get("auth", "bearer") in AUTHS


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p["slug"])
def test_a_base_url_names_only_environment_variables(provider):
    url = provider["base_url"]

    for name in PLACEHOLDER.findall(url):
        assert ENV_NAME.fullmatch(name), f"{provider['slug']}: {{{name}}} is no env var name"
    assert "{" not in PLACEHOLDER.sub("", url) and "}" not in PLACEHOLDER.sub("", url)


@pytest.mark.parametrize("provider", PROVIDERS, ids=lambda p: p["slug"])
def test_a_providers_quirks_are_well_formed(provider):
    drop = provider.get("drop_params", [])
    unsupported = provider.get("unsupported_params", [])
    rename = provider.get("rename_params", {})
    headers = provider.get("headers", {})

    assert all(isinstance(p, str) for p in [*drop, *unsupported])
    assert set(drop) <= HARMLESS, set(drop) - HARMLESS
    assert not set(drop) & set(unsupported)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in rename.items())
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
    assert isinstance(provider.get("cache_control", False), bool)


def test_the_protocol_endpoints_are_the_documented_ones():
    assert BY_SLUG["anthropic"]["protocol"] == "anthropic"
    assert BY_SLUG["anthropic"]["base_url"] == "https://api.anthropic.com"
    assert BY_SLUG["google-gemini"]["protocol"] == "gemini"
    assert (
        BY_SLUG["google-gemini"]["base_url"] == "https://generativelanguage.googleapis.com/v1beta"
    )
    assert BY_SLUG["google-vertex"]["protocol"] == "gemini"
    assert (
        BY_SLUG["google-vertex"]["base_url"]
        == "https://aiplatform.googleapis.com/v1/publishers/google"
    )
    assert BY_SLUG["fal"]["protocol"] == "fal"
    assert BY_SLUG["fal"]["base_url"] == "https://fal.run"
    assert BY_SLUG["huggingface"]["base_url"] == "https://router.huggingface.co/v1"
    assert "{CLOUDFLARE_ACCOUNT_ID}" in BY_SLUG["cloudflare-workers-ai"]["base_url"]
    others = set(BY_SLUG) - {"anthropic", "google-gemini", "google-vertex", "fal"}
    assert {BY_SLUG[s]["protocol"] for s in others} == {"openai"}


def test_openrouter_takes_cache_control_and_anthropic_prices_an_hours_cache_write():
    assert BY_SLUG["openrouter"]["cache_control"] is True
    claude = [o for m in MODELS for o in m["offerings"] if o["provider"] == "anthropic"]
    assert claude and all(
        _price(o["cache_write_1h"]) == 2 * _price(o["input"]) for o in claude
    )  # docs.claude.com: 1-hour writes are 2x the base input price


def test_the_parameter_quirks_the_docs_state_are_present():
    # console.groq.com/docs/openai and inference-docs.cerebras.ai/resources/openai: a 400.
    assert {"logprobs", "logit_bias", "top_logprobs"} <= set(BY_SLUG["groq"]["unsupported_params"])
    assert {"frequency_penalty", "presence_penalty", "logit_bias"} <= set(
        BY_SLUG["cerebras"]["unsupported_params"]
    )
    assert {"parallel_tool_calls", "service_tier"} <= set(BY_SLUG["cerebras"]["drop_params"])


# --- Models and offerings -------------------------------------------------------------------


def test_model_ids_are_unique_and_canonical():
    ids = [m["id"] for m in MODELS]

    assert len(ids) == len(set(ids))
    for model_id in ids:
        assert re.fullmatch(r"[a-z0-9][a-z0-9.-]*/[a-z0-9][a-z0-9._-]*", model_id), model_id


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m["id"])
def test_a_model_has_every_field(model):
    assert isinstance(model.get("name"), str) and model["name"]
    assert _kind(model) in KINDS
    assert isinstance(model.get("context_length", 0), int) and model.get("context_length", 0) >= 0
    if _kind(model) == "chat":
        assert model["context_length"] > 0
        assert isinstance(model.get("max_output_tokens"), int) and model["max_output_tokens"] > 0
    assert set(model.get("capabilities", [])) <= CAPABILITIES
    assert model.get("offerings"), "a model with no offering serves nothing"


@pytest.mark.parametrize(("model", "offering"), OFFERINGS, ids=OFFERING_IDS)
def test_an_offering_names_a_declared_provider(model, offering):
    assert offering.get("provider") in BY_SLUG, _where(model, offering)
    assert isinstance(offering.get("upstream_id"), str) and offering["upstream_id"]
    priority = offering.get("priority", 100)
    assert isinstance(priority, int) and not isinstance(priority, bool)
    assert isinstance(offering.get("enabled", True), bool)


@pytest.mark.parametrize(("model", "offering"), OFFERINGS, ids=OFFERING_IDS)
def test_an_offerings_prices_fit_its_kind(model, offering):
    kind, where = _kind(model), _where(model, offering)
    token_prices = ("input", "output", "cached_input", "cache_write", "cache_write_1h")

    for key in (*token_prices, "per_image"):
        if key in offering:
            _price(offering[key])
    if kind == "chat":
        assert "input" in offering and "output" in offering, where
        assert "per_image" not in offering, where
    elif kind == "embedding":
        assert "input" in offering, where
        assert offering.get("output", "0") == "0" or _price(offering["output"]) == 0, where
        assert "per_image" not in offering, where
    else:
        assert "per_image" in offering, where
        assert not set(token_prices) & set(offering), where
    if "cache_write_1h" in offering:  # an hour's write is never cheaper than five minutes'
        assert _price(offering["cache_write_1h"]) >= _price(offering.get("cache_write", "0"))
    assert isinstance(offering.get("cache_control", False), bool), where
    for key in ("size_multipliers", "quality_multipliers"):
        multipliers = offering.get(key, {})
        assert kind == "image" or not multipliers, where
        for name, factor in multipliers.items():
            assert isinstance(name, str) and name
            assert _price(factor) > 0, f"{where}: {key}[{name}]"
    for name in offering.get("size_multipliers", {}):
        # WxH, `auto` (the provider chooses), or `default` (what an absent size costs).
        assert re.fullmatch(r"[1-9][0-9]*x[1-9][0-9]*|auto|default", name), f"{where}: {name!r}"


@pytest.mark.parametrize(("model", "offering"), OFFERINGS, ids=OFFERING_IDS)
def test_an_offerings_default_params_are_well_formed(model, offering):
    defaults = offering.get("default_params", {})
    unless = offering.get("default_params_unless", [])

    assert isinstance(defaults, dict) and isinstance(unless, list)
    assert all(isinstance(k, str) for k in [*defaults, *unless])
    assert not unless or defaults, f"{_where(model, offering)}: an unless with no defaults"


def test_a_provider_serves_a_model_at_most_once():
    pairs = [(m["id"], o["provider"]) for m, o in OFFERINGS]

    assert len(pairs) == len(set(pairs))


def test_aliases_are_unique_and_never_another_models_id():
    seen: dict[str, str] = {}
    for model in MODELS:
        for alias in model.get("aliases", []):
            assert isinstance(alias, str) and alias, model["id"]
            assert alias not in seen, f"{alias!r} names {seen.get(alias)} and {model['id']}"
            assert alias not in BY_ID, f"alias {alias!r} of {model['id']} is a model id"
            seen[alias] = model["id"]


def test_the_catalog_has_embedding_and_image_models():
    kinds = [_kind(m) for m in MODELS]

    assert kinds.count("embedding") >= 2
    assert kinds.count("image") >= 3
    assert {"openai/text-embedding-3-small", "openai/text-embedding-3-large"} <= set(BY_ID)
    fal_ids = {o["upstream_id"] for m, o in OFFERINGS if o["provider"] == "fal"}
    assert {"fal-ai/flux/schnell", "fal-ai/flux/dev"} <= fal_ids


# --- Prefix routes --------------------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r["prefix"])
def test_a_prefix_route_is_well_formed(route):
    assert isinstance(route.get("prefix"), str) and route["prefix"].endswith("/")
    assert route.get("provider") in BY_SLUG
    _price(route["input"])
    _price(route["output"])


def test_the_mistral_route_bounds_every_listed_mistral_price_on_openrouter():
    (route,) = [r for r in ROUTES if r["prefix"] == "mistralai/"]
    listed = [
        o
        for m, o in OFFERINGS
        if m["id"].startswith("mistralai/") and o["provider"] == "openrouter"
    ]

    assert route["provider"] == "openrouter"
    assert len(listed) >= 3
    for offering in listed:
        assert _price(offering["input"]) <= _price(route["input"])
        assert _price(offering["output"]) <= _price(route["output"])


# --- Named quirks and the entries other tests rely on ---------------------------------------


def test_cerebras_qwen3_thinks_only_when_asked():
    qwen3 = [
        (m, o)
        for m, o in OFFERINGS
        if o["provider"] == "cerebras" and o["upstream_id"].startswith("qwen-3")
    ]
    reasoning = [(m, o) for m, o in qwen3 if "reasoning" in m.get("capabilities", [])]

    assert "qwen-3-32b" in {o["upstream_id"] for _, o in reasoning}
    for model, offering in reasoning:
        assert offering.get("default_params") == {"disable_reasoning": True}, model["id"]
        assert offering.get("default_params_unless") == ["reasoning_effort"], model["id"]


def test_deepseek_chat_names_resolve_to_v3_0324():
    model = BY_ID["deepseek/deepseek-chat-v3-0324"]
    upstream = {o["provider"]: o["upstream_id"] for o in model["offerings"]}

    assert {"deepseek-chat", "deepseek/deepseek-chat"} <= set(model["aliases"])
    assert upstream["openrouter"] == "deepseek/deepseek-chat-v3-0324"


def test_grok_2_names_resolve_to_grok_3():
    model = BY_ID["x-ai/grok-3"]
    upstream = {o["provider"]: o["upstream_id"] for o in model["offerings"]}
    grok_2 = {"grok-2", "grok-2-1212", "x-ai/grok-2", "x-ai/grok-2-1212"}
    grok_2 |= {"xai/grok-2", "xai/grok-2-1212"}

    assert grok_2 <= set(model["aliases"])
    assert upstream["xai"] == "grok-3"
    assert upstream["openrouter"] == "x-ai/grok-3"


def test_the_earlier_bundled_entries_are_kept():
    kept_aliases = {
        "openai/gpt-4o": "gpt-4o",
        "openai/gpt-4o-mini": "gpt-4o-mini",
        "openai/gpt-4.1": "gpt-4.1",
        "openai/gpt-4.1-mini": "gpt-4.1-mini",
        "openai/o4-mini": "o4-mini",
        "anthropic/claude-sonnet-4": "claude-sonnet-4",
        "meta-llama/llama-3.3-70b-instruct": "llama-3.3-70b",
        "meta-llama/llama-3.1-8b-instruct": "llama-3.1-8b",
        "deepseek/deepseek-chat-v3-0324": "deepseek-chat",
    }
    kept_ids = {"qwen/qwen-2.5-72b-instruct", "mistralai/mistral-large", "google/gemma-2-9b-it"}

    assert set(kept_aliases) | kept_ids <= set(BY_ID)
    for model_id, alias in kept_aliases.items():
        assert alias in BY_ID[model_id]["aliases"]
    (gpt_4o,) = [o for o in BY_ID["openai/gpt-4o"]["offerings"] if o["provider"] == "openai"]
    assert (gpt_4o["input"], gpt_4o["output"]) == ("2.50", "10.00")
    served = {o["provider"] for _, o in OFFERINGS}
    assert {"openai", "openrouter", "together", "groq"} <= served


def test_claude_and_gemini_are_served_first_party_and_through_openrouter():
    for model_id, first_party in [
        ("anthropic/claude-sonnet-4", {"anthropic"}),
        ("google/gemini-2.5-flash", {"google-gemini", "google-vertex"}),
    ]:
        providers = {o["provider"] for o in BY_ID[model_id]["offerings"]}
        assert first_party | {"openrouter"} <= providers, model_id
