"""Validation of a chat completion request: only what the gateway acts on; the rest of the
body is the provider's business and passes through unchanged."""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import bad_request


def _positive_int(body: dict[str, Any], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise bad_request(f"'{name}' must be a positive integer.", param=name)
    return value


def chat_body_parse(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request(
            "We could not parse the JSON body of your request. Send a JSON object."
        ) from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise bad_request("You must provide a model parameter.", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty array.", param="messages")
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise bad_request(
                f"'messages[{i}]' must be an object with a 'role'.",
                param=f"messages[{i}]",
            )
        content = message.get("content")
        if (
            content is not None
            and not isinstance(content, str)
            and not (
                isinstance(content, list)
                and all(isinstance(p, dict) and isinstance(p.get("type"), str) for p in content)
            )
        ):
            raise bad_request(
                f"'messages[{i}].content' must be a string or an array of typed parts.",
                param=f"messages[{i}].content",
            )
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise bad_request("'stream' must be a boolean.", param="stream")
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise bad_request(
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
            )
        if not isinstance(options, dict):
            raise bad_request("'stream_options' must be an object.", param="stream_options")
    _positive_int(body, "max_tokens")
    _positive_int(body, "max_completion_tokens")
    n = _positive_int(body, "n")
    if n is not None and n > 128:
        raise bad_request("'n' must be at most 128.", param="n")
    if body.get("response_format") is not None:
        _response_format_check(body["response_format"])
    return body


def _response_format_check(fmt: object) -> None:
    """Checked here since it is translated for providers of other protocols (a JSON schema
    to Anthropic's output format or an answer tool, to Gemini's response schema)."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind not in ("text", "json_object", "json_schema"):
        raise bad_request(
            "'response_format.type' must be 'text', 'json_object' or 'json_schema'.",
            param="response_format.type",
        )
    if kind != "json_schema":
        return
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not spec["name"]:
        raise bad_request(
            "'response_format.json_schema' must be an object with a 'name'.",
            param="response_format.json_schema",
        )
    if spec.get("schema") is not None and not isinstance(spec["schema"], dict):
        raise bad_request(
            "'response_format.json_schema.schema' must be an object.",
            param="response_format.json_schema.schema",
        )


# Prompt tokens an image given by URL may cost, at most, on the providers we serve (OpenAI's
# high detail ~1,100; Anthropic ~1,600 at its largest size; Gemini 258), and what a provider
# adds for tools of its own accord (Anthropic's tool-use system prompt, ~350).
URL_IMAGE_TOKENS = 2000
TOOLS_PROMPT_TOKENS = 500


def chat_referenced_tokens(body: dict[str, Any]) -> int:
    images = 0
    for message in body.get("messages") or []:
        content = message.get("content") if isinstance(message, dict) else None
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "image_url":
                url = str((part.get("image_url") or {}).get("url", ""))
                images += not url.startswith("data:")
    return images * URL_IMAGE_TOKENS + (TOOLS_PROMPT_TOKENS if body.get("tools") else 0)


def requested_output_tokens(body: dict[str, Any]) -> int | None:
    value = body.get("max_completion_tokens") or body.get("max_tokens")
    return int(value) if value else None
