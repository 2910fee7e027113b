"""How the OpenAPI document (drf-spectacular) describes the management API's
authentication by Gatewayz key. Loaded by accounts.apps where drf-spectacular is installed
(the web side)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "gatewayzKey"  # the same scheme as the inference routes' (gateway.endpoints.openapi)

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A Gatewayz key (gw_…)."}


# DRF answers errors as {"detail": "..."}, or, for invalid input, a message list per field.
API_ERROR = {
    "type": "object",
    "description": 'DRF\'s error: {"detail": "..."}, or for invalid input the messages per field.',
    "additionalProperties": True,
}
API_ERRORS = {
    "400": "Invalid input.",
    "401": "Not authenticated.",
    "403": "Authenticated, but not allowed (role, key scope or key restriction).",
    "404": "Not found, or not yours (the two are answered alike).",
    "429": "Throttled.",
}


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """drf-spectacular postprocessing hook: the errors every management route may answer,
    which drf-spectacular leaves out (the inference routes document their own)."""
    result.setdefault("components", {}).setdefault("schemas", {})["ApiError"] = API_ERROR
    ref = {"$ref": "#/components/schemas/ApiError"}
    # Runs before the inference routes are added (SPECTACULAR_SETTINGS' hook order): every
    # path here is DRF's, the chats API under /v1/ included.
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, why in API_ERRORS.items():
                responses.setdefault(
                    code, {"description": why, "content": {"application/json": {"schema": ref}}}
                )
    return result
