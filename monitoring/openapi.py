"""The public discovery and uptime routes in the OpenAPI document (/api/schema): served by
monitoring.public_api outside DRF, so added by hand, as the inference routes are
(gateway.endpoints.openapi). The fuzzer (tests/security/test_openapi_fuzz.py) then sends
them every kind of parameter: none may answer a 5xx."""

from __future__ import annotations

from typing import Any

from monitoring.discovery import MODALITIES, SEARCH_SORTS
from monitoring.uptime import PERIODS

Schema = dict[str, Any]

SPANS = ["1h", "24h", "7d", "30d"]
ANSWER: Schema = {"type": "object", "properties": {"success": {"type": "boolean"}}}


def _query(name: str, schema: Schema) -> Schema:
    return {"name": name, "in": "query", "required": False, "schema": schema}


def _number(low: int, high: int) -> Schema:
    return {"type": "integer", "minimum": low, "maximum": high}


def _get(operation: str, summary: str, parameters: list[Schema], *, found: bool = False) -> Schema:
    errors = {"400": "A parameter out of its range, named in `param`."}
    if found:
        errors["404"] = "No such provider."
    return {
        "get": {
            "operationId": operation,
            "summary": summary,
            "tags": ["discovery"],
            "security": [{}],
            "parameters": parameters,
            "responses": {
                "200": {
                    "description": "The figures (cached 30 s).",
                    "content": {"application/json": {"schema": ANSWER}},
                },
                **{
                    code: {
                        "description": why,
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/OpenAIError"}
                            }
                        },
                    }
                    for code, why in errors.items()
                },
            },
        }
    }


PAGE = [_query("limit", _number(1, 100)), _query("offset", _number(0, 100_000))]
SPAN = _query("time_range", {"type": "string", "enum": SPANS})
PROVIDER = {"name": "provider", "in": "path", "required": True, "schema": {"type": "string"}}
USERS = {"type": "string", "enum": ["requests", "tokens", "users"]}

PATHS: dict[str, Schema] = {
    "/v1/models/trending": _get(
        "models_trending",
        "The most used models",
        [SPAN, _query("sort_by", USERS), *PAGE],
    ),
    "/v1/models/low-latency": _get(
        "models_low_latency",
        "Models by median latency",
        [SPAN, _query("min_requests", _number(1, 1_000_000)), *PAGE],
    ),
    "/v1/models/search": _get(
        "models_search",
        "Search the catalog",
        [
            _query("q", {"type": "string"}),
            _query("provider", {"type": "string"}),
            _query("modality", {"type": "string", "enum": list(MODALITIES)}),
            _query("min_context", _number(0, 100_000_000)),
            _query("max_context", _number(0, 100_000_000)),
            _query("min_price", {"type": "number", "minimum": 0}),
            _query("max_price", {"type": "number", "minimum": 0}),
            _query("sort_by", {"type": "string", "enum": list(SEARCH_SORTS)}),
            _query("order", {"type": "string", "enum": ["asc", "desc"]}),
            *PAGE,
        ],
    ),
    "/v1/provider": _get("providers_list", "The providers served", PAGE),
    "/v1/provider/{provider}/stats": _get(
        "provider_stats", "A provider's figures", [PROVIDER, SPAN], found=True
    ),
    "/v1/provider/{provider}/top-models": _get(
        "provider_top_models", "A provider's most used models", [PROVIDER, SPAN, *PAGE], found=True
    ),
    "/v1/gateways/summary": _get("gateways_summary", "The gateway at a glance", [SPAN]),
    "/health/providers/uptime": _get(
        "providers_uptime",
        "Uptime timelines per provider",
        [
            _query("period", {"type": "string", "enum": list(PERIODS)}),
            _query("provider", {"type": "string"}),
        ],
    ),
    "/health/models/uptime": _get(
        "models_uptime",
        "Uptime timelines per model at a provider",
        [
            _query("period", {"type": "string", "enum": list(PERIODS)}),
            _query("provider", {"type": "string"}),
            _query("model", {"type": "string"}),
            _query("limit", _number(1, 100)),
        ],
    ),
}


def add_public_routes(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """drf-spectacular postprocessing hook (settings.SPECTACULAR_SETTINGS)."""
    result.setdefault("paths", {}).update(PATHS)
    return result
