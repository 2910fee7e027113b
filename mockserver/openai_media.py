"""Deterministic mocks of OpenAI's embeddings and image generation APIs.

``POST /v1/embeddings`` and ``POST /v1/images/generations``, with the chat mock's auth
(``Authorization: Bearer <key>``), headers and error bodies.

Embeddings: ``input`` is a string, a list of strings, a token array or a list of token
arrays (at most 2048 items, none empty). Each vector is a unit vector derived from a
SHAKE-256 hash of its input: the model's full width (``text-embedding-3-large`` 3072,
every other model 1536), cut to ``dimensions`` and renormalised, as OpenAI shortens
its embeddings; values are float32, so ``encoding_format`` "float" and "base64"
(little-endian float32, what the official SDK asks for by default) decode to the same
numbers. ``text-embedding-ada-002`` refuses ``dimensions``. ``prompt_tokens`` =
``total_tokens`` = words of each string / length of each token array, summed.

Images: ``prompt`` is required, ``n`` 1-10 (dall-e-3: 1), ``size`` and ``quality`` are
checked against the model's documented values (other models take any WxH).
``response_format`` "url" (dall-e default) gives ``<mock>/files/<name>.png``, which this
mock serves; "b64_json" the PNG itself; GPT image models always answer b64_json, refuse
``response_format`` and report ``usage`` (input: prompt words; output: OpenAI's
published per-image token counts for the size and quality). dall-e-3 sets
``revised_prompt`` to the prompt.

Directive keys (an input string / the prompt ``!mock {...}``): status, retry_after,
message, delay, prompt_tokens (embeddings).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import math
import struct
import time
from typing import Any

import orjson

from mockserver.common import (
    ASGIApp,
    DirectiveError,
    DirectiveTypes,
    Receive,
    Scope,
    Send,
    directive_in,
    read_body,
    words,
)
from mockserver.files import colour_of, file_url, png
from mockserver.openai import BadRequest, auth_error, error_body, fault_body, send_json

_EMBEDDING_DIRECTIVES: DirectiveTypes = {
    "status": (int,),
    "retry_after": (int,),
    "message": (str,),
    "delay": (int, float),
    "prompt_tokens": (int,),
}
_IMAGE_DIRECTIVES: DirectiveTypes = {
    "status": (int,),
    "retry_after": (int,),
    "message": (str,),
    "delay": (int, float),
}
_INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
_MAX_INPUTS = 2048
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


def _parse(raw: bytes, default_model: str | None = None) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "  # noqa: E501  (OpenAI's exact wording)
            "HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest("Invalid body: expected a JSON object.")
    if default_model is not None:
        body.setdefault("model", default_model)
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise BadRequest(
            "you must provide a model parameter", "model", "missing_required_parameter"
        )
    return body


def _directive(text: str, types: DirectiveTypes, param: str) -> dict[str, Any]:
    try:
        return directive_in(text, types)
    except DirectiveError as exc:
        raise BadRequest(str(exc), param) from None


async def _fault(send: Send, d: dict[str, Any], started: float) -> bool:
    """Applies ``delay`` and ``status``; True when the answer was an error."""
    if "delay" in d:
        await asyncio.sleep(d["delay"])
    status = d.get("status")
    if status is None:
        return False
    extra = [(b"retry-after", str(d["retry_after"]).encode())] if "retry_after" in d else []
    await send_json(send, status, fault_body(status, d.get("message")), started, extra)
    return True


# ---------------------------------------------------------------- embeddings


def _is_tokens(value: object) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in value)
    )


def _inputs(value: object) -> list[str | list[int]]:
    """The inputs as strings and token arrays; anything else is OpenAI's '$.input' 400."""
    if value is None:
        raise BadRequest(
            "Missing required parameter: 'input'.", "input", "missing_required_parameter"
        )
    if isinstance(value, str):
        items: list[object] = [value]
    elif _is_tokens(value):
        items = [value]
    elif isinstance(value, list):
        items = list(value)
    else:
        raise BadRequest(_INVALID_INPUT)
    if not items or len(items) > _MAX_INPUTS:
        raise BadRequest(_INVALID_INPUT)
    out: list[str | list[int]] = []
    for item in items:
        if (isinstance(item, str) and item) or (isinstance(item, list) and _is_tokens(item)):
            out.append(item)
        else:
            raise BadRequest(_INVALID_INPUT)
    return out


def _vector(item: str | list[int], width: int, dimensions: int) -> list[float]:
    key = item.encode() if isinstance(item, str) else b"tokens:" + ",".join(map(str, item)).encode()
    raw = hashlib.shake_256(key).digest(2 * width)
    values = [(v - 32767.5) / 32767.5 for v in struct.unpack(f"<{width}H", raw)][:dimensions]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    # Through float32, as the API's vectors are, so both encodings agree exactly.
    packed = struct.pack(f"<{dimensions}f", *(v / norm for v in values))
    return list(struct.unpack(f"<{dimensions}f", packed))


async def embeddings(raw: bytes, send: Send, started: float) -> None:
    body = _parse(raw)
    model: str = body["model"]
    items = _inputs(body.get("input"))
    texts = [i for i in items if isinstance(i, str)]
    d = _directive(
        next((t for t in texts if t.startswith("!mock ")), ""), _EMBEDDING_DIRECTIVES, "input"
    )
    encoding = body.get("encoding_format", "float")
    if encoding not in ("float", "base64"):
        raise BadRequest(
            f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
            "encoding_format",
            "invalid_value",
        )
    width = 3072 if model == "text-embedding-3-large" else 1536
    dimensions = body.get("dimensions")
    if dimensions is None:
        dimensions = width
    elif model == "text-embedding-ada-002":
        raise BadRequest("This model does not support specifying dimensions.", None, None)
    elif not isinstance(dimensions, int) or isinstance(dimensions, bool) or dimensions < 1:
        raise BadRequest(
            f"Invalid 'dimensions': integer below minimum value. Expected a value >= 1, but got {dimensions} instead.",  # noqa: E501
            "dimensions",
            "integer_below_min_value",
        )
    elif dimensions > width:
        raise BadRequest(
            f"Invalid 'dimensions': integer above maximum value. Expected a value <= {width}, but got {dimensions} instead.",  # noqa: E501
            "dimensions",
            "integer_above_max_value",
        )
    if await _fault(send, d, started):
        return
    data = []
    for index, item in enumerate(items):
        vector = _vector(item, width, dimensions)
        embedding: object = vector
        if encoding == "base64":
            embedding = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    tokens = d.get("prompt_tokens", sum(words(i) if isinstance(i, str) else len(i) for i in items))
    payload = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    await send_json(send, 200, payload, started)


# -------------------------------------------------------------------- images


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
    body = _parse(raw, default_model="dall-e-2")  # the documented default
    model: str = body["model"]
    family = _family(model)
    prompt = body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise BadRequest(
            "Missing required parameter: 'prompt'.", "prompt", "missing_required_parameter"
        )
    d = _directive(prompt, _IMAGE_DIRECTIVES, "prompt")
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
    if await _fault(send, d, started):
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


# ------------------------------------------------------------------------ app


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app for the two routes, behind the chat mock's Bearer auth."""
    expected = api_key.encode() if api_key else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        if scope["method"] != "POST":
            payload = error_body(
                f"Invalid method for URL ({scope['method']} {path})", "invalid_request_error"
            )
            await send_json(send, 405, payload, started, [(b"allow", b"POST")])
            return
        denied = auth_error(scope["headers"], expected)
        if denied is not None:
            payload = error_body(denied, "invalid_request_error", None, "invalid_api_key")
            await send_json(send, 401, payload, started)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        try:
            if path == "/v1/images/generations":
                await images(scope, raw, send, started)
            else:
                await embeddings(raw, send, started)
        except BadRequest as exc:
            payload = error_body(exc.message, "invalid_request_error", exc.param, exc.code)
            await send_json(send, 400, payload, started)

    return app
