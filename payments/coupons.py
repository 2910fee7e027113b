"""Coupons: a code worth credits (redeemed at once) or a percentage off a credit purchase
(given at checkout). Every rule is checked under the coupon row's lock, so uses are counted
exactly however many customers redeem at once: a coupon with one use left is won by one.

Refusals carry the seed's codes: NOT_FOUND, INACTIVE, NOT_YET_ACTIVE, EXPIRED,
NOT_ASSIGNED, MAX_USES_EXCEEDED, ALREADY_REDEEMED; and WRONG_KIND (a percentage coupon
redeemed alone, or a credits coupon given at checkout)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from billing.models import LedgerEntry
from billing.services import ledger_entry_add
from payments.models import Coupon, CouponRedemption, Payment


class CouponRefused(Exception):
    STATUS = {"NOT_FOUND": 404, "MAX_USES_EXCEEDED": 409, "ALREADY_REDEEMED": 409}

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = self.STATUS.get(code, 400)


def _locked(code: str, user: User, kind: str) -> Coupon:
    """The coupon, locked, if `user` may use it now; else CouponRefused."""
    coupon = Coupon.objects.select_for_update().filter(code=code.strip().upper()).first()
    if coupon is None:
        raise CouponRefused("NOT_FOUND", "There is no such coupon.")
    now = timezone.now()
    if not coupon.active:
        raise CouponRefused("INACTIVE", "This coupon is no longer active.")
    if coupon.valid_from and now < coupon.valid_from:
        raise CouponRefused(
            "NOT_YET_ACTIVE", f"This coupon is valid from {coupon.valid_from:%Y-%m-%d %H:%M} UTC."
        )
    if coupon.valid_until and now >= coupon.valid_until:
        raise CouponRefused("EXPIRED", "This coupon has expired.")
    if coupon.user_id is not None and coupon.user_id != user.pk:
        raise CouponRefused("NOT_ASSIGNED", "This coupon belongs to another account.")
    if coupon.max_uses is not None and coupon.uses >= coupon.max_uses:
        raise CouponRefused("MAX_USES_EXCEEDED", "This coupon has been used up.")
    mine = CouponRedemption.objects.filter(coupon=coupon, user=user).count()
    if mine >= coupon.max_uses_per_user:
        raise CouponRefused("ALREADY_REDEEMED", "You have already redeemed this coupon.")
    if coupon.kind != kind:
        if kind == Coupon.Kind.CREDITS:
            raise CouponRefused(
                "WRONG_KIND", "This coupon takes a share off a purchase: give it at checkout."
            )
        raise CouponRefused("WRONG_KIND", "This coupon is worth credits: redeem it on its own.")
    return coupon


def _use(coupon: Coupon) -> None:
    Coupon.objects.filter(pk=coupon.pk).update(uses=coupon.uses + 1)


@transaction.atomic
def coupon_redeem(*, user: User, code: str) -> CouponRedemption:
    """Grants a credits coupon's value to `user` (a ledger grant, once per redemption)."""
    coupon = _locked(code, user, Coupon.Kind.CREDITS)
    redemption = CouponRedemption.objects.create(coupon=coupon, user=user, credits=coupon.value)
    _use(coupon)
    ledger_entry_add(
        user_id=user.pk,
        kind=LedgerEntry.Kind.GRANT,
        amount=coupon.value,
        reference=f"coupon:{redemption.pk}",
        memo=f"coupon {coupon.code}",
    )
    return redemption


def coupon_discount_cents(coupon: Coupon, price_cents: int) -> int:
    """A percentage coupon's share of the price, rounded down to a cent (never the whole:
    Stripe takes no payment under 50 cents, so at least that much is left to pay)."""
    discount = (Decimal(price_cents) * coupon.value / 100).to_integral_value(ROUND_DOWN)
    return max(0, min(int(discount), price_cents - 50))


def coupon_check(*, user: User, code: str) -> Coupon:
    """The percentage coupon `code`, if `user` may use it now (not taken: see coupon_take)."""
    with transaction.atomic():
        return _locked(code, user, Coupon.Kind.PERCENT)


@transaction.atomic
def coupon_take(*, payment: Payment, code: str, discount_cents: int) -> None:
    """Takes a use of the coupon for `payment` (its checkout is opening); refused if the
    coupon was used up meanwhile."""
    coupon = _locked(code, payment.user, Coupon.Kind.PERCENT)
    CouponRedemption.objects.create(
        coupon=coupon, user=payment.user, payment=payment, discount_cents=discount_cents
    )
    _use(coupon)


def coupon_give_back(payment: Payment) -> None:
    """The payment will never complete (expired, failed): its coupon use is returned."""
    use = CouponRedemption.objects.select_related("coupon").filter(payment=payment).first()
    if use is None:
        return
    coupon = Coupon.objects.select_for_update().get(pk=use.coupon_id)
    use.delete()
    Coupon.objects.filter(pk=coupon.pk).update(uses=max(0, coupon.uses - 1))
