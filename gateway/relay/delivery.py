"""An answer on its way to the client, and the request's settlement, begun before the client
is told its cost (docs/request-path.md, "A crash leaves a record")."""

from __future__ import annotations

import time

from core.outcome import RequestOutcome
from gateway.guards.credit import credit_gate
from gateway.guards.credit_local import Settling
from gateway.guards.limits import Admission
from gateway.http import (
    Message,
    Send,
)
from gateway.metrics import request_record
from gateway.relay.client_watch import ClientWatch

CLIENT_CLOSED = "client_closed"  # the request log's error type when the client left first


class Delivery:
    """An answer on its way to the client. Watches what the relay sends, so a failure can
    still end the response properly; and begins the request's settlement before the first
    message that follows its pricing (`RequestOutcome.charge`): the cost a client is told
    (`x-gatewayz-cost`, a stream's `usage.cost`) has its SETTLE written to Redis before it
    leaves, so a process killed in between leaves the request charged, never a client told
    a cost nobody was charged (docs/request-path.md, "A crash leaves a record"). The reply
    is awaited after the answer is sent: no round trip is added to it."""

    __slots__ = (
        "_send",
        "_settling",
        "admission",
        "ended",
        "family",
        "outcome",
        "settled",
        "started",
        "started_at",
        "watch",
    )

    def __init__(
        self,
        send: Send,
        outcome: RequestOutcome,
        watch: ClientWatch,
        admission: Admission,
        family: str,
        started_at: float,
    ) -> None:
        self._send = send
        self.outcome, self.watch, self.admission = outcome, watch, admission
        self.family, self.started_at = family, started_at
        self.started = self.ended = self.settled = False
        self._settling: Settling | None = None

    async def send(self, message: Message) -> None:
        if self.outcome.priced and not self.settled:
            self._settle_begin()
        if message["type"] == "http.response.start":
            self.started = True
        elif not message.get("more_body", False):
            self.ended = True
        await self._send(message)

    def _settle_begin(self) -> None:
        self.settled = True
        watch, outcome = self.watch, self.outcome
        watch.ended()  # a settlement is never interrupted
        if watch.left:
            # Billed as a cut stream (the relay's rule); the provider is not to blame.
            outcome.status, outcome.error_type = 499, CLIENT_CLOSED
        outcome.total_latency_ms = ms_since(self.started_at)
        request_record(outcome, self.family)
        self._settling = credit_gate().settle_begin(outcome, self.admission)

    async def settle(self) -> None:
        """Settles the request (once), or finishes the settlement `send` began."""
        if not self.settled:
            self._settle_begin()
        settling, self._settling = self._settling, None
        if settling is not None:
            await settling


def ms_since(start: float) -> float:
    return (time.perf_counter() - start) * 1000
