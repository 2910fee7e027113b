"""Fal's model API (synchronous, fal.run) for image generation: OpenAI's images request in,
OpenAI's images response out."""

from __future__ import annotations

import time
from typing import Any

import orjson

from providers.deployments import Deployment
from providers.protocols.base import WireProtocol
from providers.protocols.common import auth_headers


def images_request(
    body: dict[str, Any], deployment: Deployment
) -> tuple[str, dict[str, str], bytes]:
    upstream: dict[str, Any] = {"prompt": body["prompt"], "num_images": int(body.get("n") or 1)}
    size = body.get("size")
    if size and "x" in size:
        width, _, height = size.partition("x")
        upstream["image_size"] = {"width": int(width), "height": int(height)}
    if body.get("response_format") == "b64_json":
        upstream["sync_mode"] = True  # images come back inline as data: URIs
    if body.get("seed") is not None:
        upstream["seed"] = body["seed"]
    url = f"{deployment.base_url}/{deployment.upstream_model_id}"
    return url, auth_headers(deployment), orjson.dumps(upstream)


def images_response(data: dict[str, Any], *, b64: bool) -> dict[str, Any]:
    items = []
    for image in data.get("images") or []:
        url = str(image.get("url", ""))
        if b64 and url.startswith("data:"):
            items.append({"b64_json": url.partition(",")[2]})
        else:
            items.append({"url": url})
    return {"created": int(time.time()), "data": items}


class FalProtocol(WireProtocol):
    """Images only; no free endpoint to probe: its health comes from traffic alone."""

    name = "fal"
    default_auth = "key"

    images_request = staticmethod(images_request)
    images_response = staticmethod(images_response)


PROTOCOL = FalProtocol()
