"""Deterministic mocks of OpenAI's embeddings and image generation APIs.

``POST /v1/embeddings`` and ``POST /v1/images/generations``, with the chat mock's auth
(``Authorization: Bearer <key>``), headers and error bodies.

Embeddings: ``input`` is a string, a list of strings, a token array or a list of token
arrays (at most 2048 items, none empty). Each vector is a unit vector derived from a
SHAKE-256 hash of its input: the model's full width (``text-embedding-3-large`` 3072,
every other model 1536), cut to ``dimensions`` and renormalised, as OpenAI shortens
its embeddings; values are float32, so ``encoding_format`` "float" and "base64"
(little-endian float32, what the official SDK asks for by default) decode to the same
numbers. ``text-embedding-ada-002`` refuses ``dimensions``. ``prompt_tokens`` =
``total_tokens`` = words of each string / length of each token array, summed.

Images: ``prompt`` is required, ``n`` 1-10 (dall-e-3: 1), ``size`` and ``quality`` are
checked against the model's documented values (other models take any WxH).
``response_format`` "url" (dall-e default) gives ``<mock>/files/<name>.png``, which this
mock serves; "b64_json" the PNG itself; GPT image models always answer b64_json, refuse
``response_format`` and report ``usage`` (input: prompt words; output: OpenAI's
published per-image token counts for the size and quality). dall-e-3 sets
``revised_prompt`` to the prompt.

Directive keys (an input string / the prompt ``!mock {...}``): status, retry_after,
message, delay, prompt_tokens (embeddings).
"""

from mockserver.openai_media.server import create_app

__all__ = ["create_app"]
