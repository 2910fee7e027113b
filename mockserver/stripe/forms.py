"""Stripe's request bodies: form-encoded, nested with brackets (``line_items[0][price_data]
[unit_amount]=500``, ``metadata[user]=7``), as the SDKs send them."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl

_KEY = re.compile(r"([^\[\]]+)|\[([^\[\]]*)\]")


def form_decode(body: bytes) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for name, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = [a or b for a, b in _KEY.findall(name)]
        node: Any = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return _lists(tree)


def _lists(node: Any) -> Any:
    """`{"0": a, "1": b}` (how the SDKs send arrays) becomes `[a, b]`."""
    if not isinstance(node, dict):
        return node
    node = {k: _lists(v) for k, v in node.items()}
    if node and all(k.isdigit() for k in node):
        return [node[k] for k in sorted(node, key=int)]
    return node
