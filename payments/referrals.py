"""Referrals: each user has an 8-character code; someone who signs up with it (or gives it
before their first purchase) is their referee. When the referee's first purchase of at
least GATEWAYZ_REFERRAL_MIN_PURCHASE credits completes, both get GATEWAYZ_REFERRAL_BONUS,
once (two ledger grants named after the referral). A code brings at most
GATEWAYZ_REFERRAL_MAX_USES people; nobody refers themselves."""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Q, Sum
from django.utils import timezone

from accounts.models import User
from billing.models import LedgerEntry
from billing.services import ledger_entry_add
from core.amounts import amount_text
from payments.models import Payment, Referral, ReferralCode

# No 0/O or 1/I/L: a code read aloud or copied by hand still works.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 8


class ReferralRefused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def referral_code_of(user: User) -> ReferralCode:
    existing = ReferralCode.objects.filter(user=user).first()
    if existing is not None:
        return existing
    while True:
        code = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH))
        try:
            with transaction.atomic():
                return ReferralCode.objects.create(user=user, code=code)
        except IntegrityError:
            existing = ReferralCode.objects.filter(user=user).first()
            if existing is not None:
                return existing  # made by a concurrent request
            # else the code was someone else's: draw another


@transaction.atomic
def referral_apply(*, referee: User, code: str) -> Referral:
    """Makes `referee` the referral of the code's owner (under the code's lock: its uses are
    counted exactly)."""
    owner = ReferralCode.objects.select_for_update().filter(code=code.strip().upper()).first()
    if owner is None:
        raise ReferralRefused("NOT_FOUND", "There is no such referral code.")
    if owner.user_id == referee.pk:
        raise ReferralRefused("SELF_REFERRAL", "You cannot use your own referral code.")
    if Referral.objects.filter(referee=referee).exists():
        raise ReferralRefused("ALREADY_REFERRED", "You were already referred by someone.")
    if Payment.objects.filter(user=referee, paid_at__isnull=False).exists():
        raise ReferralRefused(
            "NOT_NEW", "A referral code is for new customers, before their first purchase."
        )
    if (
        Referral.objects.filter(referrer_id=owner.user_id).count()
        >= settings.GATEWAYZ_REFERRAL_MAX_USES
    ):
        raise ReferralRefused("MAX_USES_EXCEEDED", "This referral code has been used up.")
    return Referral.objects.create(referrer_id=owner.user_id, referee=referee)


def referral_reward(payment: Payment) -> None:
    """Called when `payment` is paid (in its transaction): rewards its buyer's referral if
    this is their first purchase of at least the minimum."""
    if payment.credits < settings.GATEWAYZ_REFERRAL_MIN_PURCHASE:
        return
    referral = (
        Referral.objects.select_for_update()
        .filter(referee_id=payment.user_id, rewarded_at__isnull=True)
        .first()
    )
    if referral is None:
        return
    bonus = settings.GATEWAYZ_REFERRAL_BONUS
    for user_id, side in ((referral.referrer_id, "referrer"), (referral.referee_id, "referee")):
        ledger_entry_add(
            user_id=user_id,
            kind=LedgerEntry.Kind.GRANT,
            amount=bonus,
            reference=f"referral:{referral.pk}:{side}",
            memo="referral bonus",
        )
    referral.rewarded_at, referral.payment = timezone.now(), payment
    referral.save(update_fields=["rewarded_at", "payment"])


def _masked(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}***@{domain}"


def referral_stats(user: User, *, listed: bool = True) -> dict[str, Any]:
    """The user's code, who joined with it (masked, unless not `listed`), and what it
    earned them."""
    code = referral_code_of(user)
    made = Referral.objects.filter(referrer=user).select_related("referee")
    counted = made.aggregate(
        uses=Count("id"), rewarded=Count("id", filter=Q(rewarded_at__isnull=False))
    )
    earned = LedgerEntry.objects.filter(
        user=user,
        kind=LedgerEntry.Kind.GRANT,
        reference__startswith="referral:",
        reference__endswith=":referrer",
    ).aggregate(total=Sum("amount"))["total"]
    rows = [
        {"email": _masked(r.referee.email), "joined_at": r.created_at, "rewarded_at": r.rewarded_at}
        for r in (made.order_by("-created_at")[:100] if listed else ())
    ]
    return {
        "code": code.code,
        "uses": counted["uses"],
        "max_uses": settings.GATEWAYZ_REFERRAL_MAX_USES,
        "rewarded": counted["rewarded"],
        "earned": amount_text(earned or Decimal(0)),
        "bonus": amount_text(settings.GATEWAYZ_REFERRAL_BONUS),
        "min_purchase": amount_text(settings.GATEWAYZ_REFERRAL_MIN_PURCHASE),
        "referrals": rows,
    }
