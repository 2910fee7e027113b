"""The deterministic result of an input: ``image_size`` presets and custom sizes checked,
``num_images`` and ``seed``, one single-colour PNG per image (a served URL or a ``data:``
URI) and ``timings``. Shared by the synchronous call and the queue, which stores it for a
job when it is submitted."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from mockserver.common import Scope
from mockserver.fal.errors import FalError, validation
from mockserver.fal.request import Input
from mockserver.files import MAX_SIDE, colour_of, file_url, png

IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
SECONDS_PER_IMAGE = 0.1


def _size(value: object) -> tuple[int, int]:
    if value is None:
        return IMAGE_SIZES["landscape_4_3"]
    if isinstance(value, str):
        if value not in IMAGE_SIZES:
            presets = ", ".join(f"'{p}'" for p in IMAGE_SIZES)
            raise validation("image_size", f"Input should be {presets}", "literal_error")
        return IMAGE_SIZES[value]
    if isinstance(value, dict):
        width, height = value.get("width"), value.get("height")
        for name, side in (("width", width), ("height", height)):
            if not isinstance(side, int) or isinstance(side, bool) or not 1 <= side <= MAX_SIDE:
                raise FalError(
                    422,
                    [
                        {
                            "loc": ["body", "image_size", name],
                            "msg": f"Input should be less than or equal to {MAX_SIDE}",
                            "type": "less_than_equal",
                        }
                    ],
                )
        assert isinstance(width, int) and isinstance(height, int)
        return width, height
    raise validation("image_size", "Input should be a valid dictionary or string", "model_type")


def result_of(scope: Scope, inp: Input) -> dict[str, Any]:
    body = inp.body
    width, height = _size(body.get("image_size"))
    n = body.get("num_images", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 4:
        raise validation("num_images", "Input should be less than or equal to 4", "less_than_equal")
    seed = body.get("seed")
    if seed is None:
        seed = int.from_bytes(hashlib.sha256(inp.prompt.encode()).digest()[:4], "big") >> 1
    elif not isinstance(seed, int) or isinstance(seed, bool):
        raise validation("seed", "Input should be a valid integer", "int_type")
    images = []
    for i in range(n):
        colour = colour_of(inp.prompt, seed, i)
        if body.get("sync_mode") is True:
            url = "data:image/png;base64," + base64.b64encode(png(width, height, colour)).decode()
        else:
            url = file_url(scope, width, height, colour)
        images.append({"url": url, "width": width, "height": height, "content_type": "image/png"})
    return {
        "images": images,
        "timings": {"inference": round(SECONDS_PER_IMAGE * n, 3)},
        "seed": seed,
        "has_nsfw_concepts": [inp.directive.get("nsfw", False)] * n,
        "prompt": inp.prompt,
    }
