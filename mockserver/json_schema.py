"""A JSON value that a JSON schema accepts, made deterministically from the schema: what the
mock providers answer when a request asks for structured output (OpenAI's `response_format`,
Anthropic's `output_config.format`, Gemini's `responseJsonSchema`) or forces a tool, so that
tests can check the parsed object and not just a 200.

Every property of an object is filled in (required or not), strings are the property's
name unless the schema constrains them, numbers their minimum or 0, arrays one item (or
`minItems`). `$ref` into `$defs`/`definitions` is followed; `anyOf`/`oneOf` take the first
branch. Enough of JSON Schema for what SDKs generate from pydantic models and zod schemas.
"""

from __future__ import annotations

from typing import Any

import orjson

FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00",
    "email": "someone@example.com",
    "uri": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
}
MAX_DEPTH = 12  # a recursive schema (a tree of nodes) stops here, with its minimal value


def instance_of(schema: object, root: object = None, name: str = "value", depth: int = 0) -> Any:
    """A value `schema` accepts (`root`: the document its `$ref`s point into)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > MAX_DEPTH:
        return None if depth > MAX_DEPTH else {}
    if "$ref" in schema:
        return instance_of(_resolve(root, str(schema["$ref"])), root, name, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        branches = [
            b
            for b in schema.get(key) or []
            if not (isinstance(b, dict) and b.get("type") == "null")
        ]
        if branches:
            return instance_of(branches[0], root, name, depth + 1)
    if schema.get("allOf"):
        merged: dict[str, Any] = {}
        for part in schema["allOf"]:
            resolved = _resolve(root, part["$ref"]) if "$ref" in part else part
            merged.update(resolved if isinstance(resolved, dict) else {})
        return instance_of(merged, root, name, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, str):
        kind = kind.lower()  # Gemini's responseSchema spells them OBJECT, STRING...
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "string"
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: instance_of(value, root, key, depth + 1) for key, value in properties.items()}
    if kind == "array":
        count = max(int(schema.get("minItems") or 1), 1)
        if schema.get("maxItems") == 0:
            count = 0
        prefix = schema.get("prefixItems")
        if prefix:
            return [instance_of(item, root, name, depth + 1) for item in prefix]
        return [instance_of(schema.get("items") or {}, root, name, depth + 1)] * count
    if kind in ("integer", "number"):
        low: float = schema.get("minimum", schema.get("exclusiveMinimum")) or 0
        value = low + 1 if "exclusiveMinimum" in schema and "minimum" not in schema else low
        return int(value) if kind == "integer" else value
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return _string(schema, name)


def json_reply(schema: object, said: str) -> str:
    """A structured answer: an instance of `schema`, or without one (JSON mode) an object
    holding what the model would have said."""
    return orjson.dumps(instance_of(schema) if schema is not None else {"reply": said}).decode()


def _string(schema: dict[str, Any], name: str) -> str:
    text = FORMATS.get(str(schema.get("format")), name)
    low = int(schema.get("minLength") or 0)
    high = schema.get("maxLength")
    if len(text) < low:
        text += "x" * (low - len(text))
    if isinstance(high, int):
        text = text[:high]
    return text


def _resolve(root: object, ref: str) -> object:
    """A local `$ref` (`#/$defs/Name`, `#/definitions/Name`, `#`)."""
    node = root
    for part in ref.removeprefix("#").strip("/").split("/"):
        if part and isinstance(node, dict):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {})
    return node
