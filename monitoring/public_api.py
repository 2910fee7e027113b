"""The public read-only endpoints served beside the gateway's /v1 and /health paths:
discovery (monitoring.discovery) and uptime (monitoring.uptime).

The ASGI entry points ask `public_route(path)` before the gateway's raw app: these paths
are answered here (`public_serve`), everything else goes on to the gateway. Matching them
first is what keeps `/v1/models/{id}` from shadowing `/v1/models/trending`. Answers are
the same for everyone, so each is kept CACHE_SECONDS per worker (keyed by path and query)
and marked cacheable:
a burst of status-page or catalog-browser visits costs one computation per worker.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

import orjson

from core.asyncdb import db_call
from core.errors import GatewayError, bad_request
from core.ids import request_id_new
from core.outage import database_unavailable, database_unreachable
from gateway.http import JSON_HEADERS, Scope, Send, send_bytes, send_error
from monitoring import discovery, uptime
from monitoring.params import ParamRefused
from providers.catalog import Catalog, catalog_holder

log = logging.getLogger(__name__)

CACHE_SECONDS = 30.0
CACHE_ENTRIES = 512

Answer = Callable[[Mapping[str, str], Catalog], dict[str, Any]]
ProviderAnswer = Callable[[Mapping[str, str], Catalog, str], dict[str, Any]]

EXACT: dict[str, Answer] = {
    "/v1/models/trending": discovery.models_trending,
    "/v1/models/low-latency": discovery.models_low_latency,
    "/v1/models/search": discovery.models_search,
    "/v1/provider": discovery.providers_list,
    "/v1/gateways/summary": discovery.gateways_summary,
    "/health/providers/uptime": uptime.providers_uptime,
    "/health/models/uptime": uptime.models_uptime,
}
PER_PROVIDER: dict[str, ProviderAnswer] = {
    "stats": discovery.provider_stats,
    "top-models": discovery.provider_top_models,
}
PROVIDER_PREFIX = "/v1/provider/"


def _route(path: str) -> Callable[[Mapping[str, str], Catalog], dict[str, Any]] | None:
    answer = EXACT.get(path)
    if answer is not None:
        return answer
    if path.startswith(PROVIDER_PREFIX):
        name, _, what = path[len(PROVIDER_PREFIX) :].partition("/")
        per_provider = PER_PROVIDER.get(what)
        if name and per_provider is not None:
            return lambda params, catalog: per_provider(params, catalog, name)
    return None


class AnswerCache:
    """Bodies by (path, query), each kept CACHE_SECONDS; the oldest dropped past
    CACHE_ENTRIES (a crawler's every query string must not grow a worker's memory)."""

    def __init__(self) -> None:
        self._bodies: OrderedDict[tuple[str, bytes], tuple[float, bytes]] = OrderedDict()

    def get(self, key: tuple[str, bytes]) -> bytes | None:
        kept = self._bodies.get(key)
        if kept is None or kept[0] < time.monotonic():
            return None
        return kept[1]

    def put(self, key: tuple[str, bytes], body: bytes) -> None:
        self._bodies[key] = (time.monotonic() + CACHE_SECONDS, body)
        self._bodies.move_to_end(key)
        while len(self._bodies) > CACHE_ENTRIES:
            self._bodies.popitem(last=False)

    def clear(self) -> None:
        self._bodies.clear()


answers = AnswerCache()
CACHEABLE = [(b"cache-control", f"public, max-age={int(CACHE_SECONDS)}".encode())]


async def _serve(scope: Scope, send: Send, answer: Answer) -> None:
    if scope["method"] not in ("GET", "HEAD"):
        raise GatewayError(
            405,
            "Method not allowed; use GET.",
            code="method_not_allowed",
            headers=[(b"allow", b"GET")],
        )
    query: bytes = scope.get("query_string", b"")
    key = (scope["path"], query)
    body = answers.get(key)
    if body is None:
        params = dict(parse_qsl(query.decode(errors="replace")))
        catalog = await catalog_holder.get()
        try:
            body = orjson.dumps(await db_call(answer, params, catalog))
        except ParamRefused as refused:
            raise bad_request(str(refused), param=refused.param) from None
        answers.put(key, body)
    await send_bytes(send, 200, body, JSON_HEADERS + CACHEABLE)


def public_route(path: str) -> Answer | None:
    """The public endpoint `path` names, if any: the ASGI entry points ask before handing a
    request to the gateway (config.asgi, config.asgi_inference), so that these paths cost
    the gateway's own requests a dict lookup and no extra coroutine."""
    return _route(path)


async def public_serve(scope: Scope, send: Send, answer: Answer) -> None:
    try:
        await _serve(scope, send, answer)
    except Exception as exc:
        if isinstance(exc, GatewayError):
            error = exc
        elif database_unreachable(exc):
            error = database_unavailable()
        else:
            log.exception("%s failed", scope["path"])
            error = GatewayError(500, "The gateway failed on this request.", type="server_error")
        await send_error(send, error, [(b"x-request-id", request_id_new().encode())])
