"""The mock upstream behaves like the Gemini API (and Vertex AI express mode)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

MODEL = "/v1beta/models/gemini-2.5-flash"
VERTEX = "/v1/publishers/google/models/gemini-2.5-flash"


def _user(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


def _mock(**directive: Any) -> dict[str, Any]:
    return {"contents": [_user("!mock " + json.dumps(directive))]}


@pytest.fixture
def http(mock_url: str, api_key: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=mock_url, headers={"x-goog-api-key": api_key}) as c:
        yield c


def _generate(http: httpx.Client, body: dict[str, Any], path: str = MODEL) -> dict[str, Any]:
    resp = http.post(f"{path}:generateContent", json=body)
    assert resp.status_code == 200, resp.text
    data: dict[str, Any] = resp.json()
    return data


def _sse(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\r\n\r\n")
    return [orjson.loads(e.removeprefix("data: ")) for e in text.split("\r\n\r\n") if e]


def _texts(chunks: list[dict[str, Any]]) -> str:
    return "".join(
        p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"]
    )


def test_it_answers_generate_content(http: httpx.Client) -> None:
    body = {
        "systemInstruction": {"parts": [{"text": "be brief"}]},
        "contents": [
            _user("first"),
            {"role": "model", "parts": [{"text": "ok"}]},
            _user("hello there"),
        ],
    }
    resp = http.post(f"{MODEL}:generateContent", json=body)
    assert resp.headers["content-type"] == "application/json; charset=UTF-8"
    assert resp.text.startswith('{\n  "candidates"')  # pretty-printed, as Google answers
    data = resp.json()
    assert data["candidates"] == [
        {
            "content": {"parts": [{"text": "You said: hello there"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ]
    # system 2+3, contents (1+3) + (1+3) + (2+3); reply 4 words
    assert data["usageMetadata"] == {
        "promptTokenCount": 18,
        "candidatesTokenCount": 4,
        "totalTokenCount": 22,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 18}],
    }
    assert data["modelVersion"] == "gemini-2.5-flash" and data["responseId"]
    assert "promptFeedback" not in data and "createTime" not in data


def test_it_accepts_snake_case_fields_and_the_v1_path(http: httpx.Client) -> None:
    body = {
        "contents": [{"parts": [{"text": "one two three"}]}],  # role defaults to user
        "generation_config": {"max_output_tokens": 3, "stop_sequences": ["three"]},
    }
    data = _generate(http, body, "/v1/models/gemini-2.5-flash")
    candidate = data["candidates"][0]
    assert candidate["content"]["parts"][0]["text"] == "You said: one"
    assert candidate["finishReason"] == "MAX_TOKENS"


@pytest.mark.parametrize("how", ["header", "query"])
def test_it_takes_the_key_in_a_header_or_the_query(mock_url: str, api_key: str, how: str) -> None:
    headers = {"x-goog-api-key": api_key} if how == "header" else {}
    params = {"key": api_key} if how == "query" else {}
    resp = httpx.post(
        f"{mock_url}{MODEL}:generateContent",
        json={"contents": [_user("hi")]},
        headers=headers,
        params=params,
    )
    assert resp.status_code == 200


def test_it_rejects_missing_and_wrong_keys(mock_url: str) -> None:
    body = {"contents": [_user("hi")]}
    missing = httpx.post(f"{mock_url}{MODEL}:generateContent", json=body).json()["error"]
    assert (missing["code"], missing["status"]) == (403, "PERMISSION_DENIED")
    assert missing["message"].startswith("Method doesn't allow unregistered callers")
    wrong = httpx.post(f"{mock_url}{MODEL}:generateContent", json=body, params={"key": "nope"})
    assert wrong.status_code == 400
    error = wrong.json()["error"]
    assert (error["status"], error["message"]) == (
        "INVALID_ARGUMENT",
        "API key not valid. Please pass a valid API key.",
    )
    assert error["details"][0]["reason"] == "API_KEY_INVALID"
    assert error["details"][0]["metadata"] == {"service": "generativelanguage.googleapis.com"}


def test_it_streams_server_sent_events(http: httpx.Client) -> None:
    resp = http.post(
        f"{MODEL}:streamGenerateContent",
        params={"alt": "sse"},
        json={"contents": [_user("stream me")]},
    )
    assert resp.headers["content-type"] == "text/event-stream"
    chunks = _sse(resp.text)
    assert len(chunks) == 4  # one per word
    assert _texts(chunks) == "You said: stream me"
    assert len({c["responseId"] for c in chunks}) == 1
    assert all(c["modelVersion"] == "gemini-2.5-flash" for c in chunks)
    for chunk in chunks[:-1]:
        assert "finishReason" not in chunk["candidates"][0]
        assert chunk["usageMetadata"] == {
            "promptTokenCount": 5,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 5}],
            "totalTokenCount": 5,
        }
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert (
        last["usageMetadata"]["candidatesTokenCount"],
        last["usageMetadata"]["totalTokenCount"],
    ) == (4, 9)


def test_it_streams_a_json_array_without_alt_sse(http: httpx.Client) -> None:
    body = {"contents": [_user("stream me")]}
    resp = http.post(f"{MODEL}:streamGenerateContent", json=body)
    assert resp.headers["content-type"] == "application/json; charset=UTF-8"
    assert resp.text.startswith("[{") and resp.text.endswith("}]")
    chunks = resp.json()
    assert isinstance(chunks, list) and len(chunks) == 4
    assert _texts(chunks) == "You said: stream me"
    sse = _sse(http.post(f"{MODEL}:streamGenerateContent?alt=sse", json=body).text)
    assert [c["candidates"] for c in chunks] == [c["candidates"] for c in sse]


def test_it_splits_replies_into_the_asked_chunks(http: httpx.Client) -> None:
    resp = http.post(f"{MODEL}:streamGenerateContent?alt=sse", json=_mock(reply="a b c", chunks=2))
    chunks = _sse(resp.text)
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == ["a", " b c"]


def test_it_counts_tokens(http: httpx.Client) -> None:
    contents = [_user("count these four words")]
    assert http.post(f"{MODEL}:countTokens", json={"contents": contents}).json() == {
        "totalTokens": 7,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}],
    }
    request = {
        "model": "models/gemini-2.5-flash",
        "contents": contents,
        "systemInstruction": {"parts": [{"text": "sys"}]},
    }
    assert (
        http.post(f"{MODEL}:countTokens", json={"generateContentRequest": request}).json()[
            "totalTokens"
        ]
        == 11
    )
    both = http.post(
        f"{MODEL}:countTokens", json={"contents": contents, "generateContentRequest": request}
    )
    assert both.status_code == 400


def test_it_blocks_a_prompt_for_safety(http: httpx.Client) -> None:
    data = _generate(http, _mock(safety_block="prompt"))
    assert "candidates" not in data
    feedback = data["promptFeedback"]
    assert feedback["blockReason"] == "SAFETY"
    assert [r for r in feedback["safetyRatings"] if r.get("blocked")] == [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
    ]
    assert "candidatesTokenCount" not in data["usageMetadata"]
    streamed = _sse(
        http.post(f"{MODEL}:streamGenerateContent?alt=sse", json=_mock(safety_block="prompt")).text
    )
    assert len(streamed) == 1 and streamed[0]["promptFeedback"]["blockReason"] == "SAFETY"


def test_it_blocks_a_response_for_safety(http: httpx.Client) -> None:
    (candidate,) = _generate(http, _mock(safety_block="response"))["candidates"]
    assert candidate["finishReason"] == "SAFETY" and "content" not in candidate
    assert any(r.get("blocked") for r in candidate["safetyRatings"])


@pytest.mark.parametrize(
    ("status", "name"),
    [
        (400, "INVALID_ARGUMENT"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (503, "UNAVAILABLE"),
    ],
)
def test_it_applies_status_directives(http: httpx.Client, status: int, name: str) -> None:
    resp = http.post(
        f"{MODEL}:streamGenerateContent?alt=sse", json=_mock(status=status, retry_after=7)
    )
    assert resp.status_code == status
    assert resp.headers["content-type"] == "application/json; charset=UTF-8"
    assert resp.json() == {
        "error": {
            "code": status,
            "message": f"mock fault {status}",
            "status": name,
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}],
        }
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "* GenerateContentRequest.contents: contents is not specified\n"),
        ({"contents": []}, "* GenerateContentRequest.contents: contents is not specified\n"),
        (
            {"contents": [{"role": "assistant", "parts": [{"text": "hi"}]}]},
            "Please use a valid role: user, model.",
        ),
        (
            {"contents": [{"role": "user", "parts": []}]},
            "* GenerateContentRequest.contents[0].parts: contents.parts must not be empty.\n",
        ),
        (
            {"contents": [{"role": "user", "parts": [{}]}]},
            "* GenerateContentRequest.contents[0].parts[0].data: required oneof field 'data' must have one initialized field\n",
        ),
        (
            {"contents": [_user("hi")], "max_tokens": 5},
            'Invalid JSON payload received. Unknown name "max_tokens": Cannot find field.',
        ),
        (
            {"contents": [_user("hi")], "generationConfig": {"maxTokens": 5}},
            "Invalid JSON payload received. Unknown name \"maxTokens\" at 'generation_config': Cannot find field.",
        ),
        (
            {"contents": [_user("hi")], "generationConfig": {"candidateCount": 9}},
            "* GenerateContentRequest.generation_config.candidate_count: must be in the range [1, 8]\n",
        ),
        (
            {"contents": [_user("hi")], "generationConfig": {"temperature": 2.5}},
            "* GenerateContentRequest.generation_config.temperature: must be in the range [0, 2]\n",
        ),
        (
            {
                "contents": [_user("hi")],
                "toolConfig": {"functionCallingConfig": {"mode": "SOMETIMES"}},
            },
            "Invalid value at 'tool_config.function_calling_config.mode'",
        ),
        (_mock(colour="red"), "Invalid !mock directive: unknown key 'colour'."),
    ],
)
def test_it_validates_like_the_api(http: httpx.Client, body: dict[str, Any], message: str) -> None:
    resp = http.post(f"{MODEL}:generateContent", json=body)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert (error["code"], error["status"]) == (400, "INVALID_ARGUMENT")
    assert error["message"].startswith(message)


def test_it_calls_functions(http: httpx.Client) -> None:
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": {"type": "object"}}]}]
    directive = {"tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    data = _generate(http, {**_mock(**directive), "tools": tools})
    candidate = data["candidates"][0]
    assert candidate["content"]["parts"] == [
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}
    ]
    assert candidate["finishReason"] == "STOP"
    assert data["usageMetadata"]["candidatesTokenCount"] == 6
    answered = {
        "tools": tools,
        "contents": [
            _user("weather?"),
            {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": "18C"}}}],
            },
        ],
    }
    # A functionResponse counts as the words of its response's JSON ({"t":"18C"}: one),
    # but is not the user speaking: the reply echoes the question, as the OpenAI mock's.
    data = _generate(http, answered)
    assert data["usageMetadata"]["promptTokenCount"] == (1 + 3) + (0 + 3) + (1 + 3)
    assert data["candidates"][0]["content"]["parts"] == [{"text": "You said: weather?"}]


def test_it_honours_function_calling_modes(http: httpx.Client) -> None:
    tools = [{"functionDeclarations": [{"name": "a"}, {"name": "b"}]}]
    forced = {
        "contents": [_user("hi")],
        "tools": tools,
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["b"]}},
    }
    parts = _generate(http, forced)["candidates"][0]["content"]["parts"]
    assert parts == [{"functionCall": {"name": "b", "args": {}}}]
    refused = {
        **_mock(tool_call={"name": "a"}),
        "tools": tools,
        "toolConfig": {"functionCallingConfig": {"mode": "NONE"}},
    }
    assert "text" in _generate(http, refused)["candidates"][0]["content"]["parts"][0]


def test_it_thinks_when_asked(http: httpx.Client) -> None:
    body = {
        "contents": [_user("why")],
        "generationConfig": {"thinkingConfig": {"includeThoughts": True}},
    }
    data = _generate(http, body)
    thought, answer = data["candidates"][0]["content"]["parts"]
    assert thought == {"text": "Thinking about: why", "thought": True}
    assert answer["text"] == "You said: why" and answer["thoughtSignature"]
    usage = data["usageMetadata"]
    assert (
        usage["thoughtsTokenCount"],
        usage["candidatesTokenCount"],
        usage["totalTokenCount"],
    ) == (3, 3, 4 + 3 + 3)
    hidden = _generate(
        http,
        {
            "contents": [_user("why")],
            "generationConfig": {"thinkingConfig": {"thinkingBudget": 512}},
        },
    )
    assert [p.get("thought") for p in hidden["candidates"][0]["content"]["parts"]] == [None]
    assert hidden["usageMetadata"]["thoughtsTokenCount"] == 3


def test_it_returns_candidate_count_candidates(http: httpx.Client) -> None:
    data = _generate(http, {"contents": [_user("hi")], "generationConfig": {"candidateCount": 2}})
    assert [c["index"] for c in data["candidates"]] == [0, 1]
    assert data["usageMetadata"]["candidatesTokenCount"] == 3 * 2


def test_it_overrides_usage_and_finish_reason(http: httpx.Client) -> None:
    data = _generate(
        http,
        _mock(prompt_tokens=100, completion_tokens=7, cached_tokens=40, finish_reason="RECITATION"),
    )
    usage = data["usageMetadata"]
    assert (usage["promptTokenCount"], usage["candidatesTokenCount"], usage["totalTokenCount"]) == (
        100,
        7,
        107,
    )
    assert usage["cachedContentTokenCount"] == 40
    assert data["candidates"][0]["finishReason"] == "RECITATION"


def test_it_echoes_the_request(http: httpx.Client, api_key: str) -> None:
    body = _mock(echo_request=True)
    echoed = orjson.loads(_generate(http, body)["candidates"][0]["content"]["parts"][0]["text"])
    assert echoed["headers"]["x-goog-api-key"] == api_key and echoed["body"] == body


def test_it_serves_vertex_ai_express_paths(http: httpx.Client, mock_url: str) -> None:
    data = _generate(http, {"contents": [_user("hi")]}, VERTEX)
    assert data["createTime"].endswith("Z") and data["usageMetadata"]["trafficType"] == "ON_DEMAND"
    counted = http.post(f"{VERTEX}:countTokens", json={"contents": [_user("hi")]}).json()
    assert counted["totalTokens"] == 4 and counted["totalBillableCharacters"] > 0
    wrong = httpx.post(
        f"{mock_url}{VERTEX}:generateContent",
        params={"key": "nope"},
        json={"contents": [_user("hi")]},
    )
    assert wrong.json()["error"]["details"][0]["metadata"] == {
        "service": "aiplatform.googleapis.com"
    }


def test_it_cuts_the_stream_by_dropping_the_connection(http: httpx.Client) -> None:
    lines: list[str] = []
    with http.stream(
        "POST", f"{MODEL}:streamGenerateContent?alt=sse", json=_mock(chunks=5, cut_after=2)
    ) as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            lines.extend(line for line in resp.iter_lines() if line)
    assert len(lines) == 2


def test_it_answers_unknown_methods_with_404(http: httpx.Client) -> None:
    resp = http.post(f"{MODEL}:embedContent", json={})
    assert resp.status_code == 404 and resp.json()["error"]["status"] == "NOT_FOUND"
