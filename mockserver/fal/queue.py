"""Fal's queue: jobs submitted, polled through IN_QUEUE and IN_PROGRESS to COMPLETED (one
state per status poll), their result, logs and cancellation, and the response, status and
cancel URLs built on ``owner/app``. It holds the Fal mock's only state (the jobs of one
server process), so it stands apart from the stateless synchronous path."""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from mockserver.common import Scope, Send, base_url, query_param
from mockserver.fal.answer import SECONDS_PER_IMAGE, result_of
from mockserver.fal.errors import FalError, fault, send_json
from mockserver.fal.request import parse_input

NAMESPACES = ("workflows", "comfy")
_MAX_JOBS = 10_000


@dataclass
class _Job:
    app: str
    result: dict[str, Any] | None
    error: tuple[int, object] | None
    in_queue: int
    in_progress: int
    polls: int = 0
    cancelled: bool = False
    started: float = field(default_factory=time.time)

    def state(self) -> str:
        if self.cancelled or self.polls > self.in_queue + self.in_progress:
            return "COMPLETED"
        return "IN_QUEUE" if self.polls <= self.in_queue else "IN_PROGRESS"


def _app_id(segments: list[str]) -> str:
    """``owner/app`` (or ``namespace/owner/app``): what the queue's URLs are built on."""
    width = 3 if segments[0] in NAMESPACES else 2
    return "/".join(segments[:width])


def _urls(scope: Scope, app: str, request_id: str) -> dict[str, str]:
    base = f"{base_url(scope)}/queue/{app}/requests/{request_id}"
    return {"response_url": base, "status_url": f"{base}/status", "cancel_url": f"{base}/cancel"}


def _logs(scope: Scope, job: _Job) -> list[dict[str, str]] | None:
    if query_param(scope, "logs") not in ("1", "true", "True"):
        return None
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(job.started))
    lines = [] if job.state() == "IN_QUEUE" else ["Generating images"]
    return [{"message": m, "level": "INFO", "source": "user", "timestamp": stamp} for m in lines]


class Queue:
    """The queued jobs of one server process, oldest evicted past ``_MAX_JOBS``."""

    def __init__(self) -> None:
        self.jobs: OrderedDict[str, _Job] = OrderedDict()

    async def submit(self, scope: Scope, segments: list[str], raw: bytes, send: Send) -> None:
        inp = parse_input(raw)
        await fault(inp.directive)
        d = inp.directive
        error: tuple[int, object] | None = None
        result = None
        if "job_status" in d:
            error = (d["job_status"], d.get("message", f"mock fault {d['job_status']}"))
        else:
            # The queue takes any input: the model rejects it when the job runs.
            try:
                result = result_of(scope, inp)
            except FalError as exc:
                error = (exc.status, exc.detail)
        app = _app_id(segments)
        request_id = str(uuid.uuid4())
        job = _Job(
            app, result, error, max(d.get("in_queue", 1), 0), max(d.get("in_progress", 1), 0)
        )
        self.jobs[request_id] = job
        if len(self.jobs) > _MAX_JOBS:
            self.jobs.popitem(last=False)
        payload = {
            "status": "IN_QUEUE",
            "request_id": request_id,
            **_urls(scope, app, request_id),
            "queue_position": job.in_queue,
        }
        await send_json(send, 200, payload, [(b"x-fal-request-id", request_id.encode())])

    def _job(self, app: str, request_id: str) -> _Job:
        job = self.jobs.get(request_id)
        if job is None or job.app != app:
            raise FalError(404, "Request not found")
        return job

    async def status(self, scope: Scope, app: str, request_id: str, send: Send) -> None:
        job = self._job(app, request_id)
        job.polls += 1
        state = job.state()
        payload: dict[str, Any] = {
            "status": state,
            "request_id": request_id,
            **_urls(scope, app, request_id),
        }
        if state == "IN_QUEUE":
            payload["queue_position"] = job.in_queue - job.polls
        payload["logs"] = _logs(scope, job)
        if state == "COMPLETED":
            n = len(job.result["images"]) if job.result else 1
            payload["metrics"] = {"inference_time": round(SECONDS_PER_IMAGE * n, 3)}
            if job.cancelled:
                payload["error"], payload["error_type"] = (
                    "Request was cancelled",
                    "client_cancelled",
                )
            elif job.error is not None:
                detail = job.error[1]
                payload["error"] = (
                    detail if isinstance(detail, str) else orjson.dumps(detail).decode()
                )
        await send_json(send, 200, payload)

    async def result(self, app: str, request_id: str, send: Send) -> None:
        job = self._job(app, request_id)
        if job.state() != "COMPLETED":
            raise FalError(400, "Request is still in progress")
        if job.cancelled:
            raise FalError(
                499, "Request was cancelled", [(b"x-fal-error-type", b"client_cancelled")]
            )
        if job.error is not None:
            raise FalError(*job.error)
        await send_json(send, 200, job.result, [(b"x-fal-request-id", request_id.encode())])

    async def cancel(self, app: str, request_id: str, send: Send) -> None:
        job = self.jobs.get(request_id)
        if job is None or job.app != app:
            await send_json(send, 404, {"status": "NOT_FOUND"})
            return
        if job.state() == "COMPLETED":
            await send_json(send, 400, {"status": "ALREADY_COMPLETED"})
            return
        job.cancelled = True
        await send_json(send, 202, {"status": "CANCELLATION_REQUESTED"})
