"""The hot path's side of the request journal (billing.lost_requests): what a stream has
delivered, recorded where its hold is, so that a process that dies mid-stream leaves a
record and a bill for it.

What was delivered is billed as a stream cut at that point is, by the one rule for cut
streams (gateway.relay.stream.cut_stream_usage) with no usage reported: ~4 request bytes
per prompt token, one output token per content event handed to the server (counted in
the bytes sent, in any client protocol). A record is made at most once every
GATEWAYZ_JOURNAL_SECONDS, after a send, and is not waited for: a stream costs one Redis
command per period and a list append per chunk; the bytes sent are only scanned for
content events when a record is made.
"""

from __future__ import annotations

import re
import time

from django.conf import settings

from billing.pricing import usage_cost
from core.journal_entries import journal_admission, journal_delivery
from core.outcome import RequestOutcome
from gateway.guards.credit import credit_gate
from gateway.guards.limits import Admission
from gateway.http import Message, Send
from gateway.relay.stream import cut_stream_usage
from providers.catalog import Deployment

# An event that carries output, in the bytes a client is sent: non-empty text, reasoning or
# a tool call, in OpenAI chat chunks (`content`, `reasoning_content`, `tool_calls`),
# Anthropic deltas (`text`, `thinking`, `partial_json`) and Responses events (`delta`).
_CONTENT_EVENT = re.compile(
    rb'"(?:content|reasoning_content|reasoning|text|thinking|partial_json|delta)":\s*"[^"]'
    rb'|"tool_calls":\s*\['
)


class DeliveryJournal:
    __slots__ = (
        "_send",
        "admission",
        "body_bytes",
        "deployment",
        "due",
        "events",
        "outcome",
        "sent",
    )

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
        self.body_bytes = body_bytes
        self.sent: list[bytes] = []  # bodies sent since the last record, not yet scanned
        self.events = 0  # content events delivered, as of the last record
        self.due = time.monotonic() + settings.GATEWAYZ_JOURNAL_SECONDS

    async def send(self, message: Message) -> None:
        await self._send(message)
        body = message.get("body")
        if body:
            self.sent.append(body)
            if time.monotonic() >= self.due:
                self.record()

    def record(self) -> None:
        if self.outcome.priced:
            return  # settlement has begun (gateway.relay.delivery): the journal goes with the hold
        self.due = time.monotonic() + settings.GATEWAYZ_JOURNAL_SECONDS
        self.events += len(_CONTENT_EVENT.findall(b"".join(self.sent)))
        self.sent.clear()
        outcome = self.outcome
        usage = cut_stream_usage(None, self.events, self.body_bytes)
        # An estimate: never more than the hold, which bounds what the request may cost.
        cost = min(usage_cost(usage, self.deployment), outcome.hold)
        entry = journal_delivery(
            outcome,
            self.deployment.provider,
            usage.prompt_tokens,
            usage.completion_tokens,
            cost,
            time.time(),
        )
        credit_gate().record_delivery(outcome.request_id, entry, self.admission, outcome.user_id)


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
    """The journal entry admission keeps with the hold (billing.lost_requests)."""
    return journal_admission(outcome, time.time())
