"""GET /v1/models and /v1/models/{id}: the served catalog in OpenAI's list/object shape,
with Gatewayz's extras (context length, capabilities, prices) beside the standard fields;
in Anthropic's shape, paginated as Anthropic's is, to a client that sends
`anthropic-version` (Anthropic's SDKs always do)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import orjson

from core.errors import bad_request, not_found
from gateway.http import JSON_HEADERS, Scope, Send, header, send_bytes
from providers.catalog import CatalogModel, catalog_holder


def _model_object(model: CatalogModel) -> dict[str, Any]:
    cheapest = min(model.deployments, key=lambda d: (d.input_price, d.output_price))
    return {
        "id": model.id,
        "object": "model",
        "created": model.created,
        "owned_by": model.id.split("/", 1)[0],
        "name": model.name,
        "context_length": model.context_length,
        "max_output_tokens": model.max_output_tokens,
        "capabilities": list(model.capabilities),
        "providers": [d.provider for d in model.deployments],
        "pricing": {  # what the customer pays: the provider's price times the markup
            "unit": "credits per 1M tokens",
            "input": str(cheapest.input_price * cheapest.markup),
            "output": str(cheapest.output_price * cheapest.markup),
            "cached_input": str(cheapest.cached_input_price * cheapest.markup),
        },
    }


def anthropic_client(scope: Scope) -> bool:
    return header(scope, b"anthropic-version") is not None


def _anthropic_model(model: CatalogModel) -> dict[str, Any]:
    created = datetime.fromtimestamp(model.created, UTC).isoformat().replace("+00:00", "Z")
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.name or model.id,
        "created_at": created,
    }


def _anthropic_page(models: list[CatalogModel], query: bytes) -> dict[str, Any]:
    """Anthropic's page: `limit` (1-1000, 20 by default) models after `after_id` or before
    `before_id`, with `has_more`, `first_id` and `last_id`."""
    params = {k: v[-1] for k, v in parse_qs(query.decode(errors="replace")).items()}
    try:
        limit = int(params.get("limit", 20))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        raise bad_request("limit: Input should be an integer from 1 to 1000", param="limit")
    ids = [m.id for m in models]
    start, end = 0, len(models)
    if "after_id" in params:
        start = ids.index(params["after_id"]) + 1 if params["after_id"] in ids else end
    if "before_id" in params:
        end = ids.index(params["before_id"]) if params["before_id"] in ids else 0
        start = max(start, end - limit)
    page = models[start : min(end, start + limit)]
    more = start + len(page) < end if "before_id" not in params else start > 0
    return {
        "data": [_anthropic_model(m) for m in page],
        "has_more": more,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
    }


async def models_list(scope: Scope, send: Send) -> None:
    catalog = await catalog_holder.get()
    models = sorted(catalog.models.values(), key=lambda m: m.id)
    if anthropic_client(scope):
        page = _anthropic_page(models, scope.get("query_string", b""))
        await send_bytes(send, 200, orjson.dumps(page), JSON_HEADERS)
        return
    data = [_model_object(m) for m in models]
    await send_bytes(send, 200, orjson.dumps({"object": "list", "data": data}), JSON_HEADERS)


async def model_retrieve(scope: Scope, send: Send, model_id: str) -> None:
    model = (await catalog_holder.get()).resolve(model_id)
    if model is None:
        raise not_found(f"The model '{model_id}' does not exist.", code="model_not_found")
    shape = _anthropic_model if anthropic_client(scope) else _model_object
    await send_bytes(send, 200, orjson.dumps(shape(model)), JSON_HEADERS)
