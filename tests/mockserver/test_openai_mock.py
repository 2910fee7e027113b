"""The mock upstream behaves like the OpenAI chat completions API."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from mockserver.openai import create_app

CHAT = "/v1/chat/completions"


def _mock(**directive: Any) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": "!mock " + json.dumps(directive)}]


@pytest.fixture
def http(mock_url: str, api_key: str) -> Iterator[httpx.Client]:
    auth = {"Authorization": f"Bearer {api_key}"}
    with httpx.Client(base_url=mock_url, headers=auth) as client:
        yield client


@pytest.fixture
def client(mock_url: str, api_key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{mock_url}/v1", api_key=api_key, max_retries=0)


def _call(http: httpx.Client, stream: bool = False, **directive: Any) -> httpx.Response:
    body = {"model": "echo", "stream": stream, "messages": _mock(**directive)}
    return http.post(CHAT, json=body)


def _events(text: str) -> list[str]:
    return [block.removeprefix("data: ") for block in text.split("\n\n") if block]


def test_it_serves_health_and_models(http: httpx.Client, client: openai.OpenAI) -> None:
    assert http.get("/health").json() == {"status": "ok"}
    assert "echo" in [m.id for m in client.models.list().data]
    raw = http.get("/v1/models").json()
    assert raw["object"] == "list"
    model = raw["data"][0]
    assert set(model) == {"id", "object", "created", "owned_by"}
    assert model["id"] == "echo" and model["object"] == "model"


@pytest.mark.parametrize("auth", ["", "Bearer wrong-key", "Basic abc"])
def test_it_rejects_missing_or_wrong_keys(http: httpx.Client, auth: str) -> None:
    resp = http.post(CHAT, json={}, headers={"Authorization": auth})
    assert resp.status_code == 401
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] is None
    assert error["code"] == "invalid_api_key"


def test_it_accepts_any_bearer_token_without_configured_key() -> None:
    async def status(token: str) -> int:
        transport = httpx.ASGITransport(app=create_app(None))
        async with httpx.AsyncClient(transport=transport, base_url="http://mock") as ac:
            auth = {"Authorization": f"Bearer {token}"}
            return (await ac.get("/v1/models", headers=auth)).status_code

    assert (asyncio.run(status("anything")), asyncio.run(status(""))) == (200, 401)


def test_it_returns_404_and_405_in_openai_error_shape(http: httpx.Client) -> None:
    missing = http.get("/v1/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["message"] == "Invalid URL (GET /v1/nope)"
    wrong = http.get(CHAT)
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "POST")


@pytest.mark.parametrize(
    ("content", "param"),
    [
        (b"not json", None),
        (b"[1, 2]", None),
        (b'{"messages": [{"role": "user", "content": "hi"}]}', "model"),
        (b'{"model": "echo"}', "messages"),
        (b'{"model": "echo", "messages": []}', "messages"),
        (b'{"model": "echo", "messages": "hi"}', "messages"),
        (b'{"model": "m", "messages": [{"content": "hi"}]}', "messages[0].role"),
        (b'{"model":"m","messages":[{"role":"user","content":"!mock 1"}]}', "messages"),
    ],
)
def test_it_validates_bodies(http: httpx.Client, content: bytes, param: str) -> None:
    resp = http.post(CHAT, content=content)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert (error["type"], error["param"]) == ("invalid_request_error", param)


def test_it_echoes_the_last_user_message_with_sync_sdk(client: openai.OpenAI) -> None:
    parts: list[Any] = [{"type": "text", "text": t} for t in ("hello", "there")]
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": parts},
    ]
    resp = client.chat.completions.create(model="gpt-4o-mini", messages=messages)
    assert resp.id.startswith("chatcmpl-") and resp.object == "chat.completion"
    assert (resp.model, resp.system_fingerprint) == ("gpt-4o-mini", "fp_mock")
    choice = resp.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.content == "You said: hello there"
    assert choice.message.refusal is None and choice.message.annotations == []
    usage = resp.usage
    assert usage is not None and usage.prompt_tokens_details is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (10, 4)
    assert usage.total_tokens == 14
    assert usage.prompt_tokens_details.cached_tokens == 0


def test_it_honours_n(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(model="e", n=2, messages=_mock(reply="1 2"))
    assert [c.index for c in resp.choices] == [0, 1]
    assert {c.message.content for c in resp.choices} == {"1 2"}
    assert resp.usage is not None and resp.usage.completion_tokens == 4


def test_it_streams_with_usage_via_async_sdk(mock_url: str, api_key: str) -> None:
    async def run() -> list[Any]:
        ac = openai.AsyncOpenAI(base_url=f"{mock_url}/v1", api_key=api_key)
        stream = await ac.chat.completions.create(
            model="echo",
            messages=[{"role": "user", "content": "stream me please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        return [chunk async for chunk in stream]

    chunks = asyncio.run(run())
    assert len({c.id for c in chunks}) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "You said: stream me please"
    assert len(chunks) == 1 + 5 + 1 + 1  # role, one per word, finish, usage
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens == 5


def test_it_streams_without_usage_key_by_default(http: httpx.Client) -> None:
    resp = _call(http, stream=True, reply="a b c", chunks=2)
    assert resp.headers["content-type"] == "text/event-stream"
    events = _events(resp.text)
    assert events[-1] == "[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert all("usage" not in c for c in chunks)
    contents = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert contents == ["", "a", " b c", None]


def test_it_returns_tool_calls(client: openai.OpenAI) -> None:
    messages = _mock(tool_call={"name": "get_weather", "arguments": {"city": "Paris"}})
    resp = client.chat.completions.create(model="echo", messages=messages)
    choice = resp.choices[0]
    assert (choice.finish_reason, choice.message.content) == ("tool_calls", None)
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert resp.usage is not None and resp.usage.completion_tokens == 6


def test_it_streams_tool_calls_in_fragments(client: openai.OpenAI) -> None:
    messages = _mock(tool_call={"name": "lookup", "arguments": {"q": "mock server"}})
    stream = client.chat.completions.create(model="e", messages=messages, stream=True)
    calls = [c.choices[0].delta.tool_calls for c in stream]
    assert calls[0] is not None
    first, fn = calls[0][0], calls[0][0].function
    assert first.id is not None and first.id.startswith("call_")
    assert fn is not None and (fn.name, fn.arguments) == ("lookup", "")
    assert (first.index, first.type) == (0, "function")
    fragments = [c[0].function.arguments for c in calls[1:-1] if c and c[0].function]
    assert len(fragments) == 3
    assert json.loads("".join(f or "" for f in fragments)) == {"q": "mock server"}
    assert calls[-1] is None


@pytest.mark.parametrize(
    ("status", "type_", "code"),
    [
        (400, "invalid_request_error", None),
        (401, "authentication_error", "invalid_api_key"),
        (403, "permission_error", None),
        (404, "not_found_error", "model_not_found"),
        (429, "rate_limit_error", "rate_limit_exceeded"),
        (503, "server_error", None),
    ],
)
def test_it_applies_status(http: httpx.Client, status: int, type_: str, code: str) -> None:
    resp = _call(http, stream=True, status=status, retry_after=7)
    assert (resp.status_code, resp.headers["retry-after"]) == (status, "7")
    error = {"message": f"mock fault {status}", "type": type_, "param": None}
    error["code"] = code
    assert resp.json() == {"error": error}


def test_it_cuts_the_stream_by_dropping_the_connection(http: httpx.Client) -> None:
    body = {"model": "echo", "stream": True, "messages": _mock(chunks=5, cut_after=2)}
    lines: list[str] = []
    with http.stream("POST", CHAT, json=body) as resp:
        assert resp.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            lines.extend(line for line in resp.iter_lines() if line)
    chunks = [orjson.loads(line.removeprefix("data: ")) for line in lines]
    assert [c["choices"][0]["delta"]["content"] for c in chunks] == ["", "w0", " w1"]


def test_it_echoes_the_request(http: httpx.Client, api_key: str) -> None:
    body = {"model": "echo", "temperature": 0.5, "messages": _mock(echo_request=True)}
    resp = http.post(CHAT, json=body, headers={"X-Trace": "abc"})
    echoed = orjson.loads(resp.json()["choices"][0]["message"]["content"])
    assert echoed["headers"]["x-trace"] == "abc"
    assert echoed["headers"]["authorization"] == f"Bearer {api_key}"
    assert echoed["body"] == body


def test_it_overrides_usage_finish_reason_and_reply(http: httpx.Client) -> None:
    usage: Any = {"prompt_tokens": 100, "completion_tokens": 7, "cached_tokens": 40}
    resp = _call(http, reply="short", finish_reason="length", **usage)
    assert resp.headers["x-request-id"] and "openai-processing-ms" in resp.headers
    data = resp.json()
    assert data["choices"][0]["message"]["content"] == "short"
    assert data["choices"][0]["finish_reason"] == "length"
    usage = data["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (100, 7)
    assert usage["total_tokens"] == 107
    assert usage["prompt_tokens_details"] == {"cached_tokens": 40, "audio_tokens": 0}


def test_it_delays_before_responding_and_between_chunks(http: httpx.Client) -> None:
    started = time.perf_counter()
    resp = _call(http, stream=True, delay=0.2, chunks=3, chunk_delay=0.05)
    assert time.perf_counter() - started >= 0.2 + 4 * 0.05
    assert _events(resp.text)[-1] == "[DONE]"
