"""Stored Responses API answers, as the gateway reads them: `store` (the API's default) keeps
an answer for its customer; `previous_response_id` continues a stored conversation;
`item_reference` points at an item of one. As OpenAI's API does, so that clients that
assume storage (the AI SDK's default OpenAI model, on every tool loop) work unchanged.

Nothing is written to the database on the request path: an answer to keep rides in its
request's usage event (RequestOutcome.stored) to the usage writer, which keeps it with the
request log row (billing.models.StoredResponse). Until that row is surely written, the
answer is also kept in Redis for a few minutes (in this process without Redis): the next
request of a tool loop often comes before the writer's batch.

Reading one answer with all it continues is one indexed query (billing.stored_responses).
Item ids carry their response's id (`msg_<response>_<n>`), so a reference is found the same
way. Another customer's id is not found (404), as an unknown one.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable
from typing import Any

import hiredis
import orjson
from django.conf import settings

from billing.stored_responses import stored_chain, stored_delete
from core.asyncdb import db_call
from core.errors import GatewayError
from core.redis_cluster import hot_wire
from core.redis_wire import RedisWireError, Wire

log = logging.getLogger(__name__)
JSON = dict[str, Any]
PREFIX = "gwz:resp:"
RECENT_SECONDS = 600  # how long a new answer is kept here, while its row is being written
RECENT_MAX = 2048  # answers kept in this process


def response_of_item(item_id: str) -> str | None:
    """The response an item id names (`<kind>_<response hex>_<n>`), if it is one of ours."""
    parts = item_id.split("_")
    if len(parts) == 3 and len(parts[1]) == 24:
        return f"resp_{parts[1]}"
    return None


def conversation(chain: list[JSON]) -> list[JSON]:
    """The items of a chain of stored answers, oldest first: each one's input, then output."""
    return [item for entry in chain for item in (*entry["input"], *entry["output"])]


class RecentAnswers:
    """Answers kept while their rows are being written: in Redis (with REDIS_URL), which
    every process reads and a deletion reaches at once; else in this process (the embedded
    default runs one)."""

    def __init__(self) -> None:
        self.here: OrderedDict[str, tuple[float, bytes]] = OrderedDict()
        self.wire: Wire | None = None

    def _wire(self) -> Wire | None:
        if self.wire is None and settings.REDIS_URL:
            timeout = settings.GATEWAYZ_REDIS_TIMEOUT_SECONDS
            self.wire = hot_wire(settings.REDIS_URL, timeout=timeout)
        return self.wire

    def keep(self, response_id: str, record: bytes) -> Awaitable[Any] | None:
        """Keeps an answer; with Redis, the write is on its way before this returns (so
        before the client hears the answer): await what it returns for its reply."""
        wire = self._wire()
        if wire is None:
            self.here[response_id] = (time.monotonic() + RECENT_SECONDS, record)
            while len(self.here) > RECENT_MAX:
                self.here.popitem(last=False)
            return None
        args = ("SET", PREFIX + response_id, record, "EX", RECENT_SECONDS)
        return wire.call_now(*args) or wire.call(*args)

    async def find(self, response_id: str) -> bytes | None:
        wire = self._wire()
        if wire is None:
            held = self.here.get(response_id)
            return held[1] if held is not None and held[0] > time.monotonic() else None
        try:
            found = await wire.call("GET", PREFIX + response_id)
        except (RedisWireError, hiredis.ReplyError) as exc:
            log.warning("stored responses cannot be read from Redis: %s", exc)
            return None
        return bytes(found) if found else None

    async def forget(self, response_id: str) -> None:
        wire = self._wire()
        if wire is None:
            self.here.pop(response_id, None)
            return
        try:
            await wire.call("DEL", PREFIX + response_id)
        except (RedisWireError, hiredis.ReplyError) as exc:
            log.warning("a deleted response may be read from Redis a while: %s", exc)

    async def close(self) -> None:
        if self.wire is not None:
            await self.wire.close()
            self.wire = None


recent = RecentAnswers()


async def chain_of(response_id: str, user_id: int, param: str) -> list[JSON]:
    """The stored answer `response_id` of `user_id` and those it continues, oldest first;
    a 404 naming `param` if there is none."""
    record = await recent.find(response_id)
    if record is not None:
        held = orjson.loads(record)
        if held["user_id"] == user_id:
            return list(held["chain"])
    chain = await db_call(stored_chain, response_id=response_id, user_id=user_id)
    if not chain:
        raise _missing(f"Response with id '{response_id}' not found.", param)
    return chain


def remember(response_id: str, user_id: int, chain: list[JSON]) -> Awaitable[Any] | None:
    """Keeps a new answer (the last of `chain`) for the next requests until its row is
    written; await what it returns (a Redis write already sent) before going on."""
    return recent.keep(response_id, orjson.dumps({"user_id": user_id, "chain": chain}))


async def kept(write: Awaitable[Any] | None) -> None:
    """Waits for `remember`'s write; a failed one is logged (the row still comes)."""
    if write is None:
        return
    try:
        await write
    except (RedisWireError, hiredis.ReplyError) as exc:
        log.warning("a stored response is not shared in Redis: %s", exc)


INPUT_KINDS = {"message": "msg", "function_call": "fc", "function_call_output": "fco"}


def stored_entry(body: JSON, response: JSON) -> JSON:
    """What is kept of an answer (billing.models.StoredResponse): the request's own input
    items, each with an id (`<kind>_<response>_i<n>` unless it has one), and the answer."""
    hexa = response["id"].removeprefix("resp_")
    items = []
    for n, item in enumerate(body["_input"]):
        if not item.get("id"):
            kind = INPUT_KINDS.get(item.get("type", "message"), "item")
            item = {"id": f"{kind}_{hexa}_i{n}", **item}
        items.append(item)
    return {
        "id": response["id"],
        "previous_response_id": body.get("previous_response_id") or "",
        "input": items,
        "output": response["output"],
        "response": response,
    }


async def forget(response_id: str, user_id: int) -> bool:
    """Deletes a stored answer; False if the customer has none by that id."""
    record = await recent.find(response_id)
    mine = record is not None and orjson.loads(record)["user_id"] == user_id
    deleted = await db_call(stored_delete, response_id=response_id, user_id=user_id, unwritten=mine)
    if deleted:
        await recent.forget(response_id)
    return deleted


async def expand_input(body: JSON, user_id: int) -> tuple[list[JSON], list[JSON]]:
    """The stored answers a request continues (`previous_response_id` and those before it,
    oldest first) and its own input items, each `item_reference` replaced by the item it
    names."""
    chain: list[JSON] = []
    previous = body.get("previous_response_id")
    if previous is not None:
        if not isinstance(previous, str) or not previous:
            raise GatewayError(
                400, "'previous_response_id' must be a response id.", param="previous_response_id"
            )
        chain = await chain_of(previous, user_id, "previous_response_id")
    items = body["input"]
    if isinstance(items, str):
        return chain, [{"type": "message", "role": "user", "content": items}]
    if not isinstance(items, list):
        return chain, items  # refused by the translation, with its message
    expanded: list[JSON] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "item_reference":
            expanded.append(await _referenced(item.get("id"), user_id, f"input[{i}]"))
        else:
            expanded.append(item)
    return chain, expanded


async def _referenced(item_id: Any, user_id: int, where: str) -> JSON:
    response_id = response_of_item(item_id) if isinstance(item_id, str) else None
    if response_id is not None:
        try:
            chain = await chain_of(response_id, user_id, where)
        except GatewayError:
            chain = []
        for item in conversation(chain[-1:]):
            if item.get("id") == item_id:
                return item
    raise _missing(f"Item with id '{item_id}' not found.", where)


def _missing(message: str, param: str) -> GatewayError:
    return GatewayError(404, message, param=param, code="not_found")
