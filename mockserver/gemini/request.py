"""A request body checked as the API checks it (field names in either spelling, contents and
parts, generationConfig ranges, tools and toolConfig) and parsed into ``Request``, so a bad
request fails before any answer is made."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from mockserver.common import CHAT_DIRECTIVES, DirectiveError, DirectiveTypes, directive_in, words
from mockserver.gemini.errors import invalid
from mockserver.gemini.schema import (
    CONFIG_FIELDS,
    MODES,
    PART_DATA,
    REQUEST_FIELDS,
    THINKING_FIELDS,
)

_DIRECTIVE_TYPES: DirectiveTypes = {
    **CHAT_DIRECTIVES,
    "thinking": (str,),
    "safety_block": (str,),
}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(w[:1].upper() + w[1:] for w in rest)


def _fields(obj: object, known: frozenset[str], where: str | None) -> dict[str, Any]:
    """The object's fields keyed by their camelCase name; unknown names are a 400
    worded as Google's JSON parser words it."""
    if not isinstance(obj, dict):
        at = f" at '{where}'" if where else ""
        raise invalid(f"Invalid JSON payload received. Expected an object{at}.", where)
    out: dict[str, Any] = {}
    for key, value in obj.items():
        name = _camel(key) if "_" in key else key
        if name not in known:
            at = f" at '{where}'" if where else ""
            msg = f'Invalid JSON payload received. Unknown name "{key}"{at}: Cannot find field.'
            raise invalid(msg, where or key)
        out[name] = value
    return out


@dataclass
class Request:
    body: dict[str, Any]
    model: str
    vertex: bool
    prompt_tokens: int
    last_user: str
    n: int
    max_tokens: int | None
    stop_sequences: list[str]
    thinking: bool
    include_thoughts: bool
    functions: list[str]
    mode: str
    directive: dict[str, Any]
    json_mode: bool = False  # responseMimeType application/json: the answer is JSON
    output_schema: dict[str, Any] | None = None  # responseJsonSchema (or responseSchema)


def _content_text(content: dict[str, Any], where: str) -> tuple[str, str]:
    """The content's text for counting (text parts and function responses' JSON) and
    what it says (its text parts only)."""
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        field = f"{where}.parts"
        raise invalid(
            f"* GenerateContentRequest.{field}: contents.parts must not be empty.\n", field
        )
    texts: list[str] = []
    said: list[str] = []
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            raise invalid(
                f"Invalid JSON payload received. Expected an object at '{where}.parts[{j}]'."
            )
        if not any(_camel(k) in PART_DATA for k in part):
            field = f"{where}.parts[{j}].data"
            raise invalid(
                f"* GenerateContentRequest.{field}: required oneof field 'data' must have one initialized field\n",  # noqa: E501
                field,
            )
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
            said.append(part["text"])
        response = part.get("functionResponse", part.get("function_response"))
        if isinstance(response, dict):
            texts.append(orjson.dumps(response.get("response", {})).decode())
        inline = part.get("inlineData", part.get("inline_data"))
        if inline is not None and not (
            isinstance(inline, dict)
            and inline.get("data")
            and (inline.get("mimeType") or inline.get("mime_type"))
        ):
            field = f"{where}.parts[{j}].inline_data"
            raise invalid(
                f"* GenerateContentRequest.{field}: mime_type and data are required\n", field
            )
    return " ".join(texts), " ".join(said)


def _check_contents(contents: object) -> tuple[int, str]:
    if not isinstance(contents, list) or not contents:
        raise invalid("* GenerateContentRequest.contents: contents is not specified\n", "contents")
    tokens, last_user = 0, ""
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise invalid(f"Invalid JSON payload received. Expected an object at 'contents[{i}]'.")
        role = content.get("role", "user")
        if role not in ("user", "model"):
            raise invalid("Please use a valid role: user, model.")
        text, said = _content_text(content, f"contents[{i}]")
        tokens += words(text) + 3
        if role == "user" and said:
            last_user = said
    return tokens, last_user


def _number(config: dict[str, Any], name: str, low: float, high: float) -> None:
    value = config.get(name)
    if value is None:
        return
    if not isinstance(value, int | float) or isinstance(value, bool) or not low <= value <= high:
        field = f"generation_config.{_snake(name)}"
        raise invalid(
            f"* GenerateContentRequest.{field}: must be in the range [{low}, {high}]\n", field
        )


def _check_config(raw: object) -> tuple[dict[str, Any], dict[str, Any]]:
    config = _fields(raw if raw is not None else {}, CONFIG_FIELDS, "generation_config")
    _number(config, "candidateCount", 1, 8)
    if not isinstance(config.get("candidateCount", 1), int):
        field = "generation_config.candidate_count"
        raise invalid(f"* GenerateContentRequest.{field}: must be an integer\n", field)
    _number(config, "temperature", 0, 2)
    _number(config, "topP", 0, 1)
    max_tokens = config.get("maxOutputTokens")
    if max_tokens is not None and (
        not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1
    ):
        field = "generation_config.max_output_tokens"
        raise invalid(f"* GenerateContentRequest.{field}: must be a positive integer\n", field)
    stops = config.get("stopSequences", [])
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops) or len(stops) > 5:
        field = "generation_config.stop_sequences"
        raise invalid(f"* GenerateContentRequest.{field}: at most 5 stop sequences\n", field)
    thinking = _fields(
        config.get("thinkingConfig") or {}, THINKING_FIELDS, "generation_config.thinking_config"
    )
    schemas = [k for k in ("responseSchema", "responseJsonSchema") if config.get(k) is not None]
    if len(schemas) > 1:
        raise invalid(
            "response_schema and response_json_schema cannot both be set.",
            "generation_config.response_json_schema",
        )
    if schemas and config.get("responseMimeType") != "application/json":
        field = "generation_config.response_mime_type"
        raise invalid(
            f"* GenerateContentRequest.{field}: response_mime_type must be 'application/json' "
            "when a response schema is set.\n",
            field,
        )
    return config, thinking


def _check_tools(fields: dict[str, Any]) -> tuple[list[str], str]:
    names: list[str] = []
    tools = fields.get("tools") or []
    if not isinstance(tools, list):
        raise invalid("Invalid JSON payload received. Expected an array at 'tools'.", "tools")
    for i, tool in enumerate(tools):
        decls = (
            tool.get("functionDeclarations", tool.get("function_declarations", []))
            if isinstance(tool, dict)
            else None
        )
        if not isinstance(decls, list):
            raise invalid(
                f"Invalid JSON payload received. Expected an array at 'tools[{i}]'.", f"tools[{i}]"
            )
        for j, decl in enumerate(decls):
            if (
                not isinstance(decl, dict)
                or not isinstance(decl.get("name"), str)
                or not decl["name"]
            ):
                field = f"tools[{i}].function_declarations[{j}].name"
                raise invalid(
                    f"* GenerateContentRequest.{field}: [FIELD_INVALID] Invalid function name.\n",
                    field,
                )
            names.append(decl["name"])
    config = fields.get("toolConfig") or {}
    calling = config.get("functionCallingConfig", config.get("function_calling_config")) or {}
    mode = calling.get("mode", "AUTO") if isinstance(calling, dict) else "AUTO"
    if mode not in MODES:
        raise invalid(
            f"Invalid value at 'tool_config.function_calling_config.mode' (type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), \"{mode}\"",  # noqa: E501
            "tool_config.function_calling_config.mode",
        )
    allowed = calling.get("allowedFunctionNames", calling.get("allowed_function_names"))
    if isinstance(allowed, list) and allowed:
        names = [n for n in names if n in allowed] or names
    return names, mode


def parse_request(raw: bytes, model: str, vertex: bool, count_only: bool = False) -> Request:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid("Invalid JSON payload received. Unexpected token.") from None
    if not isinstance(body, dict):
        raise invalid(
            'Invalid JSON payload received. Unknown name "": Root element must be a message.'
        )
    if count_only and ("generateContentRequest" in body or "generate_content_request" in body):
        if "contents" in body:
            raise invalid("contents and generate_content_request are mutually exclusive.")
        body = body.get("generateContentRequest", body.get("generate_content_request"))
        if not isinstance(body, dict):
            raise invalid(
                "Invalid JSON payload received. Expected an object at 'generate_content_request'."
            )
    fields = _fields(body, REQUEST_FIELDS, None)
    prompt_tokens, last_user = _check_contents(fields.get("contents"))
    system = fields.get("systemInstruction")
    if system is not None:
        if not isinstance(system, dict):
            raise invalid(
                "Invalid JSON payload received. Expected an object at 'system_instruction'."
            )
        prompt_tokens += words(_content_text(system, "system_instruction")[0]) + 3
    config, thinking = _check_config(fields.get("generationConfig"))
    functions, mode = _check_tools(fields)
    try:
        directive = directive_in(last_user, _DIRECTIVE_TYPES)
    except DirectiveError as exc:
        raise invalid(str(exc)) from None
    if directive.get("safety_block", "prompt") not in ("prompt", "response"):
        raise invalid('Invalid !mock directive: safety_block must be "prompt" or "response".')
    include = thinking.get("includeThoughts") is True
    budget = thinking.get("thinkingBudget", 0)
    return Request(
        body=body,
        model=model,
        vertex=vertex,
        prompt_tokens=prompt_tokens,
        last_user=last_user,
        n=config.get("candidateCount", 1),
        max_tokens=config.get("maxOutputTokens"),
        stop_sequences=config.get("stopSequences", []),
        thinking=include or budget != 0 or "thinking" in directive,
        include_thoughts=include,
        functions=functions,
        mode=mode,
        directive=directive,
        json_mode=config.get("responseMimeType") == "application/json",
        output_schema=config.get("responseJsonSchema", config.get("responseSchema")),
    )
