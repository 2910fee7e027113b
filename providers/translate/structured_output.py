"""Structured output between OpenAI's `response_format` and Anthropic's `output_config.format`.

OpenAI chat → Anthropic: a JSON schema goes as `output_config.format` to a model that takes
it natively (Deployment.structured_outputs; Anthropic enforces the schema, so `strict` is
kept whether or not it was asked). Otherwise, and for JSON mode (`json_object`, which has no
schema), the answer is asked for as a call of one forced tool whose input schema is the
requested schema, and that call comes back to the client as the message's content: the
whole answer (providers.translate.anthropic_openai_answers) and the stream
(providers.translate.anthropic_openai_streams). A model without native support cannot be
held to the schema: the tool's schema guides it, as it does LiteLLM's and OpenRouter's.

Anthropic → OpenAI: `output_config.format` (or the beta's `output_format`) becomes a
`json_schema` response format, strict when the schema meets OpenAI's strict rules (every
object closed, every property required), else a guide the provider follows unenforced.
"""

from __future__ import annotations

from typing import Any

from core.errors import bad_request

JSON = dict[str, Any]

# The forced tool's name: reserved, so that a client's own tool is never taken for it.
JSON_TOOL = "json_output"
_JSON_TOOL_DESCRIPTION = (
    "Give your answer by calling this tool: its input is your whole answer, as JSON in the "
    "schema the user asked for."
)
ANY_OBJECT: JSON = {"type": "object"}


def json_format(body: JSON) -> tuple[str, JSON | None] | None:
    """The JSON answer a chat request asks for: ('json_schema', schema) or ('json_object',
    None); None for text."""
    fmt = body.get("response_format")
    if not isinstance(fmt, dict):
        return None
    kind = fmt.get("type")
    if kind == "json_object":
        return "json_object", None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        return "json_schema", schema if isinstance(schema, dict) else ANY_OBJECT
    return None


def uses_json_tool(body: JSON, structured_outputs: bool) -> bool:
    """Whether a chat request's JSON answer is asked of Anthropic through the forced tool."""
    wanted = json_format(body)
    return wanted is not None and (wanted[0] == "json_object" or not structured_outputs)


def format_to_anthropic(body: JSON, out: JSON, structured_outputs: bool) -> bool:
    """Adds a chat request's `response_format` to the Anthropic request `out`; returns
    whether it did so with the forced tool (then thinking, which Anthropic refuses beside a
    forced tool, is left out)."""
    wanted = json_format(body)
    if wanted is None:
        return False
    kind, schema = wanted
    if kind == "json_schema" and structured_outputs:
        config = out.setdefault("output_config", {})
        config["format"] = {"type": "json_schema", "schema": schema}
        return False
    if any((t.get("function") or {}).get("name") == JSON_TOOL for t in body.get("tools") or []):
        raise bad_request(
            f"The tool name '{JSON_TOOL}' is reserved when 'response_format' asks this "
            "model's provider for JSON; rename the tool.",
            param="tools",
        )
    description = _JSON_TOOL_DESCRIPTION
    spec = (body.get("response_format") or {}).get("json_schema") or {}
    if isinstance(spec, dict) and spec.get("description"):
        description += f" The answer: {spec['description']}"
    tool = {"name": JSON_TOOL, "description": description, "input_schema": schema or ANY_OBJECT}
    out["tools"] = [*out.get("tools", []), tool]
    choice = out.get("tool_choice") or {"type": "auto"}
    # The model must answer through a tool: the answer tool alone when the client's tools
    # are not to be called (none of them, or `none`); else any, its own or the answer.
    if len(out["tools"]) == 1 or choice["type"] == "none":
        out["tool_choice"] = {**choice, "type": "tool", "name": JSON_TOOL}
    elif choice["type"] == "auto":
        out["tool_choice"] = {**choice, "type": "any"}
    return True


def format_to_openai(body: JSON) -> JSON | None:
    """An Anthropic request's structured output as a chat `response_format`, if it asks one."""
    fmt = (body.get("output_config") or {}).get("format") or body.get("output_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        return None
    schema = fmt.get("schema") if isinstance(fmt.get("schema"), dict) else ANY_OBJECT
    spec: JSON = {"name": "output", "schema": schema}
    if strict_compatible(schema):
        spec["strict"] = True
    return {"type": "json_schema", "json_schema": spec}


def strict_compatible(schema: object) -> bool:
    """Whether OpenAI's strict mode takes `schema`: every object closed
    (`additionalProperties: false`) with all its properties required, throughout."""
    if not isinstance(schema, dict):
        return True
    properties = schema.get("properties")
    if schema.get("type") == "object" or isinstance(properties, dict):
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required") or []) != set(properties or {}):
            return False
    children: list[object] = list((properties or {}).values())
    for key in ("$defs", "definitions"):
        children += list((schema.get(key) or {}).values())
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        children += list(schema.get(key) or [])
    items = schema.get("items")
    children += items if isinstance(items, list) else [items]
    return all(strict_compatible(child) for child in children)
