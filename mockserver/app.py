"""One ASGI app speaking every upstream protocol the gateway calls, routed by path.

| path                                              | protocol (module)              |
|---------------------------------------------------|--------------------------------|
| POST /v1/chat/completions, GET /health            | OpenAI chat (``openai``)       |
| GET /v1/models                                    | OpenAI; Anthropic's list when  |
|                                                   | the request has anthropic-version |
| POST /v1/messages, /v1/messages/count_tokens      | Anthropic (``anthropic``)      |
| POST /v1/embeddings, /v1/images/generations       | OpenAI (``openai_media``)      |
| GET /files/<name>.png                             | generated images (``files``)   |
| POST /v1beta/models/{m}:{method}, /v1/models/…:…, | Gemini / Vertex AI express     |
| /v1/publishers/google/models/…:…, /v1beta1/…      | (``gemini``)                   |
| /queue/{owner}/{app}[/…]                          | Fal queue (``fal``)            |
| POST /{owner}/{app}[/…] (any other first segment) | Fal synchronous (``fal``)      |
| anything else                                     | OpenAI's 404 / 405             |

The chat path is tested first and alone: the benchmarks' upstream pays one string
comparison for the other protocols. One ``api_key`` guards every protocol, each with
its own header (Bearer, x-api-key, x-goog-api-key / ?key=, Key).
"""

from __future__ import annotations

import os

import orjson

from mockserver import anthropic, fal, files, gemini, openai, openai_media
from mockserver.common import ASGIApp, Receive, Scope, Send, departures, header, send_bytes

# First path segments that belong to another protocol, so never to a Fal app.
_RESERVED = frozenset(("v1", "v1beta", "v1beta1", "files", "queue", "health"))
_ANTHROPIC = frozenset(("/v1/messages", "/v1/messages/count_tokens"))
_MEDIA = frozenset(("/v1/embeddings", "/v1/images/generations"))


def _is_gemini(path: str) -> bool:
    if path.startswith(("/v1beta/", "/v1beta1/")):
        return True
    # Under /v1 Gemini's paths are the ones with a ":method" suffix.
    return path.startswith(("/v1/models/", "/v1/publishers/")) and ":" in path


def _is_fal(scope: Scope) -> bool:
    first = scope["path"][1:].partition("/")[0]
    return scope["method"] == "POST" and first not in _RESERVED and "/" in scope["path"][1:]


async def _departure(tag: str, send: Send) -> None:
    """How far a watched answer got before its client left (common.Departure): the mock's
    own test aid, not a provider's API."""
    seen = departures.get(tag)
    body = orjson.dumps(seen.view() if seen is not None else None)
    headers = [(b"content-type", b"application/json")]
    await send_bytes(send, 200 if seen is not None else 404, body, headers)


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the router; with ``api_key`` every protocol lets in only that key."""
    openai_app = openai.create_app(api_key)
    anthropic_app = anthropic.create_app(api_key)
    gemini_app = gemini.create_app(api_key)
    media_app = openai_media.create_app(api_key)
    fal_app = fal.create_app(api_key)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await openai_app(scope, receive, send)  # lifespan
            return
        path: str = scope["path"]
        if path == "/v1/chat/completions":
            await openai_app(scope, receive, send)
        elif path.startswith("/mock/departures/"):
            await _departure(path.rpartition("/")[2], send)
        elif path in _ANTHROPIC or (
            path == "/v1/models" and header(scope, b"anthropic-version") is not None
        ):
            await anthropic_app(scope, receive, send)
        elif path in _MEDIA:
            await media_app(scope, receive, send)
        elif path.startswith("/files/"):
            await files.serve(scope, receive, send)
        elif _is_gemini(path):
            await gemini_app(scope, receive, send)
        elif path.startswith("/queue/") or _is_fal(scope):
            await fal_app(scope, receive, send)
        else:
            await openai_app(scope, receive, send)

    return app


app = create_app(os.environ.get("MOCK_API_KEY") or None)
