"""Subscriptions through the double: what Checkout does when a customer pays a session in
subscription mode (a card saved as the default, a Product and Plan, a Subscription at
localstripe, whose first invoice localstripe charges), and the test controls that stand for
time and the Billing Portal: a renewal (the next month's invoice, really charged), a change
of price (prorated: the difference is invoiced), a cancellation.

Stripe's events for them are built here from localstripe's objects, in Stripe's shapes:
`invoice.paid` carries `billing_reason` and `subscription_details.metadata`;
a subscription's items carry `price` beside localstripe's `plan`."""

from __future__ import annotations

import time
from typing import Any, Protocol

from mockserver.stripe.checkout import StripeError, session_public
from mockserver.stripe.events import stripe_id


class StripeDouble(Protocol):
    """What the subscriptions need of the double (mockserver.stripe.server.StripeDouble)."""

    subscriptions: dict[str, dict[str, Any]]

    async def card(self, number: str) -> dict[str, Any]: ...

    async def stripe(self, method: str, path: str, form: dict[str, str] | None = None) -> Any: ...

    async def emit(self, kind: str, obj: dict[str, Any]) -> dict[str, Any]: ...


MONTH = 30 * 86400


def _priced(subscription: dict[str, Any]) -> dict[str, Any]:
    """Stripe's shape of a subscription's items: each names its subscription and carries
    its `price` (localstripe gives only the legacy `plan`)."""
    if subscription.get("default_tax_rates") is None:
        subscription["default_tax_rates"] = []
    for item in subscription.get("items", {}).get("data", []):
        item.setdefault("subscription", subscription["id"])
        if "price" not in item and item.get("plan"):
            item["price"] = {**item["plan"], "object": "price"}
    return subscription


def shaped(answer: dict[str, Any]) -> dict[str, Any]:
    """A subscription, or a list of them, from localstripe in Stripe's shape."""
    if answer.get("object") == "subscription":
        return _priced(answer)
    if answer.get("object") == "list":
        for item in answer.get("data", []):
            if isinstance(item, dict) and item.get("object") == "subscription":
                _priced(item)
    return answer


async def _plan_for(double: StripeDouble, item: dict[str, Any]) -> dict[str, Any]:
    if "price" in item:
        return dict(await double.stripe("GET", f"/v1/plans/{item['price']}"))
    data = item["price_data"]
    product = await double.stripe(
        "POST",
        "/v1/products",
        {"name": data.get("product_data", {}).get("name", "Subscription"), "type": "service"},
    )
    return dict(
        await double.stripe(
            "POST",
            "/v1/plans",
            {
                "product": product["id"],
                "amount": str(data["unit_amount"]),
                "currency": data["currency"],
                "interval": data["recurring"].get("interval", "month"),
            },
        )
    )


async def _card_saved(double: StripeDouble, customer: str, card: str) -> str:
    method = await double.card(card)
    await double.stripe(
        "POST", f"/v1/payment_methods/{method['id']}/attach", {"customer": customer}
    )
    await double.stripe(
        "POST",
        f"/v1/customers/{customer}",
        {"invoice_settings[default_payment_method]": method["id"]},
    )
    return str(method["id"])


def _invoice(
    double: StripeDouble,
    subscription: dict[str, Any],
    amount: int,
    reason: str,
    period: tuple[int, int],
    intent: dict[str, Any] | None,
    invoice_id: str | None = None,
) -> dict[str, Any]:
    item = subscription["items"]["data"][0]
    return {
        "id": invoice_id or stripe_id("in"),
        "object": "invoice",
        "amount_due": amount,
        "amount_paid": amount,
        "billing_reason": reason,
        "charge": (intent or {}).get("latest_charge", {}).get("id") if intent else None,
        "currency": item["plan"]["currency"],
        "customer": subscription["customer"],
        "lines": {
            "object": "list",
            "data": [
                {
                    "id": stripe_id("il"),
                    "object": "line_item",
                    "amount": amount,
                    "period": {"start": period[0], "end": period[1]},
                    "price": item["price"],
                    "plan": item["plan"],
                    "subscription": subscription["id"],
                }
            ],
        },
        "paid": True,
        "payment_intent": (intent or {}).get("id"),
        "period_start": period[0],
        "period_end": period[1],
        "status": "paid",
        "subscription": subscription["id"],
        "subscription_details": {"metadata": subscription.get("metadata") or {}},
    }


async def _charge(
    double: StripeDouble, customer: str, amount: int, currency: str
) -> dict[str, Any]:
    found = await double.stripe("GET", f"/v1/customers/{customer}")
    method = found["invoice_settings"]["default_payment_method"]
    return dict(
        await double.stripe(
            "POST",
            "/v1/payment_intents",
            {
                "amount": str(amount),
                "currency": currency,
                "customer": customer,
                "payment_method": method,
                "confirm": "true",
                "off_session": "true",
            },
        )
    )


async def subscribe(
    double: StripeDouble, session: dict[str, Any], card: str
) -> list[dict[str, Any]]:
    """The customer pays a subscription session: answers the events, in the order Stripe
    often sends them (the invoice before the session's completion)."""
    if not session["customer"]:
        raise StripeError("The double subscribes sessions with a customer only.")
    await _card_saved(double, session["customer"], card)
    plan = await _plan_for(double, session["line_items_"][0])
    form = {"customer": session["customer"], "items[0][plan]": plan["id"]}
    for key, value in (session["subscription_data_"].get("metadata") or {}).items():
        form[f"metadata[{key}]"] = value
    subscription = _priced(await double.stripe("POST", "/v1/subscriptions", form))
    first = await double.stripe("GET", f"/v1/invoices/{subscription['latest_invoice']}")
    intent = await double.stripe("GET", f"/v1/payment_intents/{first['payment_intent']}")
    period = (subscription["current_period_start"], subscription["current_period_end"])
    double.subscriptions[subscription["id"]] = subscription
    invoice = _invoice(
        double, subscription, plan["amount"], "subscription_create", period, intent, first["id"]
    )
    session.update(
        status="complete",
        payment_status="paid",
        subscription=subscription["id"],
        invoice=invoice["id"],
    )
    return [
        await double.emit("customer.subscription.created", subscription),
        await double.emit("invoice.paid", invoice),
        await double.emit("checkout.session.completed", session_public(session)),
    ]


def _known(double: StripeDouble, subscription_id: str) -> dict[str, Any]:
    subscription = double.subscriptions.get(subscription_id)
    if subscription is None:
        raise StripeError(f"No such subscription: '{subscription_id}'", status=404)
    return subscription


async def renew(double: StripeDouble, subscription_id: str) -> list[dict[str, Any]]:
    """A month passes: the next period's invoice is charged and announced."""
    subscription = _known(double, subscription_id)
    plan = subscription["items"]["data"][0]["plan"]
    start = subscription["current_period_end"]
    subscription.update(current_period_start=start, current_period_end=start + MONTH)
    intent = await _charge(double, subscription["customer"], plan["amount"], plan["currency"])
    invoice = _invoice(
        double, subscription, plan["amount"], "subscription_cycle", (start, start + MONTH), intent
    )
    return [
        await double.emit("customer.subscription.updated", subscription),
        await double.emit("invoice.paid", invoice),
    ]


async def change(double: StripeDouble, subscription_id: str, price: str) -> list[dict[str, Any]]:
    """The customer switches price in the portal; an upgrade's difference is invoiced now
    (for the whole period: the double does not prorate by time)."""
    subscription = _known(double, subscription_id)
    old = subscription["items"]["data"][0]["plan"]
    new = dict(await double.stripe("GET", f"/v1/plans/{price}"))
    item = subscription["items"]["data"][0]
    item.update(plan=new, price={**new, "object": "price"})
    events = [await double.emit("customer.subscription.updated", subscription)]
    difference = new["amount"] - old["amount"]
    if difference > 0:
        intent = await _charge(double, subscription["customer"], difference, new["currency"])
        period = (subscription["current_period_start"], subscription["current_period_end"])
        invoice = _invoice(double, subscription, difference, "subscription_update", period, intent)
        events.append(await double.emit("invoice.paid", invoice))
    return events


async def cancel(
    double: StripeDouble, subscription_id: str, at_period_end: bool
) -> list[dict[str, Any]]:
    subscription = _known(double, subscription_id)
    if at_period_end:
        subscription["cancel_at_period_end"] = True
        return [await double.emit("customer.subscription.updated", subscription)]
    await double.stripe("DELETE", f"/v1/subscriptions/{subscription_id}")
    subscription.update(status="canceled", canceled_at=int(time.time()))
    return [await double.emit("customer.subscription.deleted", subscription)]
