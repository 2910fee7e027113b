"""A faithful, deterministic mock of Anthropic's Messages API.

``POST /v1/messages`` and ``POST /v1/messages/count_tokens`` (plus ``GET /v1/models``
in Anthropic's shape, which the router sends here when the request carries
``anthropic-version``).

Auth is ``x-api-key: <key>``, or ``Authorization: Bearer <key>`` (the API takes both, and
recent official SDKs send the latter); a missing key is a 401 "x-api-key header is
required", a wrong one a 401 "invalid x-api-key". ``anthropic-version`` is required (400).
Every answer carries a ``request-id`` header, errors also ``x-should-retry``.

Requests are validated as the API does, with its wording: ``model``, ``max_tokens`` and a
non-empty ``messages`` list are required; roles alternate starting with ``user`` (the
mock keeps the strict rule the API had, which catches a translator's mistakes, where
today's API merges consecutive turns); every ``tool_use`` is answered by a ``tool_result``
in the next message and every ``tool_result`` answers one; a ``thinking`` block passed
back must carry the ``signature`` the mock gave it; thinking needs ``budget_tokens`` >=
1024 and < ``max_tokens``; ``tool_choice`` must fit ``tools``.

Deterministic answer:

* text: ``"You said: " + <text of the last user message>`` (its string content, or its
  text blocks joined with a single space; messages holding only tool results are
  skipped, as OpenAI's chat keeps those in messages of their own);
* ``input_tokens`` = (system prompt, if any: words + 3) + sum over messages of (words in
  its text + 3), where a message's text is its text blocks and its tool results' text
  (tools count nothing);
* prompt caching (``mockserver.prompt_cache``): when blocks carry ``cache_control`` the
  first request with a given prefix writes it (``cache_creation_input_tokens``, split by TTL
  in ``cache_creation``), a repeat reads it (``cache_read_input_tokens``), and
  ``input_tokens`` is what remains, as in the API; more than 4 marks, or a mark that is not
  ``{"type": "ephemeral"}`` with ``ttl`` "5m" or "1h", is a 400. The directive's
  ``cached_tokens`` / ``cache_creation_tokens`` override it: those figures come on top of
  ``input_tokens``;
* with thinking enabled a ``thinking`` block comes first: ``"Thinking about: " + <text>``
  (or the ``thinking`` directive), signed with ``signature`` = base64(sha256(text));
* ``output_tokens`` = words of thinking + words of text (+ words of the tool input JSON
  + 5 for a tool call);
* ``stop_sequences`` cut the text before the first one found (``stop_reason``
  "stop_sequence", ``stop_sequence`` set); ``max_tokens`` cuts it after that many
  output words (``stop_reason`` "max_tokens");
* a forced ``tool_choice`` (``any`` / ``tool``) makes a call to that tool (or the first)
  with ``{}``; ``none`` suppresses tool calls, including the directive's.

Directive keys (last user message ``!mock {...}``): those of the OpenAI mock (status,
retry_after, message, delay, reply, chunks, chunk_delay, cut_after, tool_call,
prompt_tokens -> input_tokens, completion_tokens -> output_tokens, cached_tokens ->
cache_read_input_tokens, finish_reason -> stop_reason, echo_request) plus
``cache_creation_tokens``, ``thinking`` (the thinking text; also turns thinking on),
``stream_error`` (an error type sent as ``event: error`` mid-stream) and ``error_after``
(how many content deltas precede it, default 0). ``reply`` together with ``tool_call``
gives a text block before the ``tool_use`` block.

Streams follow the documented order: ``message_start`` (usage with input tokens,
``output_tokens`` 1), then per block ``content_block_start`` / deltas /
``content_block_stop`` with a ``ping`` after the first start, ``message_delta``
(stop_reason and cumulative usage), ``message_stop``. Text is sent one word per
``text_delta`` (``chunks`` with ``reply``: exactly that many), thinking one word per
``thinking_delta`` then one ``signature_delta``, tool input as ``input_json_delta``
fragments (an empty one first, as the API does). ``cut_after`` drops the connection after
that many deltas (or before ``message_delta`` when there are fewer).
"""

from mockserver.anthropic.content import signature_of
from mockserver.anthropic.server import create_app

__all__ = ["create_app", "signature_of"]
