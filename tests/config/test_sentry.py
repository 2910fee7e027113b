"""Errors to Sentry (config.sentry): sent over Sentry's own wire protocol when SENTRY_DSN is
set, and scrubbed of what customers sent, keys and emails before they leave."""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from config.sentry import HIDDEN, event_scrub

pytestmark = pytest.mark.smoke
ROOT = Path(__file__).resolve().parents[2]


def test_an_event_loses_bodies_locals_secrets_and_emails():
    event = {
        "message": "refused gw_live_Abc123xyz for bob@example.com (sk-proj-1234567890abcdef)",
        "request": {
            "url": "http://gw/v1/chat/completions",
            "data": {"messages": [{"role": "user", "content": "my secret plan"}]},
            "cookies": {"sessionid": "s"},
            "headers": {"Authorization": "Bearer gw_live_Abc123xyz", "Accept": "*/*"},
        },
        "exception": {
            "values": [
                {
                    "value": "Stripe said: sk_live_51Hxyz invalid",
                    "stacktrace": {"frames": [{"function": "f", "vars": {"body": "prompt"}}]},
                }
            ]
        },
        "user": {"id": 7, "email": "bob@example.com", "ip_address": "1.2.3.4"},
    }
    scrubbed = event_scrub(event)
    text = repr(scrubbed)
    for leak in ("gw_live_Abc123xyz", "bob@example.com", "sk-proj", "sk_live_51", "secret plan"):
        assert leak not in text
    assert "prompt" not in text and "sessionid" not in text and "1.2.3.4" not in text
    assert scrubbed["request"]["headers"] == {"Authorization": HIDDEN, "Accept": "*/*"}
    assert scrubbed["user"] == {"id": 7}
    assert scrubbed["message"].startswith(f"refused {HIDDEN} for {HIDDEN}")


class _Collector(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self) -> None:  # http.server names its handlers so
        body = self.rfile.read(int(self.headers["content-length"]))
        if self.headers.get("content-encoding") == "gzip":
            body = gzip.decompress(body)
        _Collector.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args: object) -> None:
        pass


def test_an_error_logged_in_a_process_reaches_sentry_scrubbed(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dsn = f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "REDIS_URL": "",
        "SENTRY_DSN": dsn,
    }
    script = (
        "import django; django.setup()\n"
        "import logging, sentry_sdk\n"
        "try:\n"
        "    raise RuntimeError('upstream refused gw_live_Zz9TopSecret for carol@example.com')\n"
        "except RuntimeError:\n"
        "    logging.getLogger('gateway.app').exception('POST /v1/chat/completions failed')\n"
        "sentry_sdk.flush(5)\n"
    )
    try:
        subprocess.run([sys.executable, "-c", script], env=env, cwd=ROOT, check=True, timeout=60)
    finally:
        server.shutdown()
    sent = b"".join(_Collector.received)
    assert b"POST /v1/chat/completions failed" in sent  # the error arrived, with its place
    assert b"RuntimeError" in sent
    assert b"gw_live_Zz9TopSecret" not in sent and b"carol@example.com" not in sent
    assert HIDDEN.encode() in sent
