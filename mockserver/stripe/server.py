"""The double's routes. Stripe's own paths that localstripe lacks are answered here
(checkout.py); every other ``/v1/…`` call is passed to localstripe as it came, and a refund
made there is announced with the ``charge.refunded`` event localstripe does not send.

Test controls, each answering ``{"event", "delivery", "delivered"}`` for the event it made
(the delivery is the signed body, which a test may post again, or twice at once):
- ``POST /_double/webhook`` (url, secret): where events go, signed with ``secret``; it is
  passed on to localstripe, whose own events (payment_intent.succeeded, …) then go there
  too. An empty url stops deliveries; events are still signed (``--webhook-secret``);
- ``POST /_double/checkout/sessions/{id}/pay`` (``card``: a test card number, default
  4242…; ``delayed=1``: a payment method that settles later): the customer pays on the
  hosted page: a PaymentIntent is made and confirmed at localstripe, and
  ``checkout.session.completed`` sent;
- ``POST /_double/checkout/sessions/{id}/settle`` (``outcome``: succeeded | failed): a
  delayed payment settles: ``checkout.session.async_payment_succeeded`` or ``_failed``;
- ``GET /_double/events``: the events made here so far, each with its delivery (a refund's
  ``charge.refunded`` is announced to no caller but the webhook);
- ``POST /_double/subscriptions/{id}/renew``: a month passes (the next invoice, charged);
  ``…/change`` (``price``): the customer switches plans in the portal (an upgrade's
  difference invoiced); ``…/cancel`` (``at_period_end=1`` or now). These answer every
  event they made under ``events`` (paying a subscription session does too);
- ``POST /_double/charges/{id}/dispute``: the cardholder disputes the charge
  (``charge.dispute.created``); ``POST /_double/disputes/{id}/close`` (``outcome``: won |
  lost): the bank decides (``charge.dispute.closed``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import httpx
import orjson

from mockserver.common import ASGIApp, Receive, Scope, Send, lifespan, read_body, send_bytes
from mockserver.stripe import subscriptions
from mockserver.stripe.checkout import (
    StripeError,
    portal_session_create,
    session_create,
    session_public,
)
from mockserver.stripe.events import delivery_of, event_of, stripe_id
from mockserver.stripe.forms import form_decode

JSON = [(b"content-type", b"application/json")]
TEST_CARD = "4242424242424242"
# GET /v1/account (the key's own account, which dj-stripe reads once per key).
ACCOUNT = {
    "id": "acct_1Double00000000",
    "object": "account",
    "business_profile": {"name": "Gatewayz (Stripe double)", "url": None},
    "business_type": "company",
    "capabilities": {"card_payments": "active"},
    "charges_enabled": True,
    "country": "US",
    "created": 1700000000,
    "default_currency": "usd",
    "details_submitted": True,
    "email": "billing@example.com",
    "metadata": {},
    "payouts_enabled": True,
    "settings": {"dashboard": {"display_name": "Gatewayz (Stripe double)", "timezone": "UTC"}},
    "type": "standard",
}


class StripeDouble:
    def __init__(self, localstripe: str, base_url: str, webhook_secret: str) -> None:
        self.localstripe = httpx.AsyncClient(base_url=localstripe, timeout=10)
        self.base_url = base_url
        self.sessions: dict[str, dict[str, Any]] = {}
        self.disputes: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.webhook_url = ""
        self.webhook_secret = webhook_secret
        self.deliveries = httpx.AsyncClient(timeout=30)
        self.emitted: list[dict[str, Any]] = []  # every event made here, with its delivery

    # --- localstripe ---------------------------------------------------------------------
    async def card(self, number: str) -> dict[str, Any]:
        """A card PaymentMethod, as the hosted page makes from what the customer typed."""
        return dict(
            await self.stripe(
                "POST",
                "/v1/payment_methods",
                {
                    "type": "card",
                    "card[number]": number,
                    "card[exp_month]": "12",
                    "card[exp_year]": "2040",
                    "card[cvc]": "123",
                },
            )
        )

    async def stripe(self, method: str, path: str, form: dict[str, str] | None = None) -> Any:
        answer = await self.localstripe.request(
            method, path, data=form, auth=("sk_test_double", "")
        )
        body = answer.json() if answer.content else {}
        if answer.status_code >= 400:
            error = body.get("error", {}) if isinstance(body, dict) else {}
            raise StripeError(
                error.get("message", "localstripe refused"),
                None,
                answer.status_code,
                error.get("code"),
            )
        return body

    async def passthrough(self, scope: Scope, body: bytes, send: Send) -> None:
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k not in (b"host", b"content-length")
        ]
        path = scope["path"]
        if scope.get("query_string"):
            path += "?" + scope["query_string"].decode("latin-1")
        answer = await self.localstripe.request(
            scope["method"], path, content=body, headers=headers
        )
        content = answer.content
        if answer.is_success and scope["path"].startswith("/v1/subscriptions"):
            content = orjson.dumps(subscriptions.shaped(answer.json()))
        await send_bytes(send, answer.status_code, content, JSON)
        if scope["path"] == "/v1/refunds" and scope["method"] == "POST" and answer.is_success:
            refund = answer.json()
            charge = await self.stripe("GET", f"/v1/charges/{refund['charge']}")
            charge["refunds"] = await self.stripe("GET", f"/v1/refunds?charge={charge['id']}")
            await self.emit("charge.refunded", charge)

    # --- events --------------------------------------------------------------------------
    async def emit(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = event_of(kind, obj)
        delivery = delivery_of(event, self.webhook_secret)
        self.emitted.append({"event": event, "delivery": delivery})
        del self.emitted[:-1000]
        if not self.webhook_url:
            return {"event": event, "delivery": delivery, "delivered": None}
        try:
            answer = await self.deliveries.post(
                self.webhook_url,
                content=delivery["payload"],
                headers={
                    "content-type": "application/json",
                    "stripe-signature": delivery["signature"],
                },
            )
            delivered: int | str = answer.status_code
        except httpx.HTTPError as exc:
            delivered = repr(exc)
        return {"event": event, "delivery": delivery, "delivered": delivered}

    # --- Checkout ------------------------------------------------------------------------
    async def pay(self, session_id: str, card: str, delayed: bool) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "open":
            raise StripeError(f"This Checkout Session is {session['status']}.", status=400)
        if session["mode"] == "subscription":
            events = await subscriptions.subscribe(self, session, card)
            return {**events[-1], "events": events}
        if session["mode"] != "payment":
            raise StripeError("The double pays sessions in payment or subscription mode.")
        method = await self.card(card)
        future = session["payment_intent_data_"].get("setup_future_usage")
        if future and session["customer"]:  # Stripe saves the card to the Customer
            await self.stripe(
                "POST",
                f"/v1/payment_methods/{method['id']}/attach",
                {"customer": session["customer"]},
            )
        form = {
            "amount": str(session["amount_total"]),
            "currency": session["currency"],
            "payment_method": method["id"],
            "confirm": "true",
        }
        if session["customer"]:
            form["customer"] = session["customer"]
        for key, value in (session["payment_intent_data_"].get("metadata") or {}).items():
            form[f"metadata[{key}]"] = value
        intent = await self.stripe("POST", "/v1/payment_intents", form)
        session.update(
            status="complete",
            payment_intent=intent["id"],
            payment_status="unpaid" if delayed else "paid",
        )
        return await self.emit("checkout.session.completed", session_public(session))

    async def settle(self, session_id: str, outcome: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            raise StripeError("This Checkout Session has no payment waiting to settle.")
        if outcome == "succeeded":
            session["payment_status"] = "paid"
        kind = (
            f"checkout.session.async_payment_{'succeeded' if outcome == 'succeeded' else 'failed'}"
        )
        return await self.emit(kind, session_public(session))

    async def expire(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "open":
            raise StripeError(
                f'Only Checkout Sessions with a status in ["open"] can be expired. This '
                f'Checkout Session has a status of "{session["status"]}".',
                status=400,
            )
        session["status"] = "expired"
        await self.emit("checkout.session.expired", session_public(session))
        return session_public(session)

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise StripeError(
                f"No such checkout.session: '{session_id}'", "session", 404, "resource_missing"
            )
        return session

    # --- disputes ------------------------------------------------------------------------
    async def dispute_open(self, charge_id: str) -> dict[str, Any]:
        charge = await self.stripe("GET", f"/v1/charges/{charge_id}")
        dispute = {
            "id": stripe_id("dp"),
            "object": "dispute",
            "amount": charge["amount"],
            "charge": charge_id,
            "currency": charge["currency"],
            "created": int(time.time()),
            "is_charge_refundable": False,
            "livemode": False,
            "metadata": {},
            "payment_intent": charge.get("payment_intent"),
            "reason": "fraudulent",
            "status": "needs_response",
        }
        self.disputes[dispute["id"]] = dispute
        return await self.emit("charge.dispute.created", dispute)

    async def dispute_close(self, dispute_id: str, outcome: str) -> dict[str, Any]:
        dispute = self.disputes.get(dispute_id)
        if dispute is None:
            raise StripeError(f"No such dispute: '{dispute_id}'", status=404)
        dispute["status"] = "won" if outcome == "won" else "lost"
        return await self.emit("charge.dispute.closed", dispute)


async def _subscription_control(
    double: StripeDouble, subscription_id: str, action: str, form: dict[str, Any]
) -> list[dict[str, Any]]:
    if action == "renew":
        return await subscriptions.renew(double, subscription_id)
    if action == "change":
        return await subscriptions.change(double, subscription_id, form["price"])
    if action == "cancel":
        return await subscriptions.cancel(double, subscription_id, form.get("at_period_end") == "1")
    raise StripeError(f"Unrecognized subscription control: {action}", status=404)


def create_app(localstripe: str, base_url: str, webhook_secret: str) -> ASGIApp:
    double = StripeDouble(localstripe, base_url, webhook_secret)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        body = await read_body(receive) or b""
        try:
            answer = await route(double, scope, body, send)
        except StripeError as error:
            await send_bytes(send, error.status, orjson.dumps(error.body()), JSON)
            return
        if answer is not None:
            await send_bytes(send, 200, orjson.dumps(answer), JSON)

    return app


def _authorized(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"authorization":
            return len(value.split(b" ", 1)) == 2 and bool(value.split(b" ", 1)[1].strip())
    return False


async def route(double: StripeDouble, scope: Scope, body: bytes, send: Send) -> Any:
    method, path = scope["method"], scope["path"]
    parts = path.strip("/").split("/")
    form = form_decode(body) if body else {}
    if path == "/_double/health":
        return {"status": "ok"}
    if parts[0] == "_double":
        return await control(double, method, parts[1:], form)
    if parts[0] == "pay" and len(parts) == 2:  # the hosted page a session's `url` names
        await hosted_checkout(double, method, parts[1], send)
        return None
    if not _authorized(scope):
        raise StripeError(
            "You did not provide an API key. You need to provide your API key in the "
            "Authorization header, using Bearer auth.",
            status=401,
        )
    if path == "/v1/checkout/sessions" and method == "POST":
        prices = {}
        for item in form.get("line_items") or []:
            if isinstance(item, dict) and item.get("price"):
                with contextlib.suppress(StripeError):  # unknown: "No such price", below
                    prices[item["price"]] = await double.stripe("GET", f"/v1/plans/{item['price']}")
        session = session_create(form, double.base_url, prices, stripe_id("cs"))
        double.sessions[session["id"]] = session
        return session_public(session)
    if parts[:3] == ["v1", "checkout", "sessions"] and len(parts) == 4 and method == "GET":
        return session_public(double._session(parts[3]))
    if parts[:3] == ["v1", "checkout", "sessions"] and parts[4:] == ["expire"]:
        return await double.expire(parts[3])
    if path == "/v1/account" and method == "GET":
        return ACCOUNT
    if parts[:2] == ["v1", "products"] and parts[3:] == ["features"] and method == "GET":
        # A product's entitlement features (localstripe has none): an empty list.
        return {"object": "list", "data": [], "has_more": False, "url": path}
    if path == "/v1/billing_portal/sessions" and method == "POST":
        return portal_session_create(form, double.base_url, stripe_id("bps"))
    await double.passthrough(scope, body, send)
    return None


async def hosted_checkout(double: StripeDouble, method: str, session_id: str, send: Send) -> None:
    """Stripe's hosted Checkout page, as a browser meets it: what is bought and a button to
    pay with the test card (GET); paying (POST) confirms as ``/_double/…/pay`` does, then
    sends the browser to the session's ``success_url`` with its id, as Stripe does."""
    session = double._session(session_id)
    if method == "POST":
        await double.pay(session_id, TEST_CARD, False)
        back = str(session["success_url"]).replace("{CHECKOUT_SESSION_ID}", session_id)
        await send_bytes(send, 303, b"", [(b"location", back.encode())])
        return
    total = f"${session.get('amount_total', 0) / 100:,.2f}"
    page = (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width, initial-scale=1'>"
        f"<title>Pay {total} (Stripe double)</title></head><body>"
        f"<main><h1>Pay {total}</h1><p>Test card 4242 4242 4242 4242.</p>"
        f"<form method=post action='/pay/{session_id}'><button type=submit>Pay</button></form>"
        f"<p><a href='{session.get('cancel_url') or '/'}'>Cancel</a></p></main></body></html>"
    )
    await send_bytes(send, 200, page.encode(), [(b"content-type", b"text/html; charset=utf-8")])


async def control(double: StripeDouble, method: str, parts: list[str], form: dict[str, Any]) -> Any:
    if parts == ["events"] and method == "GET":
        return {"data": double.emitted}
    if parts == ["webhook"] and method == "POST":
        double.webhook_url = form.get("url", "")
        double.webhook_secret = form.get("secret") or double.webhook_secret
        # localstripe cannot forget a webhook: an empty url points it nowhere.
        await double.localstripe.post(
            "/_config/webhooks/gatewayz",
            data={
                "url": double.webhook_url or "http://127.0.0.1:9/",
                "secret": double.webhook_secret,
            },
        )
        return {"url": double.webhook_url}
    if parts[:2] == ["checkout", "sessions"] and parts[3:] == ["pay"]:
        return await double.pay(parts[2], form.get("card", TEST_CARD), form.get("delayed") == "1")
    if parts[:2] == ["checkout", "sessions"] and parts[3:] == ["settle"]:
        return await double.settle(parts[2], form.get("outcome", "succeeded"))
    if parts[0] == "subscriptions" and len(parts) == 3:
        events = await _subscription_control(double, parts[1], parts[2], form)
        return {**events[-1], "events": events}
    if parts[0] == "charges" and parts[2:] == ["dispute"]:
        return await double.dispute_open(parts[1])
    if parts[0] == "disputes" and parts[2:] == ["close"]:
        return await double.dispute_close(parts[1], form.get("outcome", "won"))
    raise StripeError(
        f"Unrecognized request URL ({method}: /_double/{'/'.join(parts)}).", status=404
    )
