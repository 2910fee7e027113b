"""A fast, faithful local mock of the OpenAI chat completions API.

It is a bare ASGI callable (no framework, no Django) because it sits upstream
of the gateway in benchmarks: every microsecond spent here is noise there.

Behaviour is deterministic so tests can assert exact figures:

* the reply is ``"You said: " + <text of the last user message>`` (list
  contents are reduced to their text parts joined with a single space);
* ``prompt_tokens`` = sum over messages of (words in its text + 3);
* ``completion_tokens`` = words in the reply (tool calls: words in the
  arguments JSON + 5), times ``n``;
* content parts and tools carrying Anthropic's ``cache_control`` are cached the way
  OpenRouter caches them for the models it caches explicitly (``mockserver.prompt_cache``):
  the first request with a given prefix writes it, a repeat reads it;
  ``prompt_tokens_details`` then says ``cached_tokens`` (read) and ``cache_write_tokens``
  (written), both part of ``prompt_tokens``. A directive's ``cached_tokens`` overrides it.

Faults are switched per request (so tests can run in parallel) by a last user
message of the form ``!mock {"json": "object"}``; see ``common.CHAT_DIRECTIVES``
for the keys (an unknown key or a wrong type is a 400, so typos fail loudly).
Streams send one content chunk per word; ``chunks`` with ``reply`` makes exactly
that many (whole words when there are enough, else characters).

``cut_after`` ends a stream by returning from the ASGI callable without
``more_body: False``: uvicorn then closes the TCP connection without the
terminating chunk, so clients see a dropped connection (httpx raises
``RemoteProtocolError: incomplete chunked read``), not a clean end of body.
``malformed`` answers 200 with a body cut mid-JSON (a stream: one unparsable event,
then the cut); ``first_chunk_delay`` holds a stream's first chunk after its headers.
``only_model`` and ``times``/``key`` narrow which requests meet the faults
(``common.fault_scope``).
"""

from mockserver.openai.errors import BadRequest, error_body, fault_body, send_json
from mockserver.openai.server import app, auth_error, create_app

__all__ = ["BadRequest", "app", "auth_error", "create_app", "error_body", "fault_body", "send_json"]
