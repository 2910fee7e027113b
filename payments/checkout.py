"""Buying credits: what a purchase costs (a pack, or a custom amount, plus the top-up fee)
and the Stripe Checkout Session that takes the payment. The credit itself is granted when
Stripe's signed event says the session is paid (payments.checkout_events), never here."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import ROUND_CEILING, Decimal, InvalidOperation

from django.conf import settings
from django.db import transaction

from accounts.models import User
from payments.coupons import coupon_check, coupon_discount_cents, coupon_give_back, coupon_take
from payments.customers import stripe_customer_id
from payments.models import CreditPack, Payment, dollars
from payments.stripe_api import stripe_client

CENT = Decimal("0.01")


class PurchaseRefused(ValueError):
    """The purchase asked for cannot be made (the message says why, for the client)."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


@dataclass(frozen=True, slots=True)
class Quote:
    kind: str
    credits: Decimal
    price_cents: int  # of the credits, before a coupon
    fee_cents: int
    pack: CreditPack | None = None
    coupon: str = ""  # a percentage coupon's code
    discount_cents: int = 0

    @property
    def amount_cents(self) -> int:
        return self.price_cents - self.discount_cents + self.fee_cents


def quote_with_coupon(quote: Quote, *, user: User, code: str) -> Quote:
    """The quote less a percentage coupon (CouponRefused if `user` may not use it); the fee
    is on what is left to pay."""
    coupon = coupon_check(user=user, code=code)
    discount = coupon_discount_cents(coupon, quote.price_cents)
    return replace(
        quote,
        coupon=coupon.code,
        discount_cents=discount,
        fee_cents=fee_cents_for(quote.price_cents - discount),
    )


def fee_cents_for(price_cents: int) -> int:
    """GATEWAYZ_TOPUP_FEE_PERCENT of the price, rounded up to a cent, at least
    GATEWAYZ_TOPUP_FEE_MIN (when there is a percentage at all)."""
    percent = settings.GATEWAYZ_TOPUP_FEE_PERCENT
    if percent <= 0:
        return 0
    fee = (Decimal(price_cents) * percent / 100).to_integral_value(ROUND_CEILING)
    return max(int(fee), int(settings.GATEWAYZ_TOPUP_FEE_MIN * 100))


def quote_pack(pack_id: int) -> Quote:
    pack = CreditPack.objects.filter(pk=pack_id, active=True).first()
    if pack is None:
        raise PurchaseRefused(f"There is no credit package {pack_id!r} on sale.", "package_id")
    return Quote(
        Payment.Kind.CREDIT_PACK,
        pack.credits,
        pack.price_cents,
        fee_cents_for(pack.price_cents),
        pack,
    )


def quote_custom(amount: object) -> Quote:
    """`amount`: US dollars (= credits) as a string or number, to the cent, within
    GATEWAYZ_TOPUP_MIN and GATEWAYZ_TOPUP_MAX."""
    low, high = settings.GATEWAYZ_TOPUP_MIN, settings.GATEWAYZ_TOPUP_MAX
    range_text = f"between {dollars(int(low * 100))} and {dollars(int(high * 100))}"
    try:
        credits = Decimal(str(amount))
    except InvalidOperation:
        credits = Decimal("NaN")
    if not credits.is_finite() or credits != credits.quantize(CENT) or not low <= credits <= high:
        raise PurchaseRefused(f"The amount must be in dollars and cents, {range_text}.", "amount")
    price_cents = int(credits * 100)
    return Quote(Payment.Kind.CUSTOM, credits, price_cents, fee_cents_for(price_cents))


def checkout_start(
    *, user: User, quote: Quote, success_url: str, cancel_url: str, save_card: bool = False
) -> tuple[Payment, str]:
    """Records the payment and opens its Checkout Session; answers the payment and the
    session's page. The payment's row exists before Stripe hears of it, so the event that
    announces it always finds it."""
    customer = stripe_customer_id(user)
    with transaction.atomic():
        payment = Payment.objects.create(
            user=user,
            kind=quote.kind,
            pack=quote.pack,
            credits=quote.credits,
            amount_cents=quote.amount_cents,
            fee_cents=quote.fee_cents,
            discount_cents=quote.discount_cents,
            save_card=save_card,
        )
        if quote.coupon:  # its use is taken now: racing checkouts cannot pass its limit
            coupon_take(payment=payment, code=quote.coupon, discount_cents=quote.discount_cents)
    name = f"{quote.credits.normalize():f} Gatewayz credits"
    if quote.coupon:
        name += f" (coupon {quote.coupon})"
    items = [_line(name, quote.price_cents - quote.discount_cents)]
    if quote.fee_cents:
        items.append(_line("Top-up fee", quote.fee_cents))
    metadata = {"gatewayz_payment": str(payment.pk), "gatewayz_user": str(user.pk)}
    try:
        session = stripe_client().v1.checkout.sessions.create(
            params={  # type: ignore[arg-type]  # Stripe's TypedDict, built from plain dicts
                "mode": "payment",
                "customer": customer,
                "client_reference_id": str(user.pk),
                "line_items": items,
                "metadata": metadata,
                "payment_intent_data": {
                    "metadata": metadata,
                    # Kept for auto top-up: Stripe saves the card to the Customer.
                    **({"setup_future_usage": "off_session"} if save_card else {}),
                },
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            options={"idempotency_key": f"gatewayz-checkout-{payment.pk}"},
        )
    except Exception:
        with transaction.atomic():
            payment.status = Payment.Status.FAILED
            payment.save(update_fields=["status"])
            coupon_give_back(payment)
        raise
    payment.checkout_session_id = session.id
    payment.save(update_fields=["checkout_session_id"])
    return payment, str(session.url)


def _line(name: str, cents: int) -> dict[str, object]:
    return {
        "quantity": 1,
        "price_data": {"currency": "usd", "unit_amount": cents, "product_data": {"name": name}},
    }
