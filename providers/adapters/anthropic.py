"""The Anthropic Messages wire protocol: native requests (from /v1/messages) and translated
ones (from /v1/chat/completions, via providers.translate.chat_to_messages)."""

from __future__ import annotations

from typing import Any

import orjson

from providers.adapters.common import auth_headers, quirks_apply
from providers.catalog import Deployment
from providers.translate.chat_to_messages import chat_to_messages

ANTHROPIC_VERSION = "2023-06-01"


def _headers(deployment: Deployment, client_headers: dict[str, str]) -> dict[str, str]:
    headers = auth_headers(deployment)
    headers["anthropic-version"] = client_headers.get("anthropic-version", ANTHROPIC_VERSION)
    if "anthropic-beta" in client_headers:
        headers["anthropic-beta"] = client_headers["anthropic-beta"]
    return headers


def messages_request(
    body: dict[str, Any], deployment: Deployment, client_headers: dict[str, str]
) -> tuple[str, dict[str, str], bytes]:
    """A client's Messages request, as it came, to an Anthropic-protocol provider."""
    upstream = dict(body)
    upstream["model"] = deployment.upstream_model_id
    url = f"{deployment.base_url}/v1/messages"
    return url, _headers(deployment, client_headers), orjson.dumps(upstream)


def chat_request(
    body: dict[str, Any], deployment: Deployment, max_tokens: int
) -> tuple[str, dict[str, str], bytes]:
    """An OpenAI chat completion request, translated for an Anthropic-protocol provider."""
    upstream = chat_to_messages(
        quirks_apply(body, deployment),
        upstream_model=deployment.upstream_model_id,
        max_tokens=max_tokens,
    )
    url = f"{deployment.base_url}/v1/messages"
    return url, _headers(deployment, {}), orjson.dumps(upstream)
