"""ASGI entry point of the inference workers: /v1/* and /health* only (the gateway's raw app),
with the slimmer `config.settings_inference`.

A deployment routes /v1/ and /health to these workers and everything else to `config.asgi`
(the web side: API, admin, pages, Stripe). `config.asgi` also serves /v1/ itself, so one
process type is enough for a small deployment and for `make run`.
"""

from __future__ import annotations

import os

import django

# Always the inference settings: they are the main settings (every environment variable
# applies) minus the web-only apps, which this process must not load.
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_inference"
django.setup()

from core.tracing import tracing_start  # noqa: E402

tracing_start("gatewayz-inference")

from gateway.app import gateway_app  # noqa: E402  (needs Django set up)
from gateway.http import Receive, Scope, Send  # noqa: E402
from gateway.runtime import gc_tune, lifespan  # noqa: E402
from monitoring.public_api import public_route, public_serve  # noqa: E402

gc_tune()  # all imported, nothing served yet


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        public = public_route(scope["path"])  # discovery and uptime (monitoring.public_api)
        if public is None:
            await gateway_app(scope, receive, send)
        else:
            await public_serve(scope, send, public)
    elif scope["type"] == "lifespan":
        await lifespan(scope, receive, send)
    # Websockets are served by the web workers (`config.asgi`).
