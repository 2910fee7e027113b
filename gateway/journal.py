"""The hot path's side of the request journal (monitoring.journal): what a stream has
delivered, recorded where its hold is, so that a process that dies mid-stream leaves a
record and a bill for it.

The count is taken from what is handed to the server, one token per SSE event (`data:`
line) sent, as a cut stream is estimated when its provider sent no usage; the prompt is
estimated at ~4 request bytes per token. A record is made at most once every
GATEWAYZ_JOURNAL_SECONDS, after a send, and is not waited for: a stream costs one Redis
command per period, none per chunk, and a stream shorter than the period costs none.
"""

from __future__ import annotations

import time

from django.conf import settings

from billing.pricing import Usage, usage_cost
from gateway.credit import credit_gate
from gateway.http import Message, Send
from gateway.limits import Admission
from monitoring.journal import journal_admission, journal_delivery
from monitoring.services import RequestOutcome
from providers.catalog import Deployment


class DeliveryJournal:
    __slots__ = ("_send", "admission", "deployment", "due", "events", "outcome", "prompt")

    def __init__(
        self,
        send: Send,
        outcome: RequestOutcome,
        deployment: Deployment,
        body_bytes: int,
        admission: Admission,
    ) -> None:
        self._send = send
        self.outcome = outcome
        self.deployment = deployment
        self.admission = admission
        self.prompt = body_bytes // 4
        self.events = 0
        self.due = time.monotonic() + settings.GATEWAYZ_JOURNAL_SECONDS

    async def send(self, message: Message) -> None:
        await self._send(message)
        body = message.get("body")
        if body:
            self.events += body.count(b"data:")
            if time.monotonic() >= self.due:
                self.record()

    def record(self) -> None:
        self.due = time.monotonic() + settings.GATEWAYZ_JOURNAL_SECONDS
        outcome = self.outcome
        usage = Usage(prompt_tokens=self.prompt, completion_tokens=self.events)
        # An estimate: never more than the hold, which bounds what the request may cost.
        cost = min(usage_cost(usage, self.deployment), outcome.hold)
        entry = journal_delivery(
            outcome, self.deployment.provider, self.prompt, self.events, cost, time.time()
        )
        credit_gate().record_delivery(outcome.request_id, entry, self.admission)


def delivery_watch(
    send: Send,
    outcome: RequestOutcome,
    deployment: Deployment,
    body_bytes: int,
    admission: Admission | None,
) -> Send:
    """`send`, watched for what it delivers if the answer is a stream (else unchanged)."""
    if not outcome.stream or admission is None:
        return send
    return DeliveryJournal(send, outcome, deployment, body_bytes, admission).send


def admission_entry(outcome: RequestOutcome) -> bytes:
    """The journal entry admission keeps with the hold (monitoring.journal)."""
    return journal_admission(outcome, time.time())
