"""What every wire protocol's adapter shares: credentials in the provider's auth style, and
the provider's declared request quirks (docs/catalog.md)."""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import bad_request
from providers.deployments import Deployment


def auth_headers(deployment: Deployment) -> dict[str, str]:
    headers = {"content-type": "application/json", **dict(deployment.extra_headers)}
    key = deployment.api_key
    if not key:
        return headers
    if deployment.auth == "x-api-key":
        headers["x-api-key"] = key
    elif deployment.auth == "x-goog-api-key":
        headers["x-goog-api-key"] = key
    elif deployment.auth == "key":
        headers["authorization"] = f"Key {key}"
    else:
        headers["authorization"] = f"Bearer {key}"
    return headers


def quirks_apply(body: dict[str, Any], deployment: Deployment) -> dict[str, Any]:
    """The provider's quirks on an upstream body (a copy when anything changes)."""
    if not (
        deployment.unsupported_params
        or deployment.drop_params
        or deployment.rename_params
        or deployment.default_params
    ):
        return body
    for name in deployment.unsupported_params:
        if body.get(name) is not None:
            raise bad_request(
                f"'{name}' is not supported by {deployment.provider}, which serves this model.",
                param=name,
            )
    out = {k: v for k, v in body.items() if k not in deployment.drop_params}
    for old, new in deployment.rename_params:
        if old in out and new not in out:
            out[new] = out.pop(old)
    if deployment.default_params:
        keys = {k for k, _ in deployment.default_params}
        if not (keys | deployment.default_params_unless) & body.keys():
            out.update(deployment.default_params)
    return out


def error_message(body: bytes) -> str:
    """The provider's own error message, from an OpenAI-shaped (or any) error body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode(errors="replace").strip() or "no message"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return "no message"
