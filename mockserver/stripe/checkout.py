"""Checkout Sessions and Billing Portal sessions, which localstripe does not have, as
Stripe's API reference describes them: create (validated as Stripe validates), retrieve,
expire; and what the hosted page does when the customer pays (test controls)."""

from __future__ import annotations

import time
from typing import Any

MODES = ("payment", "subscription", "setup")
DAY = 86400


class StripeError(Exception):
    """Answered in Stripe's error shape: {"error": {"type", "message", "param"}}."""

    def __init__(
        self, message: str, param: str | None = None, status: int = 400, code: str | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.param, self.code = status, param, code

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"type": "invalid_request_error", "message": str(self)}
        if self.param:
            error["param"] = self.param
        if self.code:
            error["code"] = self.code
        return {"error": error}


def _amount_of(items: list[dict[str, Any]], plans: dict[str, dict[str, Any]]) -> int:
    total = 0
    for index, item in enumerate(items):
        quantity = int(item.get("quantity", "1"))
        if "price_data" in item:
            data = item["price_data"]
            if "unit_amount" not in data:
                raise StripeError(
                    "Missing required param: line_items[0][price_data][unit_amount].",
                    f"line_items[{index}][price_data][unit_amount]",
                )
            if not data.get("currency"):
                raise StripeError(
                    "Missing required param: currency.", f"line_items[{index}][price_data]"
                )
            if "product_data" not in data and "product" not in data:
                raise StripeError(
                    "You must specify either `product` or `product_data` when creating a price.",
                    f"line_items[{index}][price_data]",
                )
            total += int(data["unit_amount"]) * quantity
        elif "price" in item:
            plan = plans.get(item["price"])
            if plan is None:
                raise StripeError(
                    f"No such price: '{item['price']}'",
                    f"line_items[{index}][price]",
                    400,
                    "resource_missing",
                )
            total += int(plan["amount"]) * quantity
        else:
            raise StripeError(
                "You must specify either `price` or `price_data`.", f"line_items[{index}]"
            )
    return total


def session_create(
    params: dict[str, Any], base_url: str, plans: dict[str, dict[str, Any]], new_id: str
) -> dict[str, Any]:
    mode = params.get("mode")
    if mode not in MODES:
        raise StripeError("Invalid mode: must be one of payment, setup, or subscription", "mode")
    if not params.get("success_url") and params.get("ui_mode", "hosted") == "hosted":
        raise StripeError("Missing required param: success_url.", "success_url")
    items = params.get("line_items") or []
    if mode != "setup" and not items:
        raise StripeError(f"line_items is required in {mode} mode.", "line_items")
    amount = _amount_of(items, plans)
    recurring = [
        "recurring" in (i.get("price_data") or {})
        or "interval" in plans.get(i.get("price", ""), {})
        for i in items
    ]
    if mode == "subscription" and not any(recurring):
        raise StripeError(
            "You must provide at least one recurring price in `subscription` mode when using "
            "prices.",
            "line_items",
        )
    if mode == "payment" and any(recurring):
        raise StripeError(
            "You specified `payment` mode but passed a recurring price. Either switch to "
            "`subscription` mode or use only one-time prices.",
            "line_items",
        )
    currency = (items[0].get("price_data") or {}).get("currency") if items else None
    if currency is None and items:
        currency = plans[items[0]["price"]].get("currency", "usd")
    now = int(time.time())
    return {
        "id": new_id,
        "object": "checkout.session",
        "amount_subtotal": amount,
        "amount_total": amount,
        "cancel_url": params.get("cancel_url"),
        "client_reference_id": params.get("client_reference_id"),
        "created": now,
        "currency": currency,
        "customer": params.get("customer"),
        "customer_email": params.get("customer_email"),
        "expires_at": now + DAY,
        "invoice": None,
        "line_items_": items,  # kept for paying; dropped from answers
        "livemode": False,
        "metadata": params.get("metadata") or {},
        "mode": mode,
        "payment_intent": None,
        "payment_intent_data_": params.get("payment_intent_data") or {},
        "subscription_data_": params.get("subscription_data") or {},
        "payment_status": "unpaid",
        "status": "open",
        "subscription": None,
        "success_url": params.get("success_url"),
        "ui_mode": params.get("ui_mode", "hosted"),
        "url": f"{base_url}/pay/{new_id}",
    }


def session_public(session: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in session.items() if not k.endswith("_")}


def portal_session_create(params: dict[str, Any], base_url: str, new_id: str) -> dict[str, Any]:
    if not params.get("customer"):
        raise StripeError("Missing required param: customer.", "customer")
    return {
        "id": new_id,
        "object": "billing_portal.session",
        "configuration": "bpc_test_default",
        "created": int(time.time()),
        "customer": params["customer"],
        "livemode": False,
        "locale": None,
        "on_behalf_of": None,
        "return_url": params.get("return_url"),
        "url": f"{base_url}/portal/{new_id}",
    }
