"""Who may read /metrics: it holds revenue, cost and traffic figures, so not the public.

A scrape is served when it carries the metrics token (`Authorization: Bearer …`, setting
GATEWAYZ_METRICS_TOKEN), or when it comes straight from an address in
GATEWAYZ_METRICS_NETWORKS (the private networks by default: Prometheus beside the app in
compose or Kubernetes). A request that came through the front proxy (it carries
X-Forwarded-For or Forwarded) is from outside whatever the proxy's own address is, so it
needs the token. The proxies refuse /metrics too (docs/Caddyfile); this is the rule that
holds when one is configured without it.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import MutableMapping
from typing import Any

from django.conf import settings

REFUSAL = (
    b"/metrics is served to the internal network, or with the metrics token "
    b"(Authorization: Bearer; setting GATEWAYZ_METRICS_TOKEN).\n"
)


def scrape_allowed(peer: str | None, *, authorization: str, forwarded: bool) -> bool:
    token: str = settings.GATEWAYZ_METRICS_TOKEN
    if token:
        scheme, _, given = authorization.partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
            return True
    if forwarded or not peer:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:  # a Unix socket's peer: only the host itself reaches it
        return peer.startswith("/") or peer == "unix"
    return any(address in network for network in settings.GATEWAYZ_METRICS_NETWORKS)


def scrape_allowed_asgi(scope: MutableMapping[str, Any]) -> bool:
    headers = dict(scope["headers"])
    client = scope.get("client")
    return scrape_allowed(
        client[0] if client else None,
        authorization=headers.get(b"authorization", b"").decode("latin-1"),
        forwarded=b"x-forwarded-for" in headers or b"forwarded" in headers,
    )
