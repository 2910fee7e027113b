"""The Anthropic Messages wire protocol: native requests (from /v1/messages) and translated
ones (from /v1/chat/completions, via providers.translate.chat_to_messages)."""

from __future__ import annotations

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
from providers.translate.anthropic_openai_answers import message_to_chat, upstream_error
from providers.translate.anthropic_openai_streams import MessageEventsToChatChunks
from providers.translate.anthropic_openai_usage import usage_from_anthropic
from providers.translate.chat_to_messages import chat_to_messages
from providers.translate.fields import CHAT_TO_ANTHROPIC
from providers.translate.structured_output import uses_json_tool

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
        structured_outputs=deployment.structured_outputs,
    )
    url = f"{deployment.base_url}/v1/messages"
    return url, _headers(deployment, {}), orjson.dumps(upstream)


class AnthropicDecoder(Decoder):
    def __init__(self, model_id: str, provider: str, json_tool: bool = False) -> None:
        super().__init__()
        self.translator = MessageEventsToChatChunks(model_id, json_tool=json_tool)
        self.provider = provider

    def feed(self, name: bytes, data: bytes) -> list[dict[str, Any]]:
        chunks = self.translator.feed(orjson.loads(data))
        self.usage = self.translator.usage
        return chunks

    def finished(self) -> bool:
        return self.translator.done

    def error(self) -> GatewayError | None:
        if self.translator.error is None:
            return None
        return upstream_error(self.translator.error, self.provider)

    def usage_chunk(self, model_id: str, usage: Usage) -> dict[str, Any]:
        return self.translator.usage_chunk(usage)


class AnthropicProtocol(WireProtocol):
    name = "anthropic"
    default_auth = "x-api-key"
    speaks_messages = True
    counts_tokens = True

    chat_fields = CHAT_TO_ANTHROPIC
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
        usage = usage_from_anthropic(data.get("usage")) or usage_estimate(body_bytes, size // 4)
        json_tool = uses_json_tool(body, deployment.structured_outputs)
        return message_to_chat(data, model=model_id, usage=usage, json_tool=json_tool), usage

    def chat_decoder(self, body: dict[str, Any], deployment: Deployment) -> Decoder:
        json_tool = uses_json_tool(body, deployment.structured_outputs)
        return AnthropicDecoder(body["model"], deployment.provider, json_tool)

    messages_request = staticmethod(messages_request)

    def messages_usage(self, data: dict[str, Any]) -> Usage | None:
        return usage_from_anthropic(data.get("usage"))

    def probe(self, deployment: Deployment) -> ProbeRequest:
        # Free, and per model.
        headers = _headers(deployment, {})
        body = {
            "model": deployment.upstream_model_id,
            "messages": [{"role": "user", "content": HEALTH_PROMPT}],
        }
        url = f"{deployment.base_url}/v1/messages/count_tokens"
        return ProbeRequest("POST", url, headers, orjson.dumps(body), per_model=True)


PROTOCOL = AnthropicProtocol()
