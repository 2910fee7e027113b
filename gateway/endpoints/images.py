"""POST /v1/images/generations (OpenAI's shape) on the shared request path, priced per image
(size and quality multipliers from the catalog), served by OpenAI-images-compatible
providers and by Fal."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import orjson

from billing.pricing import image_list_price, image_unit_price
from core.errors import bad_request
from gateway.http import Receive, Scope, Send
from gateway.pipeline.client_api import ClientApi, answer_json, send_priced
from gateway.pipeline.serve import serve
from gateway.relay.context import RelayContext
from gateway.relay.upstream_attempt import UpstreamRequest
from providers.catalog import CatalogModel, Deployment
from providers.protocols import wire

SIZE = re.compile(r"^(\d{2,5}x\d{2,5}|auto)$")
MAX_IMAGES = 10


def images_body_parse(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise bad_request("You must provide a model parameter.", param="model")
    if not isinstance(body.get("prompt"), str) or not body["prompt"].strip():
        raise bad_request("'prompt' must be a non-empty string.", param="prompt")
    n = body.get("n", 1)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_IMAGES:
        raise bad_request(f"'n' must be an integer from 1 to {MAX_IMAGES}.", param="n")
    size = body.get("size")
    if size is not None and (not isinstance(size, str) or not SIZE.match(size)):
        raise bad_request("'size' must look like '1024x1024' (or be 'auto').", param="size")
    if body.get("response_format", "url") not in ("url", "b64_json"):
        raise bad_request("'response_format' must be 'url' or 'b64_json'.", param="response_format")
    if body.get("quality") is not None and not isinstance(body["quality"], str):
        raise bad_request("'quality' must be a string.", param="quality")
    body["stream"] = False
    return body


def _unit_price(body: dict[str, Any], deployment: Deployment) -> Decimal:
    return image_unit_price(deployment, size=body.get("size"), quality=body.get("quality"))


class ImagesApi(ClientApi):
    endpoint = "images.generations"
    kind = "image"

    def parse(self, raw: bytes) -> dict[str, Any]:
        return images_body_parse(raw)

    def hold(self, body: dict[str, Any], body_bytes: int, model: CatalogModel) -> Decimal:
        n = int(body.get("n") or 1)
        return max(_unit_price(body, d) for d in model.deployments) * n

    def token_estimate(self, body: dict[str, Any], body_bytes: int, model: CatalogModel) -> int:
        return 0  # images are limited per request, not per token

    def build(
        self, body: dict[str, Any], deployment: Deployment, model: CatalogModel, scope: Scope
    ) -> UpstreamRequest | None:
        return wire(deployment).images_request(body, deployment)

    async def relay(self, ctx: RelayContext) -> None:
        body, answer, outcome = ctx.body, ctx.answer, ctx.outcome
        data = answer_json(answer)[0]
        b64 = body.get("response_format") == "b64_json"
        data = wire(answer.deployment).images_response(data, b64=b64)
        images = len(data.get("data") or [])
        # Billed per image delivered, never more than were asked for (and held).
        delivered = min(images, int(body.get("n") or 1))
        size, quality = body.get("size"), body.get("quality")
        at_provider = 0 if answer.deployment.byok else delivered
        outcome.charge(
            _unit_price(body, answer.deployment) * delivered,
            image_list_price(answer.deployment, size=size, quality=quality) * at_provider,
        )
        usage = data.get("usage")
        data["usage"] = {
            **(usage if isinstance(usage, dict) else {}),
            "images": delivered,
            "cost": float(outcome.cost),
        }
        await send_priced(ctx.send, orjson.dumps(data), outcome.cost, ctx.headers)


IMAGES = ImagesApi()


async def images_generations(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(IMAGES, scope, receive, send)
