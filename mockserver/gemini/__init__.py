"""A faithful, deterministic mock of the Gemini API's content generation.

``POST /v1beta/models/{model}:generateContent``, ``:streamGenerateContent`` and
``:countTokens`` (also under ``/v1/models/``), and the same under Vertex AI express
mode's ``/v1/publishers/google/models/{model}:…`` (and ``/v1beta1/``), where answers also
carry ``createTime`` and ``usageMetadata.trafficType``.

Auth is ``x-goog-api-key: <key>`` or ``?key=<key>``: a missing key is a 403
PERMISSION_DENIED ("Method doesn't allow unregistered callers…"), a wrong one a 400
INVALID_ARGUMENT with an ``API_KEY_INVALID`` ErrorInfo, as the API answers. Errors are
``{"error": {"code", "message", "status", "details"?}}``, pretty-printed like Google's.

``streamGenerateContent?alt=sse`` answers ``data: <json>`` events separated by CRLF
pairs; without ``alt=sse`` it is one JSON array whose elements arrive as they are made.
Every chunk is a whole GenerateContentResponse; intermediate chunks' ``usageMetadata``
holds the prompt count only, the last one (which carries ``finishReason``) everything.
Text comes one word per chunk (``chunks`` with ``reply``: exactly that many), a
functionCall whole in one chunk, as Gemini never fragments one; ``cut_after`` drops
the connection after that many chunks, and never lets the stream end cleanly.

Requests are checked like the API: JSON field names in lowerCamelCase or proto
snake_case, an unknown one is 400 'Unknown name "x": Cannot find field.'; ``contents``
non-empty, roles ``user``/``model``, parts non-empty and each with data;
``generationConfig`` ranges (candidateCount 1-8, temperature 0-2, topP 0-1).

Deterministic answer (n = ``candidateCount`` identical candidates):

* text: ``"You said: " + <text of the last user content>`` (its text parts joined with a
  single space; contents holding only function responses are skipped, as OpenAI's chat
  keeps those in messages of their own);
* ``promptTokenCount`` = (systemInstruction, if any: words + 3) + sum over contents of
  (words in its text + 3), where a content's text is its text parts and the compact JSON
  of its functionResponse parts' ``response``;
* ``candidatesTokenCount`` = words in the text (a functionCall: words in its args JSON +
  5), times n; ``totalTokenCount`` = prompt + candidates + thoughts;
* thinking happens when ``thinkingConfig`` has ``includeThoughts`` or a non-zero
  ``thinkingBudget``, or with the ``thinking`` directive: its text is ``"Thinking about: "
  + <text>``, counted in ``thoughtsTokenCount`` and against ``maxOutputTokens``; parts
  with ``"thought": true`` are only returned with ``includeThoughts``, and the first
  answer part then carries a ``thoughtSignature``;
* ``stopSequences`` cut the text before the first one found (``finishReason`` STOP, as
  the API reports it); ``maxOutputTokens`` after that many output words (MAX_TOKENS);
* a functionCall part (``finishReason`` STOP) comes from the ``tool_call`` directive, or
  from ``toolConfig.functionCallingConfig.mode`` ANY (to the first allowed declaration,
  with ``{}``); mode NONE suppresses calls, including the directive's;
* ordinary candidates carry no ``safetyRatings`` (Gemini 2.x omits them); a
  ``safety_block`` directive of "prompt" answers ``promptFeedback.blockReason`` SAFETY
  and no candidates, "response" a candidate with ``finishReason`` SAFETY, no content and
  the offending rating ``blocked``.

Directive keys (last user content ``!mock {...}``): status, retry_after (as a RetryInfo
``retryDelay`` detail: Google sends no Retry-After header), message, delay, reply,
chunks, chunk_delay, cut_after, tool_call, prompt_tokens, completion_tokens,
cached_tokens (``cachedContentTokenCount``, part of the prompt count as in the API),
finish_reason, echo_request, thinking, safety_block.
"""

from mockserver.gemini.server import create_app

__all__ = ["create_app"]
