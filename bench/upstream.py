"""The benchmark's upstream: the project's mock answers, recorded once at start-up, served by
a bare asyncio protocol (uvloop + httptools) so it costs the load as little as possible.

Non-stream requests get a chat.completion; `"stream": true` gets 20 content chunks (plus the
usage chunk when the request asks for it) and [DONE]. A request whose model is "slow" gets
its chunks 50 ms apart (for holding many streams open).

    python -m bench.upstream --port 9100
"""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

import httptools
import orjson
import uvloop

from mockserver.openai import create_app

CHUNKS = 20
SLOW_CHUNK_SECONDS = 0.05


def _record(body: dict[str, Any]) -> tuple[bytes, list[bytes]]:
    """Runs the mock once; returns the response head and its body parts."""
    raw = orjson.dumps(body)
    sent: list[Any] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"authorization", b"Bearer bench")],
    }
    asyncio.run(create_app(None)(scope, receive, send))  # type: ignore[arg-type]
    start, parts = sent[0], [m.get("body", b"") for m in sent[1:]]
    content_type = dict(start["headers"])[b"content-type"]
    length = sum(len(p) for p in parts)
    head = (
        f"HTTP/1.1 {start['status']} OK\r\ncontent-type: {content_type.decode()}\r\n"
        f"content-length: {length}\r\n\r\n"
    ).encode()
    return head, parts


def _responses() -> dict[str, tuple[bytes, list[bytes]]]:
    words = " ".join(f"w{i}" for i in range(CHUNKS))
    message = [{"role": "user", "content": "!mock " + orjson.dumps({"reply": words}).decode()}]
    stream = [{"role": "user", "content": "!mock " + orjson.dumps({"chunks": CHUNKS}).decode()}]
    return {
        "json": _record({"model": "bench", "messages": message}),
        "stream": _record({"model": "bench", "messages": stream, "stream": True}),
        "stream+usage": _record(
            {
                "model": "bench",
                "messages": stream,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        ),
    }


class Upstream(asyncio.Protocol):
    responses: dict[str, tuple[bytes, list[bytes]]] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.parser = httptools.HttpRequestParser(self)
        self.body: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self.transport.close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        body = b"".join(self.body)
        if b'"stream":true' not in body.replace(b" ", b""):
            head, parts = self.responses["json"]
        elif b"include_usage" in body:
            head, parts = self.responses["stream+usage"]
        else:
            head, parts = self.responses["stream"]
        if b'"model":"slow"' in body.replace(b" ", b""):
            self.transport.write(head)
            loop = asyncio.get_running_loop()
            for i, part in enumerate(parts):
                loop.call_later(SLOW_CHUNK_SECONDS * i, self._write, part)
        else:
            self.transport.write(head + b"".join(parts))

    def _write(self, data: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(data)


async def serve(host: str, port: int) -> None:
    server = await asyncio.get_running_loop().create_server(Upstream, host, port, backlog=4096)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    args = parser.parse_args()
    Upstream.responses = _responses()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
