"""The one server-sent events parser, for every protocol's streams."""

from __future__ import annotations

from collections.abc import AsyncIterator


async def sse_events(blocks: AsyncIterator[bytes]) -> AsyncIterator[list[tuple[bytes, bytes]]]:
    """SSE events as (event name, data) pairs, a batch per block of bytes read."""
    pending = b""
    name = b""
    data: list[bytes] = []
    async for block in blocks:
        *lines, pending = (pending + block).split(b"\n")
        batch = []
        for line in lines:
            line = line.rstrip(b"\r")
            if not line:
                if data:
                    batch.append((name, b"\n".join(data)))
                name, data = b"", []
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
            elif line.startswith(b"event:"):
                name = line[6:].strip()
        if batch:
            yield batch
