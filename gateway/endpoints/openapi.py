"""The inference routes in the OpenAPI document (/api/schema).

The raw gateway app serves them outside DRF, so drf-spectacular cannot see them; this hook
adds them by hand. They follow OpenAI's and Anthropic's published shapes, as far as the
gateway relies on them: required fields are the ones the gateway refuses a request
without, and objects stay open (providers add fields, and so do clients). CI fuzzes the
whole document with schemathesis (tests/security/test_openapi_fuzz.py): no answer may be
a 5xx, and every answer must match what is written here.
"""

from __future__ import annotations

from typing import Any

Schema = dict[str, Any]


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema) -> Schema:
    return {"application/json": {"schema": schema}}


# A content part: typed (text, image_url, tool_result, …), the rest as its type has it.
PART: Schema = {"type": "object", "required": ["type"], "properties": {"type": {"type": "string"}}}
TEXT_OR_PARTS: Schema = {
    "oneOf": [
        {"type": "string", "minLength": 1},
        {"type": "array", "minItems": 1, "items": PART},
    ]
}

COMPONENTS: dict[str, Schema] = {
    # Each event of a stream (`stream: true`); `data` is the JSON chunk of the route's
    # protocol, or OpenAI's final `[DONE]`.
    "ServerSentEvent": {
        "type": "object",
        "required": ["data"],
        "properties": {"event": {"type": "string"}, "data": {"type": "string"}},
    },
    "OpenAIError": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["message", "type"],
                "properties": {
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                    "param": {"type": "string", "nullable": True},
                    "code": {"type": "string", "nullable": True},
                },
            }
        },
    },
    "AnthropicError": {
        "type": "object",
        "required": ["type", "error", "request_id"],
        "properties": {
            "type": {"type": "string", "enum": ["error"]},
            "error": {
                "type": "object",
                "required": ["type", "message"],
                "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
            },
            "request_id": {"type": "string", "description": "As the `request-id` header."},
        },
    },
    "ChatMessage": {
        "type": "object",
        "required": ["role"],
        "properties": {
            "role": {
                "type": "string",
                "enum": ["system", "developer", "user", "assistant", "tool"],
            },
            "content": {**TEXT_OR_PARTS, "nullable": True},
            "name": {"type": "string"},
            "tool_call_id": {"type": "string"},
            "tool_calls": {"type": "array", "items": {"type": "object"}},
        },
    },
    "ChatCompletionRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string", "description": "A model id, alias or provider-native id."},
            "messages": {"type": "array", "minItems": 1, "items": _ref("ChatMessage")},
            "max_tokens": {"type": "integer", "minimum": 1, "nullable": True},
            "max_completion_tokens": {"type": "integer", "minimum": 1, "nullable": True},
            "temperature": {"type": "number", "minimum": 0, "maximum": 2, "nullable": True},
            "top_p": {"type": "number", "minimum": 0, "maximum": 1, "nullable": True},
            "n": {"type": "integer", "minimum": 1, "maximum": 128, "nullable": True},
            "stream": {"type": "boolean", "nullable": True},
            "stop": {
                "oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                "nullable": True,
            },
            "user": {"type": "string"},
            "models": {
                "type": "array",
                "items": {"type": "string"},
                "description": "Fallback models, tried in order (Gatewayz).",
            },
            "provider": {
                "type": "object",
                "description": "Routing preferences, as OpenRouter's (Gatewayz; docs/routing.md).",
            },
        },
    },
    "ChatCompletion": {
        "type": "object",
        "required": ["id", "object", "created", "model", "choices"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string"},
            "choices": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "message"],
                    "properties": {
                        "index": {"type": "integer"},
                        "message": _ref("ChatMessage"),
                        "finish_reason": {"type": "string", "nullable": True},
                    },
                },
            },
            "usage": _ref("Usage"),
        },
    },
    "Usage": {
        "type": "object",
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
        },
    },
    "EmbeddingRequest": {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string"},
            "input": {
                "oneOf": [
                    {"type": "string"},
                    {"type": "array", "minItems": 1, "items": {"type": "string"}},
                ]
            },
            "encoding_format": {"type": "string", "enum": ["float", "base64"]},
            "dimensions": {"type": "integer", "minimum": 1},
        },
    },
    "EmbeddingList": {
        "type": "object",
        "required": ["object", "data", "model"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["object", "embedding", "index"],
                    "properties": {
                        "object": {"type": "string", "enum": ["embedding"]},
                        "embedding": {
                            "oneOf": [
                                {"type": "array", "items": {"type": "number"}},
                                {"type": "string"},
                            ]
                        },
                        "index": {"type": "integer"},
                    },
                },
            },
            "model": {"type": "string"},
            "usage": {"type": "object"},
        },
    },
    "ImageRequest": {
        "type": "object",
        "required": ["model", "prompt"],
        "properties": {
            "model": {"type": "string"},
            "prompt": {"type": "string", "minLength": 1},
            "n": {"type": "integer", "minimum": 1, "maximum": 10},
            "size": {"type": "string"},
            "response_format": {"type": "string", "enum": ["url", "b64_json"]},
        },
    },
    "ImageList": {
        "type": "object",
        "required": ["created", "data"],
        "properties": {
            "created": {"type": "integer"},
            "data": {"type": "array", "items": {"type": "object"}},
        },
    },
    "ResponseRequest": {
        "type": "object",
        "required": ["model", "input"],
        "properties": {
            "model": {"type": "string"},
            "input": TEXT_OR_PARTS,
            "instructions": {"type": "string", "nullable": True},
            "max_output_tokens": {"type": "integer", "minimum": 1, "nullable": True},
            "stream": {"type": "boolean", "nullable": True},
        },
    },
    "Response": {
        "type": "object",
        "required": ["id", "object", "output"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["response"]},
            "model": {"type": "string"},
            "output": {"type": "array", "items": {"type": "object"}},
            "usage": {"type": "object", "nullable": True},
        },
    },
    "AnthropicMessage": {
        "type": "object",
        "required": ["role", "content"],
        "properties": {
            "role": {"type": "string", "enum": ["user", "assistant"]},
            "content": TEXT_OR_PARTS,
        },
    },
    "MessagesRequest": {
        "type": "object",
        "required": ["model", "max_tokens", "messages"],
        "properties": {
            "model": {"type": "string"},
            "max_tokens": {"type": "integer", "minimum": 1},
            "messages": {"type": "array", "minItems": 1, "items": _ref("AnthropicMessage")},
            "system": TEXT_OR_PARTS,
            "temperature": {"type": "number", "minimum": 0, "maximum": 1},
            "stream": {"type": "boolean"},
            "stop_sequences": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Message": {
        "type": "object",
        "required": ["id", "type", "role", "content", "model"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string", "enum": ["message"]},
            "role": {"type": "string", "enum": ["assistant"]},
            "content": {"type": "array", "items": {"type": "object"}},
            "model": {"type": "string"},
            "stop_reason": {"type": "string", "nullable": True},
            "usage": {
                "type": "object",
                "properties": {
                    "input_tokens": {"type": "integer"},
                    "output_tokens": {"type": "integer"},
                },
            },
        },
    },
    "CountTokensRequest": {
        "type": "object",
        "required": ["model", "messages"],
        "properties": {
            "model": {"type": "string"},
            "messages": {"type": "array", "minItems": 1, "items": _ref("AnthropicMessage")},
            "system": TEXT_OR_PARTS,
        },
    },
    "TokenCount": {
        "type": "object",
        "required": ["input_tokens"],
        "properties": {"input_tokens": {"type": "integer"}},
    },
    "Model": {
        "type": "object",
        "required": ["id", "object", "created", "owned_by"],
        "properties": {
            "id": {"type": "string"},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": {"type": "string"},
            "context_length": {"type": "integer"},
            "max_output_tokens": {"type": "integer", "nullable": True},
            "pricing": {"type": "object"},
        },
    },
    "ModelList": {
        "type": "object",
        "required": ["object", "data"],
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("Model")},
        },
    },
}

# What each route may answer besides its success, and why.
OPENAI_ERRORS = {
    "400": "The request is malformed or asks for something the model cannot do.",
    "401": "No key, or a wrong, revoked or expired one.",
    "402": "The credit balance cannot cover the request.",
    "403": "The key's restrictions or caps forbid the request.",
    "404": "No such model.",
    "413": "The body is too large.",
    "429": "A rate limit was reached (Retry-After says when to retry).",
    "502": "Every provider that could serve the request failed.",
    "503": "Every provider that could serve the request is cut off by its circuit breaker.",
}


def _errors(shape: str, codes: dict[str, str]) -> dict[str, Schema]:
    return {
        code: {"description": why, "content": _json(_ref(shape))} for code, why in codes.items()
    }


# Anthropic's API requires it (its SDKs always send it); without it: a 400.
ANTHROPIC_VERSION = {
    "name": "anthropic-version",
    "in": "header",
    "required": True,
    "schema": {"type": "string", "enum": ["2023-06-01"]},
}


def _post(
    summary: str,
    request: str,
    answer: Schema,
    *,
    shape: str = "OpenAIError",
    stream: bool = False,
    tag: str = "inference",
) -> Schema:
    ok = _json(answer)
    if stream:
        ok["text/event-stream"] = {"schema": _ref("ServerSentEvent")}
    operation = {
        "operationId": summary.lower().replace(" ", "_"),
        "summary": summary,
        "tags": [tag],
        "security": [{"gatewayzKey": []}, {"anthropicKey": []}],
        "requestBody": {"required": True, "content": _json(_ref(request))},
        "responses": {
            "200": {"description": "Served.", "content": ok},
            **_errors(shape, OPENAI_ERRORS),
        },
    }
    if shape == "AnthropicError":
        operation["parameters"] = [ANTHROPIC_VERSION]
    return {"post": operation}


PATHS: dict[str, Schema] = {
    "/v1/chat/completions": _post(
        "Create chat completion", "ChatCompletionRequest", _ref("ChatCompletion"), stream=True
    ),
    "/v1/embeddings": _post("Create embeddings", "EmbeddingRequest", _ref("EmbeddingList")),
    "/v1/images/generations": _post("Generate images", "ImageRequest", _ref("ImageList")),
    "/v1/responses": _post("Create response", "ResponseRequest", _ref("Response"), stream=True),
    "/v1/messages": _post(
        "Create message", "MessagesRequest", _ref("Message"), shape="AnthropicError", stream=True
    ),
    "/v1/messages/count_tokens": _post(
        "Count message tokens", "CountTokensRequest", _ref("TokenCount"), shape="AnthropicError"
    ),
    "/v1/models": {
        "get": {
            "operationId": "list_models",
            "summary": "List models",
            "tags": ["inference"],
            "security": [{}],
            "responses": {
                "200": {"description": "The served catalog.", "content": _json(_ref("ModelList"))}
            },
        }
    },
    "/v1/models/{model}": {
        "get": {
            "operationId": "retrieve_model",
            "summary": "Retrieve a model",
            "tags": ["inference"],
            "security": [{}],
            "parameters": [
                {"name": "model", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {"description": "The model.", "content": _json(_ref("Model"))},
                **_errors("OpenAIError", {"404": "No such model."}),
            },
        }
    },
}

SECURITY_SCHEMES = {
    "gatewayzKey": {"type": "http", "scheme": "bearer", "description": "A Gatewayz key (gw_…)."},
    "anthropicKey": {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "A Gatewayz key, as Anthropic's clients send it.",
    },
}


def add_inference_routes(result: Schema, generator: Any, request: Any, public: bool) -> Schema:
    """drf-spectacular postprocessing hook (settings.SPECTACULAR_SETTINGS)."""
    result.setdefault("paths", {}).update(PATHS)
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(COMPONENTS)
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    return result
