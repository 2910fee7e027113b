"""Request ids: a random per-process prefix and a counter, unique across processes and
replicas without a random draw (a system call) per request."""

from __future__ import annotations

import itertools
import os
import secrets

_prefix = ""
_pid = 0
_counter = itertools.count()


def request_id_new() -> str:
    global _prefix, _pid
    if _pid != os.getpid():  # a forked worker gets a prefix of its own
        _prefix, _pid = secrets.token_hex(8), os.getpid()
    return f"req_{_prefix}{next(_counter):010x}"
