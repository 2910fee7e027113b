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

from mockserver.fal.answer import IMAGE_SIZES
from mockserver.fal.server import create_app

__all__ = ["IMAGE_SIZES", "create_app"]
