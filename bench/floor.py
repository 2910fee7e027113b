"""The floor: a bare pass-through proxy under the same ASGI server, no auth, no accounting:
what relaying alone costs. FLOOR_CLIENT picks the upstream client (aiohttp, httpx, or
httpx over an aiohttp transport) for the client comparison.   UPSTREAM=http://127.0.0.1:9100"""

import os

import aiohttp
import httpx

UPSTREAM = os.environ.get("UPSTREAM", "http://127.0.0.1:9100")
CLIENT = os.environ.get("FLOOR_CLIENT", "aiohttp")
HEADERS = {"content-type": "application/json"}
clients: dict = {}


def _client():  # type: ignore[no-untyped-def]
    if CLIENT not in clients:
        if CLIENT == "aiohttp":
            clients[CLIENT] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        elif CLIENT == "httpx":
            clients[CLIENT] = httpx.AsyncClient(limits=httpx.Limits(max_connections=1000))
        else:
            from httpx_aiohttp import HttpxAiohttpClient

            clients[CLIENT] = HttpxAiohttpClient(limits=httpx.Limits(max_connections=1000))
    return clients[CLIENT]


async def app(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    client, url = _client(), UPSTREAM + scope["path"]
    if CLIENT == "aiohttp":
        async with client.post(url, data=body, headers=HEADERS) as upstream:
            await _start(send, upstream.status, upstream.headers["content-type"])
            async for chunk in upstream.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    else:
        async with client.stream("POST", url, content=body, headers=HEADERS) as upstream:
            await _start(send, upstream.status_code, upstream.headers["content-type"])
            async for chunk in upstream.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _start(send, status, content_type):  # type: ignore[no-untyped-def]
    headers = [(b"content-type", content_type.encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
