"""The hot path's wire over a Redis Cluster (REDIS_CLUSTER_NODES, docs/deployment.md,
"Cluster").

A Cluster splits the keys into 16,384 slots, each served by one master. This wire learns
which master serves which slot (`CLUSTER SLOTS`, asked of the nodes it knows, then of the
seeds), keeps one multiplexed RedisWire per master (each with its own WAIT group commit,
core.redis_wire, "Replicas"), and sends each command to the master of its first key's slot.
The money scripts' keys of one request share a hash tag (core.redis_groups), so each
script runs whole on one master.

When the map is out of date, Redis says so and the command did not run, so it is resent:
`MOVED` (the slot has a new master for good: the map is asked again, the command goes
there), `ASK` (the slot is being migrated and this key has left already: ASKING then the
command, adjacent on the target's connection, the map unchanged). `TRYAGAIN` (a
multi-key command mid-migration) is retried after a moment. `CLUSTERDOWN` (a slot without a
master, as during a failover) and a lost connection are Redis being away
(RedisWireError): the caller falls back as it does for one server, and the map is asked
again on the next call, which finds the replica promoted in the master's place.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import hiredis
from redis.crc import key_slot

from core.redis_topology import cluster_seeds
from core.redis_wire import Arg, Endpoint, RedisWire, RedisWireError, Wire

SLOTS = 16384
REDIRECTS = 5  # MOVED/ASK followed at most this many times for one command
TRYAGAIN_SECONDS = 0.05

Address = tuple[str, int]
Send = Callable[[RedisWire, bool], Awaitable[Any]]

# Commands whose key is not their first argument, and those without a key.
_STREAMS = {b"XREAD", b"XREADGROUP"}
_SCRIPTS = {b"EVAL", b"EVALSHA"}
_KEYLESS = {b"PING", b"SCRIPT", b"CLUSTER", b"INFO", b"WAIT", b"ROLE", b"TIME"}


def _upper(arg: Arg) -> bytes:
    return (arg if isinstance(arg, bytes) else str(arg).encode()).upper()


def command_key(args: Sequence[Arg]) -> Arg | None:
    """The key that names the command's slot, or None for a command without one."""
    name = _upper(args[0])
    if name in _SCRIPTS:
        return args[3] if int(args[2]) else None
    if name in _STREAMS:
        at = [_upper(arg) for arg in args].index(b"STREAMS")
        return args[at + 1]
    if name == b"XGROUP":
        return args[2]
    if name in _KEYLESS or len(args) < 2:
        return None
    return args[1]


def slot_of(key: Arg) -> int:
    return int(key_slot(key if isinstance(key, bytes) else str(key).encode()))


def _redirect(error: hiredis.ReplyError) -> tuple[str, int, Address] | None:
    """("MOVED"/"ASK", slot, address) from a redirection reply, else None."""
    kind, _, rest = str(error).partition(" ")
    if kind not in ("MOVED", "ASK"):
        return None
    slot, _, where = rest.partition(" ")
    host, _, port = where.rpartition(":")
    return kind, int(slot), (host, int(port))


def _rerouted(error: hiredis.ReplyError) -> bool:
    """A reply about where the command goes, or whether the Cluster can take it now: the
    command did not run."""
    return str(error).startswith(("MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"))


class ClusterWire:
    """RedisWire's calls (core.redis_wire.Wire) over the masters of a Cluster."""

    def __init__(self, url: str, seeds: Sequence[Address], *, timeout: float = 5.0) -> None:
        if Endpoint.from_url(url).db:
            raise ValueError("a Redis Cluster has database 0 only: REDIS_URL must name /0")
        self.url = url
        self.seeds = list(seeds)
        self.timeout = timeout
        self._nodes: dict[Address, RedisWire] = {}
        self._slots: list[Address] | None = None
        self._mapping: asyncio.Future[list[Address]] | None = None

    # --- the calls -----------------------------------------------------------------------
    async def call(self, *args: Arg, durable: bool = False) -> Any:
        if _upper(args[0]) == b"PING":
            return await self._ping_all()
        return await self._routed(
            command_key(args),
            lambda node, asking: node.call(*args, durable=durable, asking=asking),
        )

    def call_now(self, *args: Arg) -> asyncio.Future[Any] | None:
        key = command_key(args)
        node = self._connected_node(key)
        sent = node.call_now(*args) if node is not None else None
        if sent is None:
            return None
        return self._followed(sent, key, lambda node, asking: node.call(*args, asking=asking))

    async def evalsha(self, source: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        return await self._routed(
            keys[0] if keys else None,
            lambda node, asking: node.evalsha(source, keys, args, asking=asking),
        )

    def evalsha_now(
        self, source: str, keys: Sequence[Arg], args: Sequence[Arg]
    ) -> asyncio.Future[Any] | None:
        """Written to its master's socket before this returns, as RedisWire's; a redirection
        answered to it is followed as `evalsha` would (the script did not run)."""
        key = keys[0] if keys else None
        node = self._connected_node(key)
        sent = node.evalsha_now(source, keys, args) if node is not None else None
        if sent is None:
            return None
        return self._followed(
            sent, key, lambda node, asking: node.evalsha(source, keys, args, asking=asking)
        )

    async def close(self) -> None:
        if self._mapping is not None:
            self._mapping.cancel()
            self._mapping = None
        nodes, self._nodes = list(self._nodes.values()), {}
        for node in nodes:
            node.drop()
        self._slots = None

    async def _ping_all(self) -> bytes:
        """PONG once every master answers: Redis is back for the gateway only when every
        customer's credit is reachable (a probe answered by one master, while another's
        slots wait for their replica to take over, would bring the gateway back too soon)."""
        slots = await self._map()  # asked afresh: a failover may have changed the masters
        try:
            await asyncio.gather(*(self._wire(address).call("PING") for address in set(slots)))
        except RedisWireError:
            self._slots = None
            raise
        return b"PONG"

    # --- routing -------------------------------------------------------------------------
    async def _routed(
        self, key: Arg | None, send: Send, first: hiredis.ReplyError | None = None
    ) -> Any:
        """Sends to the key's master, following redirections; `first`: the reply to an
        attempt already sent."""
        target: RedisWire | None = None
        asking = False
        error = first
        for _ in range(REDIRECTS + 1):
            if error is not None:
                target, asking = await self._after(error, key)
                error = None
            node = target or await self._node(key)
            try:
                return await send(node, asking)
            except hiredis.ReplyError as exc:
                if not _rerouted(exc):
                    raise  # the command's own error (a script's, a wrong type)
                error = exc
            except RedisWireError:
                self._slots = None  # a master lost: the next call asks the cluster again
                raise
        raise RedisWireError(f"Redis Cluster: still redirected after {REDIRECTS} tries: {error}")

    async def _after(
        self, error: hiredis.ReplyError, key: Arg | None
    ) -> tuple[RedisWire | None, bool]:
        """Where to resend after this reply (node, asking), or raises it."""
        redirect = _redirect(error)
        if redirect is not None:
            kind, slot, address = redirect
            if kind == "MOVED":
                if self._slots is not None:
                    self._slots[slot] = address  # meanwhile; the whole map is asked again
                self._refresh_soon()
                return self._wire(address), False
            return self._wire(address), True
        text = str(error)
        if text.startswith("TRYAGAIN"):
            await asyncio.sleep(TRYAGAIN_SECONDS)
            return None, False
        if text.startswith("CLUSTERDOWN"):
            self._slots = None
            raise RedisWireError(f"Redis Cluster: {text}") from error
        raise error

    def _followed(
        self, sent: asyncio.Future[Any], key: Arg | None, send: Send
    ) -> asyncio.Future[Any]:
        """`sent`'s reply, or, if Redis redirected it, the redirected command's. Callbacks,
        not a task: a task per call would cost every settlement; one is made only to
        follow a redirection."""
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

        def replied(done: asyncio.Future[Any]) -> None:
            if answer.done():
                return
            if done.cancelled():
                answer.cancel()
                return
            error = done.exception()
            if error is None:
                answer.set_result(done.result())
            elif isinstance(error, hiredis.ReplyError) and _rerouted(error):
                again = asyncio.ensure_future(self._routed(key, send, first=error))
                again.add_done_callback(lambda followed: _pass_on(followed, answer))
            else:
                if isinstance(error, RedisWireError):
                    self._slots = None
                answer.set_exception(error)

        sent.add_done_callback(replied)
        return answer

    def _connected_node(self, key: Arg | None) -> RedisWire | None:
        """The key's master if the map is known and its connection is open (the `_now`
        calls write at once or not at all)."""
        if self._slots is None:
            return None
        node = self._nodes.get(self._slots[slot_of(key)] if key is not None else self._any())
        return node if node is not None and node.connected else None

    async def _node(self, key: Arg | None) -> RedisWire:
        slots = self._slots if self._slots is not None else await self._map()
        return self._wire(slots[slot_of(key)] if key is not None else self._any())

    def _any(self) -> Address:
        assert self._slots is not None
        return self._slots[0]

    def _wire(self, address: Address) -> RedisWire:
        node = self._nodes.get(address)
        if node is None:
            node = self._nodes[address] = RedisWire(self.url, timeout=self.timeout, address=address)
        return node

    # --- the slot map --------------------------------------------------------------------
    def _refresh_soon(self) -> None:
        if self._mapping is None:
            self._mapping = asyncio.ensure_future(self._ask_map())
            self._mapping.add_done_callback(self._mapped)

    async def _map(self) -> list[Address]:
        # Concurrent callers share one question.
        self._refresh_soon()
        assert self._mapping is not None
        return await asyncio.shield(self._mapping)

    def _mapped(self, asked: asyncio.Future[list[Address]]) -> None:
        if self._mapping is asked:
            self._mapping = None
        if asked.cancelled() or asked.exception() is not None:
            return
        slots = asked.result()
        self._slots = slots
        masters = set(slots)
        for address in [a for a in self._nodes if a not in masters]:
            # No longer a master (a failover demoted it, or it left): its connection goes.
            self._nodes.pop(address).drop()

    async def _ask_map(self) -> list[Address]:
        """Slot → master, from the first node that answers (the known masters, then the
        seeds)."""
        errors = []
        candidates = list(dict.fromkeys([*self._nodes, *self.seeds]))
        for address in candidates:
            asker = self._nodes.get(address) or RedisWire(
                self.url, timeout=self.timeout, address=address
            )
            try:
                reply = await asker.call("CLUSTER", "SLOTS")
            except (RedisWireError, hiredis.ReplyError) as exc:
                errors.append(f"{address[0]}:{address[1]}: {exc}")
                continue
            finally:
                if address not in self._nodes:
                    asker.drop()
            slots = _slot_map(reply, address)
            if slots is not None:
                return slots
            errors.append(f"{address[0]}:{address[1]}: not every slot has a master")
        raise RedisWireError("Redis Cluster: no node gave the slot map (" + "; ".join(errors) + ")")


def _pass_on(done: asyncio.Future[Any], answer: asyncio.Future[Any]) -> None:
    if answer.done():
        if not done.cancelled():
            done.exception()  # retrieved: nobody waits for it any more
    elif done.cancelled():
        answer.cancel()
    elif (error := done.exception()) is not None:
        answer.set_exception(error)
    else:
        answer.set_result(done.result())


def _slot_map(reply: list[Any], asked: Address) -> list[Address] | None:
    """CLUSTER SLOTS' [[first, last, [host, port, id, ...], replicas...], ...] as a list of
    16,384 master addresses; None while a slot has none (the cluster is down or forming)."""
    slots: list[Address | None] = [None] * SLOTS
    for first, last, master, *_ in reply:
        host = master[0].decode() if master[0] else asked[0]  # "" means the node asked
        address = (host, int(master[1]))
        slots[first : last + 1] = [address] * (last - first + 1)
    if any(address is None for address in slots):
        return None
    return [address for address in slots if address is not None]


def hot_wire(url: str, *, timeout: float) -> Wire:
    """The hot path's wire to Redis: over the Cluster when there is one, else to the one
    server (or the Sentinels' master)."""
    seeds = cluster_seeds()
    if seeds:
        return ClusterWire(url, seeds, timeout=timeout)
    return RedisWire(url, timeout=timeout)
