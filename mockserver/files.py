"""Generated images and the ``GET /files/<name>.png`` route that serves them.

An image is a valid PNG of the requested size filled with one colour derived from a
hash of what asked for it (the prompt, and for Fal the seed and index), so it is both
deterministic and a few kilobytes however large. Its name encodes size and colour
(``img_<w>x<h>_<rrggbb>_<unique>.png``), so the mock stores nothing and any process
serves any URL it handed out; like the providers' CDN / pre-signed URLs, no key is needed.
"""

from __future__ import annotations

import functools
import hashlib
import re
import struct
import zlib

from mockserver.common import Receive, Scope, Send, base_url, next_id, send_bytes

_NAME = re.compile(r"^/files/img_(\d{1,4})x(\d{1,4})_([0-9a-f]{6})_[A-Za-z0-9]+\.png$")
MAX_SIDE = 4096


def colour_of(*parts: object) -> str:
    return hashlib.sha256("\x00".join(map(str, parts)).encode()).hexdigest()[:6]


@functools.lru_cache(maxsize=32)
def png(width: int, height: int, colour: str) -> bytes:
    """An RGB PNG of one colour (filter 0 rows; zlib shrinks them to almost nothing)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(tag + data)
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", crc)

    row = b"\x00" + bytes.fromhex(colour) * width
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(row * height, 6)),
            chunk(b"IEND", b""),
        )
    )


def file_url(scope: Scope, width: int, height: int, colour: str) -> str:
    return f"{base_url(scope)}/files/img_{width}x{height}_{colour}_{next_id()}.png"


async def serve(scope: Scope, receive: Receive, send: Send) -> None:
    match = _NAME.match(scope["path"])
    if scope["method"] not in ("GET", "HEAD") or match is None:
        await send_bytes(send, 404, b"Not Found", [(b"content-type", b"text/plain")])
        return
    width, height = int(match[1]), int(match[2])
    if not (1 <= width <= MAX_SIDE and 1 <= height <= MAX_SIDE):
        await send_bytes(send, 404, b"Not Found", [(b"content-type", b"text/plain")])
        return
    body = png(width, height, match[3])
    headers = [(b"content-type", b"image/png"), (b"cache-control", b"public, max-age=86400")]
    if scope["method"] == "HEAD":
        length = (b"content-length", str(len(body)).encode())
        await send({"type": "http.response.start", "status": 200, "headers": [*headers, length]})
        await send({"type": "http.response.body", "body": b""})
        return
    await send_bytes(send, 200, body, headers)
