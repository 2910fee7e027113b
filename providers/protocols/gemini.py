"""The Google Gemini wire protocol (the Gemini API and Vertex AI express mode): OpenAI chat
requests translated by providers.translate.gemini_openai."""

from __future__ import annotations

import re
from typing import Any

import orjson

from core.errors import GatewayError
from core.usage import Usage, usage_estimate
from providers.deployments import Deployment
from providers.protocols.base import (
    HEALTH_PROMPT,
    Decoder,
    ProbeRequest,
    WireProtocol,
)
from providers.protocols.common import auth_headers, quirks_apply
from providers.translate.fields import CHAT_TO_GEMINI
from providers.translate.gemini_openai import (
    GeminiToChatChunks,
    chat_to_gemini,
    gemini_to_chat,
    gemini_usage,
)

# Gemini's reasons for a 400 that is about our account there, not about the request: it
# answers a bad key or an unserved region with 400, not 401/403.
ACCOUNT_FAILURES = re.compile(rb"API_KEY_INVALID|FAILED_PRECONDITION|API_KEY_EXPIRED")


def chat_request(
    body: dict[str, Any], deployment: Deployment, max_tokens: int
) -> tuple[str, dict[str, str], bytes]:
    # Gemini takes no limit unless the client set one (forwarded as sent, never added).
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    upstream = chat_to_gemini(quirks_apply(body, deployment), max_tokens=limit)
    method = "streamGenerateContent?alt=sse" if body.get("stream") else "generateContent"
    url = f"{deployment.base_url}/models/{deployment.upstream_model_id}:{method}"
    return url, auth_headers(deployment), orjson.dumps(upstream)


class GeminiDecoder(Decoder):
    def __init__(self, model_id: str) -> None:
        super().__init__()
        self.translator = GeminiToChatChunks(model_id)

    def feed(self, name: bytes, data: bytes) -> list[dict[str, Any]]:
        chunks = self.translator.feed(orjson.loads(data))
        self.usage = self.translator.usage
        return chunks

    def finished(self) -> bool:
        return self.translator.finished

    def stop_reading(self) -> bool:
        # Gemini has no end marker: a whole stream is one that closes after a finishReason.
        return False

    def error(self) -> GatewayError | None:
        return self.translator.error

    def usage_chunk(self, model_id: str, usage: Usage) -> dict[str, Any]:
        return self.translator.usage_chunk(usage)


class GeminiProtocol(WireProtocol):
    name = "gemini"
    default_auth = "x-goog-api-key"

    chat_fields = CHAT_TO_GEMINI
    chat_extensions = frozenset({"top_k"})
    chat_request = staticmethod(chat_request)

    def completion_from(
        self,
        data: dict[str, Any],
        deployment: Deployment,
        body: dict[str, Any],
        body_bytes: int,
        size: int,
    ) -> tuple[dict[str, Any], Usage]:
        model_id = body["model"]
        usage = gemini_usage(data.get("usageMetadata")) or usage_estimate(body_bytes, size // 4)
        return gemini_to_chat(data, model=model_id, usage=usage), usage

    def chat_decoder(self, body: dict[str, Any], deployment: Deployment) -> Decoder:
        return GeminiDecoder(body["model"])

    def probe(self, deployment: Deployment) -> ProbeRequest:
        # Free, and per model.
        url = f"{deployment.base_url}/models/{deployment.upstream_model_id}:countTokens"
        body = {"contents": [{"role": "user", "parts": [{"text": HEALTH_PROMPT}]}]}
        headers = auth_headers(deployment)
        return ProbeRequest("POST", url, headers, orjson.dumps(body), per_model=True)

    def refuses_account(self, status: int, body: bytes) -> bool:
        return status == 400 and ACCOUNT_FAILURES.search(body) is not None


PROTOCOL = GeminiProtocol()
