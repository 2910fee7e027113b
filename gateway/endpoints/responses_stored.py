"""GET /v1/responses/{id}, GET /v1/responses/{id}/input_items and DELETE /v1/responses/{id}:
a customer's stored Responses API answers, as OpenAI's API serves them (another customer's,
an expired or an unknown id: 404). Free: nothing is sent to a provider."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

import orjson

from core.errors import GatewayError, bad_request
from gateway.endpoints.responses_state import chain_of, forget
from gateway.http import JSON_HEADERS, Scope, Send, send_bytes
from gateway.pipeline.auth import authenticate

JSON = dict[str, Any]


async def stored_response(scope: Scope, send: Send, path: str) -> None:
    """Dispatches /v1/responses/{id}[/input_items] by method (after the key is checked)."""
    identity = await authenticate(scope)
    response_id, _, rest = path.partition("/")
    method = scope["method"]
    if rest == "input_items" and method == "GET":
        chain = await chain_of(response_id, identity.user_id, "response_id")
        page = _page(chain[-1]["input"], scope.get("query_string", b""))
        await send_bytes(send, 200, orjson.dumps(page), JSON_HEADERS)
    elif not rest and method == "GET":
        chain = await chain_of(response_id, identity.user_id, "response_id")
        await send_bytes(send, 200, orjson.dumps(chain[-1]["response"]), JSON_HEADERS)
    elif not rest and method == "DELETE":
        if not await forget(response_id, identity.user_id):
            raise GatewayError(
                404, f"Response with id '{response_id}' not found.", code="not_found"
            )
        deleted = {"id": response_id, "object": "response", "deleted": True}
        await send_bytes(send, 200, orjson.dumps(deleted), JSON_HEADERS)
    elif rest and rest != "input_items":
        raise GatewayError(
            404, f"Unknown endpoint {method} /v1/responses/{path}.", code="unknown_url"
        )
    else:
        allowed = "GET" if rest else "GET, DELETE"
        raise GatewayError(
            405,
            f"Method not allowed; use {allowed}.",
            code="method_not_allowed",
            headers=[(b"allow", allowed.encode())],
        )


def _page(items: list[JSON], query: bytes) -> JSON:
    """OpenAI's list page: `limit` (1-100, 20), `order` (desc by default), `after`/`before`
    an item id."""
    params = {k: v[-1] for k, v in parse_qs(query.decode(errors="replace")).items()}
    try:
        limit = int(params.get("limit", 20))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise bad_request("'limit' must be an integer from 1 to 100.", param="limit")
    order = params.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("'order' must be 'asc' or 'desc'.", param="order")
    ordered = items if order == "asc" else items[::-1]
    ids = [item.get("id") for item in ordered]
    start = 0
    if "after" in params:
        start = ids.index(params["after"]) + 1 if params["after"] in ids else len(ids)
    end = len(ordered)
    if "before" in params:
        end = ids.index(params["before"]) if params["before"] in ids else 0
    page = ordered[start:end][:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0].get("id") if page else None,
        "last_id": page[-1].get("id") if page else None,
        "has_more": start + len(page) < end,
    }
