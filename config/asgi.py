"""ASGI entry point: Channels' protocol router in front of two HTTP apps.

/v1/* (inference, model list), /health* and /metrics go to the gateway's raw ASGI app, which
never enters the Django middleware stack; everything else (API, admin, pages) goes to
Django. Websockets (staff's live monitoring feed) go to Channels' consumers.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

from core.tracing import tracing_start

# Before Django builds its middleware: the instrumentation adds its own (core.tracing).
tracing_start("gatewayz-web", django=True)
django_app = get_asgi_application()  # sets Django up before the gateway imports models

from django.conf import settings  # noqa: E402

if settings.DEBUG:
    # `make run` serves the admin's static files itself; production runs collectstatic.
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

    django_app = ASGIStaticFilesHandler(django_app)

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from gateway.app import gateway_app  # noqa: E402
from gateway.http import Receive, Scope, Send  # noqa: E402
from gateway.runtime import lifespan  # noqa: E402
from monitoring.live import MonitoringFeed  # noqa: E402
from monitoring.public_api import public_route, public_serve  # noqa: E402

GATEWAY_PREFIXES = ("/v1/", "/health")
# Under /v1/ but Django's: the chats API (chats.api), kept at the seed's paths.
DJANGO_UNDER_V1 = ("/v1/chat/sessions", "/v1/chat/messages/", "/v1/chat/search")


async def http_app(scope: Scope, receive: Receive, send: Send) -> None:
    url_path = scope["path"]
    if url_path == "/metrics":
        # The gateway's page, which holds django-prometheus's figures too. Not through
        # Django: scrapes and probes come by internal names and addresses (web:8000, a pod's
        # IP) that ALLOWED_HOSTS rightly does not list.
        await gateway_app(scope, receive, send)
    elif url_path.startswith(GATEWAY_PREFIXES) and not url_path.startswith(DJANGO_UNDER_V1):
        # The public discovery and uptime endpoints first: /v1/models/trending is not a
        # model (monitoring.public_api).
        public = public_route(url_path)
        if public is None:
            await gateway_app(scope, receive, send)
        else:
            await public_serve(scope, send, public)
    else:
        await django_app(scope, receive, send)  # type: ignore[arg-type]  # same ASGI types, spelt narrower


# Websockets: staff's live monitoring feed, by their session (monitoring.live).
websockets = AllowedHostsOriginValidator(
    AuthMiddlewareStack(URLRouter([path("ws/monitoring/", MonitoringFeed.as_asgi())]))
)

application = ProtocolTypeRouter({"http": http_app, "websocket": websockets, "lifespan": lifespan})
