"""``POST /v1/embeddings``: ``input`` checked (strings and token arrays, OpenAI's '$.input'
400 otherwise), ``dimensions`` and ``encoding_format`` checked per model, and the
deterministic unit vectors hashed from each input, float32 so "float" and "base64" agree.
It is apart from images, which share only the parsing and faults of ``request``."""

from __future__ import annotations

import base64
import hashlib
import math
import struct

from mockserver.common import DirectiveTypes, Send, words
from mockserver.openai import BadRequest, send_json
from mockserver.openai_media.request import directive, fault, parse

_EMBEDDING_DIRECTIVES: DirectiveTypes = {
    "status": (int,),
    "retry_after": (int,),
    "message": (str,),
    "delay": (int, float),
    "prompt_tokens": (int,),
}
_INVALID_INPUT = "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference."
_MAX_INPUTS = 2048


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
    body = parse(raw)
    model: str = body["model"]
    items = _inputs(body.get("input"))
    texts = [i for i in items if isinstance(i, str)]
    d = directive(
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
    if await fault(send, d, started):
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
