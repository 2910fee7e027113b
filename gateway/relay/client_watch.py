"""Noticing a client that leaves before its answer is whole, and stopping the provider.

A client that goes away mid-stream (or before a non-stream answer arrives) must not keep a
provider generating, and billing us, for nobody. The ASGI server tells us by answering
`receive()` with `http.disconnect`; it does so too once our response is complete, which is
not a leaving. So one watcher per admitted request waits on `receive()`:

- while the request waits for a slot or a provider (`cancellable`), a leaving cancels the
  request's task: the upstream call in flight is dropped, its connection closed;
- once an answer is being relayed (`relaying`), it closes the upstream response instead,
  and the relay ends as a cut stream, billed for what was relayed (docs/request-path.md);
- once the request is settling (`ended`), nothing: settlement is never interrupted.
The task is cancelled only inside the `cancellable` section, so the CancelledError always
surfaces where `serve` expects it.

The watcher starts only once a request has run for WATCH_AFTER_SECONDS: most answers are
whole before then, and a task per request would cost them ~4% of their CPU (measured by
`make bench-instructions`). A client that leaves sooner is noticed when it starts, so a
provider is stopped at most that long after its client left.
"""

from __future__ import annotations

import asyncio

from gateway.http import Receive
from gateway.relay.upstream_attempt import UpstreamAnswer

WATCH_AFTER_SECONDS = 0.2


class ClientWatch:
    __slots__ = (
        "_answer",
        "_ended",
        "_receive",
        "_task",
        "_timer",
        "_watcher",
        "cancellable",
        "left",
    )

    def __init__(self, receive: Receive) -> None:
        self.left = False  # the client went away before its answer was whole
        self.cancellable = False
        self._ended = False
        self._answer: UpstreamAnswer | None = None
        self._receive = receive
        self._task = asyncio.current_task()
        self._watcher: asyncio.Future[None] | None = None
        self._timer = asyncio.get_running_loop().call_later(WATCH_AFTER_SECONDS, self._start)

    def _start(self) -> None:
        if not self._ended:
            self._watcher = asyncio.ensure_future(self._watch(self._receive))

    def relaying(self, answer: UpstreamAnswer) -> None:
        self._answer = answer

    def ended(self) -> None:
        """The answer is whole, or the request is being settled: a disconnect now changes
        nothing."""
        self._ended = True
        self._timer.cancel()

    async def _watch(self, receive: Receive) -> None:
        try:
            while (await receive())["type"] != "http.disconnect":
                pass
        except Exception:  # the server is going away: nothing to stop any more
            return
        if self._ended:
            return
        self.left = True
        if self._answer is not None:
            self._answer.response.close()  # the provider stops; the relay sees a cut
        elif self.cancellable and self._task is not None:
            self._task.cancel()
