"""What differs between inference endpoints: the client's protocol (how a body is validated
and bounded, how an error looks, how each provider's protocol is spoken and answered), as
a `ClientApi` that gateway.pipeline.serve runs; and the helpers every protocol answers with."""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from decimal import Decimal
from typing import Any

from billing.pricing import hold_amount
from core.amounts import amount_text
from core.errors import GatewayError
from core.outcome import RequestOutcome
from core.usage import Usage
from gateway.guards.limits import Admission
from gateway.http import (
    JSON_HEADERS,
    Scope,
    Send,
    send_bytes,
)
from gateway.keycache import KeyIdentity
from gateway.relay.context import Headers, RelayContext
from gateway.relay.upstream_attempt import UpstreamAnswer, UpstreamRequest
from providers.catalog import CatalogModel, Deployment
from providers.protocols import wire
from providers.upstream_errors import detail_keep, failure_told

log = logging.getLogger(__name__)


class ClientApi(ABC):
    """One client-facing protocol (OpenAI chat, Anthropic messages, ...)."""

    endpoint: str
    kind = "chat"  # the kind of model it serves
    prepares = False  # has `prepare` to run before routing

    async def prepare(self, body: dict[str, Any], identity: KeyIdentity) -> None:
        """Completes the parsed body with what needs the database or Redis (a stored
        conversation it continues), once the key is known; `prepares` says it does."""
        return None

    @abstractmethod
    def parse(self, raw: bytes) -> dict[str, Any]:
        """The validated body (raise GatewayError 400 on bad input)."""

    def output_tokens(self, body: dict[str, Any], model: CatalogModel) -> int:
        """The most output tokens the request lets the provider write."""
        return 0

    def referenced_tokens(self, body: dict[str, Any]) -> int:
        """Prompt tokens the body's bytes do not bound: content the provider fetches or
        adds itself (an image given by URL, the tool-use system prompt)."""
        return 0

    def dropped(self, body: dict[str, Any], deployment: Deployment) -> list[str]:
        """The fields of the request `deployment` would not get (its provider's declared
        drops, and a translation's: providers.translate.fields); a field refused there
        raises its 400."""
        return provider_drops(body, deployment)

    def hold(self, body: dict[str, Any], body_bytes: int, model: CatalogModel) -> Decimal:
        """The most the request can cost on any of the model's deployments."""
        prompt_bound = body_bytes + self.referenced_tokens(body)
        return token_hold(prompt_bound, self.output_tokens(body, model), model)

    def token_estimate(self, body: dict[str, Any], body_bytes: int, model: CatalogModel) -> int:
        """The tokens counted against token rate limits at admission (corrected at
        settlement): prompt bytes ÷ 4 plus the output allowed, as OpenAI counts them."""
        return body_bytes // 4 + self.output_tokens(body, model)

    @abstractmethod
    def build(
        self, body: dict[str, Any], deployment: Deployment, model: CatalogModel, scope: Scope
    ) -> UpstreamRequest | None:
        """The upstream request on `deployment`, or None if its protocol cannot carry it."""

    @abstractmethod
    async def relay(self, ctx: RelayContext) -> None:
        """Sends the provider's answer in the client's protocol, metering it in `outcome`."""

    def error_body(self, error: GatewayError, request_id: str) -> bytes:
        """The error in the client's protocol: OpenAI's shape unless the API says otherwise."""
        return error.body()

    def id_headers(self, request_id: str) -> Headers:
        """The headers that name the request in every answer: OpenAI's `x-request-id`."""
        return [(b"x-request-id", request_id.encode())]

    def limit_headers(self, admission: Admission) -> Headers:
        """An admitted request's rate-limit headers: OpenAI's `x-ratelimit-*`."""
        return admission.headers()

    def headers_check(self, scope: Scope) -> None:
        """Refuses (raise GatewayError) a request that lacks a header the API requires."""
        return  # OpenAI's APIs require none

    async def send_error(
        self, send: Send, error: GatewayError, extra: Headers, request_id: str
    ) -> None:
        await send_bytes(
            send,
            error.status,
            self.error_body(error, request_id),
            JSON_HEADERS + error.headers + extra,
        )

    async def fail(
        self, send: Send, outcome: RequestOutcome, error: GatewayError, headers: Headers
    ) -> None:
        """Answers with `error` after the provider answered (so nothing is charged)."""
        outcome.status, outcome.error_type = error.status, error.code or error.type
        failure_told(error, outcome.request_id)
        detail_keep(outcome.attempts, error)
        await self.send_error(send, error, headers, outcome.request_id)


def provider_drops(body: dict[str, Any], deployment: Deployment) -> list[str]:
    """The fields the provider declares it drops (its catalog quirk), that the body sets."""
    if not deployment.drop_params:
        return []
    return [name for name in body if name in deployment.drop_params]


def completion_read(ctx: RelayContext) -> tuple[dict[str, Any], Usage] | GatewayError:
    """The provider's whole answer as an OpenAI chat completion, with its usage; or the
    refusal it holds (a safety filter...), for the endpoint to answer with (`fail`)."""
    data, size = answer_json(ctx.answer)
    deployment = ctx.answer.deployment
    try:
        return wire(deployment).completion_from(data, deployment, ctx.body, ctx.body_bytes, size)
    except GatewayError as refused:
        return refused


def answer_json(answer: UpstreamAnswer) -> tuple[dict[str, Any], int]:
    """The provider's whole answer as a JSON object, and its size in bytes. The route read
    and parsed it before taking the answer, so that a broken one could still fail over."""
    answer.response.release()
    assert answer.data is not None
    return answer.data, len(answer.body)


async def send_priced(send: Send, payload: bytes, cost: Decimal, headers: Headers) -> None:
    """A 200 JSON answer with its exact cost in `x-gatewayz-cost`."""
    priced = [(b"x-gatewayz-cost", amount_text(cost).encode())]
    await send_bytes(send, 200, payload, JSON_HEADERS + headers + priced)


def token_hold(body_bytes: int, output_tokens: int, model: CatalogModel) -> Decimal:
    """A token-priced request's bound: the body's size bounds its prompt tokens, and the
    output is bounded by what it lets the provider write; at the dearest deployment."""
    return max(
        hold_amount(body_bytes=body_bytes, max_output_tokens=output_tokens, deployment=d)
        for d in model.deployments
    )
