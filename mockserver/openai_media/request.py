"""What both endpoints do first with a body: parse it with OpenAI's wording (a JSON object
with a ``model``), read the ``!mock`` directive, and answer the directive's fault
(``delay``, ``status``). It stands apart because embeddings and images share it and each
endpoint's own checks come after it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from mockserver.common import DirectiveError, DirectiveTypes, Send, directive_in
from mockserver.openai import BadRequest, fault_body, send_json


def parse(raw: bytes, default_model: str | None = None) -> dict[str, Any]:
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


def directive(text: str, types: DirectiveTypes, param: str) -> dict[str, Any]:
    try:
        return directive_in(text, types)
    except DirectiveError as exc:
        raise BadRequest(str(exc), param) from None


async def fault(send: Send, d: dict[str, Any], started: float) -> bool:
    """Applies ``delay`` and ``status``; True when the answer was an error."""
    if "delay" in d:
        await asyncio.sleep(d["delay"])
    status = d.get("status")
    if status is None:
        return False
    extra = [(b"retry-after", str(d["retry_after"]).encode())] if "retry_after" in d else []
    await send_json(send, status, fault_body(status, d.get("message")), started, extra)
    return True
