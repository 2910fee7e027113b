"""``POST /v1/images/generations``: ``n``, ``size``, ``quality`` and ``response_format``
checked against each model family's documented values, the single-colour PNGs (served
URLs or ``b64_json``) and, for GPT image models, ``usage`` from OpenAI's published
per-image token counts. Its tables of sizes, qualities and tokens are why it is apart
from the embeddings."""

from __future__ import annotations

import base64
import time
from typing import Any

from mockserver.common import DirectiveTypes, Scope, Send, words
from mockserver.files import colour_of, file_url, png
from mockserver.openai import BadRequest, send_json
from mockserver.openai_media.request import directive, fault, parse

_IMAGE_DIRECTIVES: DirectiveTypes = {
    "status": (int,),
    "retry_after": (int,),
    "message": (str,),
    "delay": (int, float),
}
# size -> allowed values per model family, as the image reference lists them.
_SIZES = {
    "dall-e-2": ("256x256", "512x512", "1024x1024"),
    "dall-e-3": ("1024x1024", "1792x1024", "1024x1792"),
    "gpt-image": ("1024x1024", "1536x1024", "1024x1536", "auto"),
}
_QUALITIES = {
    "dall-e-2": ("standard",),
    "dall-e-3": ("standard", "hd"),
    "gpt-image": ("low", "medium", "high", "auto"),
}
# Output tokens per GPT image, by quality, for square / non-square sizes (OpenAI's
# published figures for 1024x1024 and 1024x1536 / 1536x1024).
_IMAGE_TOKENS = {"low": (272, 408), "medium": (1056, 1584), "high": (4160, 6240)}


def _quoted(values: tuple[str, ...]) -> str:
    quoted = [f"'{v}'" for v in values]
    return (
        ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 2 else " and ".join(quoted)
    )


def _family(model: str) -> str | None:
    if model.startswith("gpt-image"):
        return "gpt-image"
    return model if model in _SIZES else None


def _check_choice(value: str, allowed: tuple[str, ...] | None, param: str) -> None:
    if allowed is not None and value not in allowed:
        raise BadRequest(
            f"Invalid value: '{value}'. Supported values are: {_quoted(allowed)}.",
            param,
            "invalid_value",
        )


def _dimensions(size: str) -> tuple[int, int]:
    if size == "auto":
        return 1024, 1024
    w, _, h = size.partition("x")
    if not (w.isdigit() and h.isdigit() and 1 <= int(w) <= 4096 and 1 <= int(h) <= 4096):
        raise BadRequest(
            f"Invalid value: '{size}'. Expected a size such as '1024x1024'.",
            "size",
            "invalid_value",
        )
    return int(w), int(h)


async def images(scope: Scope, raw: bytes, send: Send, started: float) -> None:
    body = parse(raw, default_model="dall-e-2")  # the documented default
    model: str = body["model"]
    family = _family(model)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest(
            "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
        )
    d = directive(prompt, _IMAGE_DIRECTIVES, "prompt")
    n = body.get("n", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise BadRequest(
            f"Invalid 'n': expected an integer between 1 and 10, but got {n} instead.",
            "n",
            "invalid_value",
        )
    if family == "dall-e-3" and n != 1:
        raise BadRequest("You must provide n=1 for this model.", "n", None)
    size = body.get("size") or ("auto" if family == "gpt-image" else "1024x1024")
    _check_choice(size, _SIZES.get(family or ""), "size")
    width, height = _dimensions(size)
    default_quality = {"gpt-image": "auto", None: "standard"}.get(family, "standard")
    quality = body.get("quality") or default_quality
    _check_choice(quality, _QUALITIES.get(family or ""), "quality")
    response_format = body.get("response_format")
    if family == "gpt-image" and response_format is not None:
        raise BadRequest(
            "Unknown parameter: 'response_format'.", "response_format", "unknown_parameter"
        )
    response_format = response_format or ("b64_json" if family == "gpt-image" else "url")
    _check_choice(response_format, ("url", "b64_json"), "response_format")
    if await fault(send, d, started):
        return

    data: list[dict[str, Any]] = []
    for i in range(n):
        colour = colour_of(model, prompt, i)
        image: dict[str, Any] = {}
        if response_format == "url":
            image["url"] = file_url(scope, width, height, colour)
        else:
            image["b64_json"] = base64.b64encode(png(width, height, colour)).decode()
        if family == "dall-e-3":
            image["revised_prompt"] = prompt
        data.append(image)
    payload: dict[str, Any] = {"created": int(time.time()), "data": data}
    if family == "gpt-image":
        shown = "medium" if quality == "auto" else quality
        per_image = _IMAGE_TOKENS[shown][0 if width == height else 1]
        prompt_tokens = words(prompt)
        payload.update(
            background="opaque",
            output_format="png",
            quality=shown,
            size=f"{width}x{height}",
            usage={
                "input_tokens": prompt_tokens,
                "input_tokens_details": {"text_tokens": prompt_tokens, "image_tokens": 0},
                "output_tokens": per_image * n,
                "total_tokens": prompt_tokens + per_image * n,
            },
        )
    await send_json(send, 200, payload, started)
