"""A request body read as Fal reads a model's input: JSON, an object, a string ``prompt``
(a 422 otherwise), and the ``!mock`` directive in it (a 400 if malformed), parsed into
``Input``. It is apart from the generation because the queue takes any such input and lets
the model reject the rest when the job runs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from mockserver.common import DirectiveError, DirectiveTypes, directive_in
from mockserver.fal.errors import FalError, validation

_DIRECTIVE_TYPES: DirectiveTypes = {
    "status": (int,),
    "retry_after": (int,),
    "message": (str,),
    "delay": (int, float),
    "in_queue": (int,),
    "in_progress": (int,),
    "job_status": (int,),
    "nsfw": (bool,),
}


@dataclass
class Input:
    body: dict[str, Any]
    prompt: str
    directive: dict[str, Any]


def parse_input(raw: bytes) -> Input:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FalError(
            422, [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]
        ) from None
    if not isinstance(body, dict):
        raise validation("body", "Input should be a valid dictionary", "dict_type")
    prompt = body.get("prompt")
    if prompt is None:
        raise validation("prompt", "Field required", "missing")
    if not isinstance(prompt, str):
        raise validation("prompt", "Input should be a valid string", "string_type")
    try:
        directive = directive_in(prompt, _DIRECTIVE_TYPES)
    except DirectiveError as exc:
        raise FalError(400, str(exc)) from None
    return Input(body, prompt, directive)
