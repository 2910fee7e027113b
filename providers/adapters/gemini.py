"""The Google Gemini wire protocol (the Gemini API and Vertex AI express mode): OpenAI chat
requests translated by providers.translate.gemini_openai."""

from __future__ import annotations

from typing import Any

import orjson

from providers.adapters.common import auth_headers, quirks_apply
from providers.catalog import Deployment
from providers.translate.gemini_openai import chat_to_gemini


def chat_request(
    body: dict[str, Any], deployment: Deployment, max_tokens: int
) -> tuple[str, dict[str, str], bytes]:
    # Gemini takes no limit unless the client set one (forwarded as sent, never added).
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    upstream = chat_to_gemini(quirks_apply(body, deployment), max_tokens=limit)
    method = "streamGenerateContent?alt=sse" if body.get("stream") else "generateContent"
    url = f"{deployment.base_url}/models/{deployment.upstream_model_id}:{method}"
    return url, auth_headers(deployment), orjson.dumps(upstream)
