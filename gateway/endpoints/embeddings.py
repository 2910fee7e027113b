"""POST /v1/embeddings (OpenAI's shape) on the shared request path, priced per input token."""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import GatewayError, bad_request
from core.usage import Usage, usage_estimate
from gateway.http import Receive, Scope, Send
from gateway.pipeline.client_api import ClientApi, answer_json, send_priced
from gateway.pipeline.serve import serve
from gateway.relay.context import RelayContext
from gateway.relay.stream import usage_record
from gateway.relay.upstream_attempt import UpstreamRequest
from providers.catalog import CatalogModel, Deployment
from providers.protocols import wire
from providers.protocols.openai import usage_read


def _input_ok(value: Any) -> bool:
    """A string, a list of strings, a list of token ids, or a list of such lists."""
    if isinstance(value, str):
        return bool(value)
    if not isinstance(value, list) or not value:
        return False
    if all(isinstance(v, str) for v in value):
        return True
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return True
    return all(
        isinstance(v, list) and v and all(isinstance(t, int) and not isinstance(t, bool) for t in v)
        for v in value
    )


def embeddings_body_parse(raw: bytes) -> dict[str, Any]:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise bad_request("We could not parse the JSON body of your request.") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise bad_request("You must provide a model parameter.", param="model")
    if not _input_ok(body.get("input")):
        raise bad_request(
            "'input' must be a non-empty string, array of strings, or array of token arrays.",
            param="input",
        )
    if body.get("encoding_format", "float") not in ("float", "base64"):
        raise bad_request("'encoding_format' must be 'float' or 'base64'.", param="encoding_format")
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise bad_request("'dimensions' must be a positive integer.", param="dimensions")
    body["stream"] = False
    return body


class EmbeddingsApi(ClientApi):
    endpoint = "embeddings"
    kind = "embedding"

    def parse(self, raw: bytes) -> dict[str, Any]:
        return embeddings_body_parse(raw)

    def build(
        self, body: dict[str, Any], deployment: Deployment, model: CatalogModel, scope: Scope
    ) -> UpstreamRequest | None:
        return wire(deployment).embeddings_request(body, deployment)

    async def relay(self, ctx: RelayContext) -> None:
        send, body, answer, outcome, headers = (
            ctx.send,
            ctx.body,
            ctx.answer,
            ctx.outcome,
            ctx.headers,
        )
        data = answer_json(answer)[0]
        if not isinstance(data.get("data"), list):
            error = GatewayError(
                502,
                f"{answer.deployment.provider} sent no embeddings.",
                type="server_error",
                code="upstream_invalid_response",
            )
            await self.fail(send, outcome, error, headers)
            return
        usage: Usage = usage_read(data.get("usage")) or usage_estimate(ctx.body_bytes, 0)
        cost = usage_record(outcome, usage, answer.deployment)
        data["model"] = body["model"]
        data["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "total_tokens": usage.prompt_tokens,
            "cost": float(cost),
        }
        await send_priced(send, orjson.dumps(data), cost, headers)


EMBEDDINGS = EmbeddingsApi()


async def embeddings(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(EMBEDDINGS, scope, receive, send)
