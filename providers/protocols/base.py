"""The contract every wire protocol implements: one module per protocol in this package
(openai, anthropic, gemini, fal), each one `WireProtocol`, found through the registry
(providers.protocols.wire). The gateway asks a deployment's protocol what it needs and
never names one: what it builds upstream, how its answers and streams read as OpenAI chat,
what it can serve (chat as is, Anthropic Messages as is, embeddings, images, token
counts), how its health is probed and which of its failures are about our account.

A method a protocol does not override answers "not served here" (None, False), so a route
whose deployments cannot serve it fails over or refuses, as it would for a missing model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.errors import GatewayError
from core.usage import Usage
from providers.deployments import Deployment
from providers.translate.fields import Table

UpstreamRequest = tuple[str, dict[str, str], bytes]  # url, headers, body
HEALTH_PROMPT = "ping"  # what a probe that counts tokens counts


@dataclass(frozen=True, slots=True)
class ProbeRequest:
    """A health probe that costs nothing at the provider (monitoring.health)."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    per_model: bool  # a probe of one model; else of the provider as a whole


class Decoder:
    """An upstream stream, decoded into OpenAI chat completion chunks."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.produced = 0  # content pieces decoded: ~one token each, for a cut stream's bill

    def feed(self, name: bytes, data: bytes) -> list[dict[str, Any]]:
        raise NotImplementedError

    def finished(self) -> bool:
        """Whether the upstream ended the stream the way its protocol ends a whole one."""
        raise NotImplementedError

    def stop_reading(self) -> bool:
        """Whether to stop reading now (the protocol's end marker was seen)."""
        return self.finished()

    def error(self) -> GatewayError | None:
        """An error the upstream reported in the stream, if any (ends the relay)."""
        return None

    def usage_chunk(self, model_id: str, usage: Usage) -> dict[str, Any]:
        """The closing usage chunk for a chat client (translating decoders only: an OpenAI
        stream to a chat client goes through the gateway's byte relay, undecoded)."""
        raise NotImplementedError


class WireProtocol:
    name = ""
    default_auth = "bearer"  # how a provider of this protocol takes its key, unless it says
    speaks_chat = False  # takes and answers OpenAI chat completions as they are
    speaks_messages = False  # takes and answers Anthropic Messages as they are
    counts_tokens = False  # has a free token counter (Anthropic's count_tokens)
    # What becomes of each field of an OpenAI chat request translated to this protocol
    # (providers.translate.fields); None for a protocol that takes chat as it is.
    chat_fields: Table | None = None
    # The fields beyond the chat API its chat translation takes (Anthropic's `top_k`).
    chat_extensions: frozenset[str] = frozenset()

    def chat_request(
        self, body: dict[str, Any], deployment: Deployment, max_tokens: int
    ) -> UpstreamRequest | None:
        """An OpenAI chat completion request for `deployment`, in this protocol."""
        return None

    def completion_from(
        self,
        data: dict[str, Any],
        deployment: Deployment,
        body: dict[str, Any],
        body_bytes: int,
        size: int,
    ) -> tuple[dict[str, Any], Usage]:
        """A whole answer to the chat request `body` as an OpenAI chat completion, with its
        usage (estimated from `size` bytes of answer if the provider gave none)."""
        raise NotImplementedError(self.name)

    def chat_decoder(self, body: dict[str, Any], deployment: Deployment) -> Decoder:
        """The decoder of a stream answering the chat request `body`, into OpenAI chat
        completion chunks."""
        raise NotImplementedError(self.name)

    def messages_request(
        self, body: dict[str, Any], deployment: Deployment, client_headers: dict[str, str]
    ) -> UpstreamRequest | None:
        """An Anthropic Messages request as the client sent it (speaks_messages only)."""
        return None

    def messages_usage(self, data: dict[str, Any]) -> Usage | None:
        """The usage of a whole Messages answer (speaks_messages only)."""
        return None

    def embeddings_request(
        self, body: dict[str, Any], deployment: Deployment
    ) -> UpstreamRequest | None:
        return None

    def images_request(
        self, body: dict[str, Any], deployment: Deployment
    ) -> UpstreamRequest | None:
        return None

    def images_response(self, data: dict[str, Any], *, b64: bool) -> dict[str, Any]:
        """An images answer as OpenAI's."""
        return data

    def probe(self, deployment: Deployment) -> ProbeRequest | None:
        """The free health probe, if the protocol has one."""
        return None

    def refuses_account(self, status: int, body: bytes) -> bool:
        """A failure about our account there, beyond 401/402/403 (e.g. Gemini's 400s)."""
        return False
