"""Error reporting to Sentry (or any server speaking its protocol: GlitchTip, self-hosted
Sentry) when SENTRY_DSN is set; nothing is loaded or sent otherwise.

What leaves is the error and where it happened, never what customers sent or got:
request bodies are never attached (prompts, completions, card data), nor local variables
(a frame's `body` is a prompt), nor cookies and auth headers; and every string in an event
is scrubbed of anything shaped like a key (ours, a provider's, Stripe's) and of email
addresses, in case one slipped into a message or an exception's text.
"""

from __future__ import annotations

import re
from typing import Any

# Gatewayz keys, OpenAI/Anthropic/OpenRouter-style keys, Stripe keys and webhook secrets,
# Google API keys, bearer tokens, JWTs, and email addresses.
SECRET = re.compile(
    r"gw_(?:live|test)_[A-Za-z0-9_-]+"
    r"|\bsk-[A-Za-z0-9_-]{8,}"
    r"|\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]+"
    r"|\bwhsec_[A-Za-z0-9]+"
    r"|\bAIza[0-9A-Za-z_-]{20,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._~+/=-]+"
    r"|\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+"
    r"|[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"
)
HIDDEN = "[scrubbed]"
SECRET_HEADERS = {"authorization", "x-api-key", "x-goog-api-key", "cookie", "stripe-signature"}


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return SECRET.sub(HIDDEN, value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


def event_scrub(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's before_send (and before_send_transaction): the event, minus what a customer
    sent or could be identified by."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        headers = request.get("headers")
        if isinstance(headers, dict):
            request["headers"] = {
                k: (HIDDEN if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()
            }
    for exception in (event.get("exception") or {}).get("values", []) or []:
        for frame in (exception.get("stacktrace") or {}).get("frames", []) or []:
            frame.pop("vars", None)
    user = event.get("user")
    if isinstance(user, dict):  # an id is enough to look a customer up; nothing else
        event["user"] = {"id": user["id"]} if "id" in user else {}
    return _scrubbed(event)


def breadcrumb_scrub(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    return _scrubbed(crumb)


def sentry_init(*, dsn: str, environment: str, release: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        release=release or None,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,
        max_request_body_size="never",
        include_local_variables=False,
        traces_sample_rate=traces_sample_rate,
        before_send=event_scrub,  # type: ignore[arg-type]  # a dict is what Event is
        before_send_transaction=event_scrub,  # type: ignore[arg-type]
        before_breadcrumb=breadcrumb_scrub,
    )
