"""GET /v1/models and /v1/models/{id}: the served catalog in OpenAI's list/object shape,
with Gatewayz's extras (context length, capabilities, prices) beside the standard fields."""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import not_found
from gateway.http import JSON_HEADERS, Send, send_bytes
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
        "pricing": {
            "unit": "credits per 1M tokens",
            "input": str(cheapest.input_price),
            "output": str(cheapest.output_price),
            "cached_input": str(cheapest.cached_input_price),
        },
    }


async def models_list(send: Send) -> None:
    catalog = await catalog_holder.get()
    data = [_model_object(m) for m in sorted(catalog.models.values(), key=lambda m: m.id)]
    await send_bytes(send, 200, orjson.dumps({"object": "list", "data": data}), JSON_HEADERS)


async def model_retrieve(send: Send, model_id: str) -> None:
    model = (await catalog_holder.get()).resolve(model_id)
    if model is None:
        raise not_found(f"The model '{model_id}' does not exist.", code="model_not_found")
    await send_bytes(send, 200, orjson.dumps(_model_object(model)), JSON_HEADERS)
