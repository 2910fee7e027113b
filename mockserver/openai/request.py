"""Reading a chat request: the body checked with OpenAI's wording and error codes, the text
of a message, and the blocks a ``cache_control`` mark can cache (``prompt_cache``)."""

from __future__ import annotations

import re
from typing import Any

import orjson

from mockserver.openai.errors import BadRequest
from mockserver.prompt_cache import PrefixWalk


def text_of(content: object) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            p["text"]
            for p in content
            if isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
        )
    return ""


# What other APIs take and OpenAI's refuses (its API answers any unknown argument so; the
# mock stands for OpenAI-compatible providers too, which take extensions, so only these).
UNRECOGNIZED = ("top_k",)
NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")


def validate(raw: bytes) -> tuple[dict[str, Any], str, list[Any], int]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise BadRequest(
            "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "  # noqa: E501  (OpenAI's exact wording)
            "HTTP library correctly. The OpenAI API expects a JSON payload.)"
        ) from None
    if not isinstance(body, dict):
        raise BadRequest("Invalid body: expected a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest(
            "you must provide a model parameter", "model", "missing_required_parameter"
        )
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest(
            "Missing required parameter: 'messages'.",
            "messages",
            "missing_required_parameter",
        )
    if not messages:
        raise BadRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
            "empty_array",
        )
    for i, msg in enumerate(messages):
        if not isinstance(msg, dict):
            raise BadRequest(
                f"Invalid type for 'messages[{i}]': expected an object.",
                f"messages[{i}]",
                "invalid_type",
            )
        if not isinstance(msg.get("role"), str):
            raise BadRequest(
                f"Missing required parameter: 'messages[{i}].role'.",
                f"messages[{i}].role",
                "missing_required_parameter",
            )
    n = body.get("n")
    if n is None:
        n = 1
    elif not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 128:
        raise BadRequest(
            "Invalid 'n': expected an integer between 1 and 128.", "n", "invalid_value"
        )
    for name in UNRECOGNIZED:
        if name in body:
            raise BadRequest(f"Unrecognized request argument supplied: {name}")
    if body.get("response_format") is not None:
        response_format_check(body["response_format"], messages)
    return body, model, messages, n


def response_format_check(fmt: object, messages: list[Any]) -> None:
    """OpenAI's checks of `response_format` (structured outputs and JSON mode)."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise BadRequest(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object' and "
            "'json_schema'.",
            "response_format.type",
            "invalid_value",
        )
    assert isinstance(fmt, dict)
    if kind == "json_object" and "json" not in orjson.dumps(messages).decode().lower():
        raise BadRequest(
            "'messages' must contain the word 'json' in some form, to use 'response_format' "
            "of type 'json_object'.",
            "messages",
            "invalid_request_error",
        )
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        if not isinstance(spec, dict):
            raise BadRequest(
                "Missing required parameter: 'response_format.json_schema'.",
                "response_format.json_schema",
                "missing_required_parameter",
            )
        name = spec.get("name")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise BadRequest(
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                "response_format.json_schema.name",
                "invalid_value",
            )
        if spec.get("schema") is not None and not isinstance(spec["schema"], dict):
            raise BadRequest(
                "Invalid type for 'response_format.json_schema.schema': expected an object.",
                "response_format.json_schema.schema",
                "invalid_type",
            )


def cache_walk(body: dict[str, Any], model: str) -> PrefixWalk | None:
    """The prompt's blocks (tools, then each message's content parts), each with its tokens
    under the counting rule of the package docstring; None when no part or tool is marked."""
    walk = PrefixWalk(model)
    for tool in body.get("tools") or []:
        walk.block(tool, 0)
    for msg in body["messages"]:
        content = msg.get("content")
        walk.overhead({k: v for k, v in msg.items() if k != "content"}, 3)
        if isinstance(content, str):
            walk.block({"type": "text", "text": content}, len(content.split()))
        elif isinstance(content, list):
            for part in content:
                walk.block(part, len(text_of([part]).split()))
    return walk if walk.marks else None
