"""A deterministic mock of Fal's model APIs, synchronous and queued, for image models.

Synchronous (fal.run): ``POST /{owner}/{app}[/{path}]`` answers the result directly.
Queue (queue.fal.run, here under ``/queue``): ``POST /queue/{owner}/{app}[/{path}]``
submits and answers ``{status: IN_QUEUE, request_id, response_url, status_url,
cancel_url, queue_position}``; as in Fal, those URLs name only ``{owner}/{app}`` (a
``workflows/`` or ``comfy/`` namespace adds one segment), never the sub-path.
``GET …/requests/{id}/status[?logs=1]`` reports IN_QUEUE (with ``queue_position``),
IN_PROGRESS, then COMPLETED (with ``metrics.inference_time``), ``logs`` being null unless
asked for; ``GET …/requests/{id}`` answers the result once COMPLETED (400 "Request is
still in progress" before); ``PUT …/requests/{id}/cancel`` answers 202
CANCELLATION_REQUESTED, or 400 ALREADY_COMPLETED.

Auth is ``Authorization: Key <key>``. Errors are ``{"detail": …}``: a string for request
errors, a list of ``{loc, msg, type}`` for input validation (422), as Fal documents.

Deterministic rules:

* the queue moves one state per status poll: ``in_queue`` polls report IN_QUEUE
  (default 1, ``queue_position`` counting down to 0), then ``in_progress`` polls
  IN_PROGRESS (default 1), then COMPLETED;
* ``prompt`` is required; ``image_size`` is a preset (square_hd 1024x1024, square
  512x512, portrait_4_3 768x1024, portrait_16_9 576x1024, landscape_4_3 1024x768 (the
  default), landscape_16_9 1024x576) or ``{width, height}``; ``num_images`` 1-4;
* ``seed`` defaults to a hash of the prompt; image i is a PNG of one colour hashed from
  (prompt, seed, i), its URL ``<mock>/files/<name>.png`` (served by this mock), or a
  ``data:`` URI with ``sync_mode``; ``timings.inference`` is 0.1 s per image.

Directive keys (prompt ``!mock {...}``): status, retry_after, message, delay (apply to
the call itself, sync or submit), in_queue, in_progress, job_status (the queued job
completes in error: its status carries ``error``, its result answers that status with
``message``), nsfw (``has_nsfw_concepts`` all true).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import orjson

from mockserver.common import (
    ASGIApp,
    DirectiveError,
    DirectiveTypes,
    Receive,
    Scope,
    Send,
    base_url,
    directive_in,
    header,
    key_matches,
    query_param,
    read_body,
    send_bytes,
)
from mockserver.files import MAX_SIDE, colour_of, file_url, png

_JSON = (b"content-type", b"application/json")
_DIRECTIVE_TYPES: DirectiveTypes = {
    "status": (int,),
    "retry_after": (int,),
    "message": (str,),
    "delay": (int, float),
    "in_queue": (int,),
    "in_progress": (int,),
    "job_status": (int,),
    "nsfw": (bool,),
}
IMAGE_SIZES = {
    "square_hd": (1024, 1024),
    "square": (512, 512),
    "portrait_4_3": (768, 1024),
    "portrait_16_9": (576, 1024),
    "landscape_4_3": (1024, 768),
    "landscape_16_9": (1024, 576),
}
_NAMESPACES = ("workflows", "comfy")
_MAX_JOBS = 10_000
_SECONDS_PER_IMAGE = 0.1


class FalError(Exception):
    def __init__(
        self, status: int, detail: object, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(str(detail))
        self.status, self.detail, self.headers = status, detail, headers or []


def _validation(loc: str, msg: str, type_: str) -> FalError:
    return FalError(422, [{"loc": ["body", loc], "msg": msg, "type": type_}])


async def _send_json(
    send: Send, status: int, payload: object, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send_bytes(send, status, orjson.dumps(payload), [_JSON, *(extra or [])])


async def send_error(send: Send, exc: FalError) -> None:
    # Fal marks what may succeed if sent again.
    retryable = b"true" if exc.status in (429, 503, 504) or exc.status >= 500 else b"false"
    await _send_json(
        send, exc.status, {"detail": exc.detail}, [(b"x-fal-retryable", retryable), *exc.headers]
    )


# ---------------------------------------------------------------- generation


def _size(value: object) -> tuple[int, int]:
    if value is None:
        return IMAGE_SIZES["landscape_4_3"]
    if isinstance(value, str):
        if value not in IMAGE_SIZES:
            presets = ", ".join(f"'{p}'" for p in IMAGE_SIZES)
            raise _validation("image_size", f"Input should be {presets}", "literal_error")
        return IMAGE_SIZES[value]
    if isinstance(value, dict):
        width, height = value.get("width"), value.get("height")
        for name, side in (("width", width), ("height", height)):
            if not isinstance(side, int) or isinstance(side, bool) or not 1 <= side <= MAX_SIDE:
                raise FalError(
                    422,
                    [
                        {
                            "loc": ["body", "image_size", name],
                            "msg": f"Input should be less than or equal to {MAX_SIDE}",
                            "type": "less_than_equal",
                        }
                    ],
                )
        assert isinstance(width, int) and isinstance(height, int)
        return width, height
    raise _validation("image_size", "Input should be a valid dictionary or string", "model_type")


@dataclass
class _Input:
    body: dict[str, Any]
    prompt: str
    directive: dict[str, Any]


def parse_input(raw: bytes) -> _Input:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise FalError(
            422, [{"loc": ["body"], "msg": "JSON decode error", "type": "json_invalid"}]
        ) from None
    if not isinstance(body, dict):
        raise _validation("body", "Input should be a valid dictionary", "dict_type")
    prompt = body.get("prompt")
    if prompt is None:
        raise _validation("prompt", "Field required", "missing")
    if not isinstance(prompt, str):
        raise _validation("prompt", "Input should be a valid string", "string_type")
    try:
        directive = directive_in(prompt, _DIRECTIVE_TYPES)
    except DirectiveError as exc:
        raise FalError(400, str(exc)) from None
    return _Input(body, prompt, directive)


def result_of(scope: Scope, inp: _Input) -> dict[str, Any]:
    body = inp.body
    width, height = _size(body.get("image_size"))
    n = body.get("num_images", 1)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 4:
        raise _validation(
            "num_images", "Input should be less than or equal to 4", "less_than_equal"
        )
    seed = body.get("seed")
    if seed is None:
        seed = int.from_bytes(hashlib.sha256(inp.prompt.encode()).digest()[:4], "big") >> 1
    elif not isinstance(seed, int) or isinstance(seed, bool):
        raise _validation("seed", "Input should be a valid integer", "int_type")
    images = []
    for i in range(n):
        colour = colour_of(inp.prompt, seed, i)
        if body.get("sync_mode") is True:
            url = "data:image/png;base64," + base64.b64encode(png(width, height, colour)).decode()
        else:
            url = file_url(scope, width, height, colour)
        images.append({"url": url, "width": width, "height": height, "content_type": "image/png"})
    return {
        "images": images,
        "timings": {"inference": round(_SECONDS_PER_IMAGE * n, 3)},
        "seed": seed,
        "has_nsfw_concepts": [inp.directive.get("nsfw", False)] * n,
        "prompt": inp.prompt,
    }


async def _fault(d: dict[str, Any]) -> None:
    """Applies ``delay`` and ``status`` (as a raised FalError)."""
    if "delay" in d:
        await asyncio.sleep(d["delay"])
    status = d.get("status")
    if status is not None:
        extra = [(b"retry-after", str(d["retry_after"]).encode())] if "retry_after" in d else []
        raise FalError(status, d.get("message", f"mock fault {status}"), extra)


# --------------------------------------------------------------------- queue


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
    width = 3 if segments[0] in _NAMESPACES else 2
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
        await _fault(inp.directive)
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
        await _send_json(send, 200, payload, [(b"x-fal-request-id", request_id.encode())])

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
            payload["metrics"] = {"inference_time": round(_SECONDS_PER_IMAGE * n, 3)}
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
        await _send_json(send, 200, payload)

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
        await _send_json(send, 200, job.result, [(b"x-fal-request-id", request_id.encode())])

    async def cancel(self, app: str, request_id: str, send: Send) -> None:
        job = self.jobs.get(request_id)
        if job is None or job.app != app:
            await _send_json(send, 404, {"status": "NOT_FOUND"})
            return
        if job.state() == "COMPLETED":
            await _send_json(send, 400, {"status": "ALREADY_COMPLETED"})
            return
        job.cancelled = True
        await _send_json(send, 202, {"status": "CANCELLATION_REQUESTED"})


# ------------------------------------------------------------------------ app


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app; with ``api_key`` only ``Key <api_key>`` is let in."""
    expected = api_key.encode() if api_key else None
    queue = Queue()

    def auth_error(scope: Scope) -> str | None:
        value = header(scope, b"authorization")
        if value is None or value[:4].lower() != b"key ":
            return "Missing authorization header"
        if not key_matches(value[4:].strip(), expected):
            return "No user found for Key ID and Secret"
        return None

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        queued = path.startswith("/queue/")
        segments = [s for s in path.removeprefix("/queue" if queued else "").split("/") if s]
        if "requests" in segments and queued:
            i = segments.index("requests")
            app, rest = "/".join(segments[:i]), segments[i + 1 :]
            if len(rest) == 1 and method == "GET":
                return await queue.result(app, rest[0], send)
            if len(rest) == 2 and rest[1] == "status" and method == "GET":
                return await queue.status(scope, app, rest[0], send)
            if len(rest) == 2 and rest[1] == "cancel" and method == "PUT":
                return await queue.cancel(app, rest[0], send)
            raise FalError(405, "Method Not Allowed")
        if method != "POST" or len(segments) < 2 + (segments[0] in _NAMESPACES if segments else 0):
            raise FalError(404, "Not Found")
        raw = await read_body(receive)
        if raw is None:
            return None
        if queued:
            return await queue.submit(scope, segments, raw, send)
        inp = parse_input(raw)
        await _fault(inp.directive)
        result = result_of(scope, inp)
        await _send_json(send, 200, result, [(b"x-fal-request-id", str(uuid.uuid4()).encode())])
        return None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        denied = auth_error(scope)
        try:
            if denied is not None:
                raise FalError(401, denied)
            await route(scope, receive, send)
        except FalError as exc:
            await send_error(send, exc)

    return app
