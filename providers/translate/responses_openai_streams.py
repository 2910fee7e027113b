"""Chat Completions → OpenAI's Responses API, the stream: chat completion chunks become the
Responses stream events."""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import GatewayError
from core.usage import Usage
from providers.translate.responses_openai_answers import (
    item_id,
    new_id,
    response_finish,
    response_shell,
)

JSON = dict[str, Any]


def _arguments_text(raw: Any) -> str:
    """Tool-call arguments as the JSON text OpenAI's shapes carry (some providers send an
    object)."""
    if raw is None or isinstance(raw, str):
        return raw or ""
    return orjson.dumps(raw).decode()


class ChatChunksToResponseEvents:
    """Feeds on chat completion chunks, emits the Responses API's stream events."""

    def __init__(self, body: JSON) -> None:
        self.body = body
        self.response = response_shell(body, new_id("resp"), "in_progress", [])
        self.sequence = 0
        self.started = False
        self.text: JSON | None = None  # the open message item
        self.calls: dict[int, JSON] = {}  # chat tool index → its latest function_call item
        self.call_items: list[JSON] = []  # every function_call item, in order
        self.finish: str | None = None

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.sequence, **fields}
        self.sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"

    def _item_id(self, kind: str) -> str:
        """The id of the item about to be added (see item_id)."""
        return item_id(kind, self.response["id"], len(self.response["output"]))

    def _index(self, item: JSON) -> int:
        return self.response["output"].index(item)

    def _start(self) -> list[bytes]:
        self.started = True
        return [
            self._event("response.created", response=self.response),
            self._event("response.in_progress", response=self.response),
        ]

    def _add(self, item: JSON) -> bytes:
        self.response["output"].append(item)
        return self._event("response.output_item.added", output_index=self._index(item), item=item)

    def feed(self, chunk: JSON) -> list[bytes]:
        out = [] if self.started else self._start()
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                if self.text is None:
                    self.text = {
                        "type": "message",
                        "id": self._item_id("msg"),
                        "status": "in_progress",
                        "role": "assistant",
                        "content": [],
                    }
                    out.append(self._add(self.text))
                    part = {"type": "output_text", "text": "", "annotations": []}
                    self.text["content"].append(part)
                    out.append(
                        self._event(
                            "response.content_part.added",
                            item_id=self.text["id"],
                            output_index=self._index(self.text),
                            content_index=0,
                            part=part,
                        )
                    )
                self.text["content"][0]["text"] += text
                out.append(
                    self._event(
                        "response.output_text.delta",
                        item_id=self.text["id"],
                        output_index=self._index(self.text),
                        content_index=0,
                        delta=text,
                        logprobs=[],
                    )
                )
            for call in delta.get("tool_calls") or []:
                index = call.get("index", 0)
                function = call.get("function") or {}
                item = self.calls.get(index)
                # A new call id opens a new call even at a reused index (some providers
                # number parallel calls all 0).
                if item is None or (call.get("id") and call["id"] != item["call_id"]):
                    item = {
                        "type": "function_call",
                        "id": self._item_id("fc"),
                        "call_id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "arguments": "",
                        "status": "in_progress",
                    }
                    self.calls[index] = item
                    self.call_items.append(item)
                    out.append(self._add(item))
                arguments = _arguments_text(function.get("arguments"))
                if arguments:
                    item["arguments"] += arguments
                    out.append(
                        self._event(
                            "response.function_call_arguments.delta",
                            item_id=item["id"],
                            output_index=self._index(item),
                            delta=arguments,
                        )
                    )
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def finish_events(self, usage: Usage) -> list[bytes]:
        out = [] if self.started else self._start()
        if self.text is not None:
            index, part = self._index(self.text), self.text["content"][0]
            out.append(
                self._event(
                    "response.output_text.done",
                    item_id=self.text["id"],
                    output_index=index,
                    content_index=0,
                    text=part["text"],
                    logprobs=[],
                )
            )
            out.append(
                self._event(
                    "response.content_part.done",
                    item_id=self.text["id"],
                    output_index=index,
                    content_index=0,
                    part=part,
                )
            )
            self.text["status"] = "completed"
            out.append(self._event("response.output_item.done", output_index=index, item=self.text))
        for item in self.call_items:
            index = self._index(item)
            out.append(
                self._event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=index,
                    arguments=item["arguments"],
                )
            )
            item["status"] = "completed"
            out.append(self._event("response.output_item.done", output_index=index, item=item))
        response_finish(self.response, self.finish, usage)
        kind = (
            "response.completed"
            if self.response["status"] == "completed"
            else ("response.incomplete")
        )
        out.append(self._event(kind, response=self.response))
        return out

    def failed(self, error: GatewayError) -> bytes:
        start = [] if self.started else self._start()  # the SDK wants `created` first
        self.response["status"] = "failed"
        self.response["error"] = {"code": error.code or "server_error", "message": error.message}
        return b"".join([*start, self._event("response.failed", response=self.response)])
