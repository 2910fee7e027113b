"""Money in: what customers buy (credit packs, a custom amount), what they paid (Payment),
what Stripe told us (StripeEvent), and the promotions that give credit (coupons, referrals).

1 credit = 1 US dollar. Prices are in cents, as Stripe takes them; credits are exact
decimals, as the ledger keeps them (billing.models)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

from billing.models import money_field
from core.amounts import cents_text

dollars = cents_text  # payments' mails and messages name it so


class CreditPack(models.Model):
    """A fixed purchase on offer: `credits` for `price_cents` (before the top-up fee)."""

    name = models.CharField(max_length=100)
    price_cents = models.PositiveIntegerField(help_text="What the customer pays, in US cents.")
    credits = money_field(help_text="What the customer gets (1 credit = 1 US dollar).")
    active = models.BooleanField(default=True)
    position = models.PositiveSmallIntegerField(default=0, help_text="Shown in this order.")

    class Meta:
        ordering = ("position", "price_cents")

    def __str__(self) -> str:
        return f"{self.name} ({dollars(self.price_cents)})"


class Payment(models.Model):
    """One payment a customer makes (a Checkout Session, later its PaymentIntent and Charge),
    and what it granted and took back. Its credit is granted once, from Stripe's signed
    event (payments.handlers), never from the browser's return to the success page."""

    class Kind(models.TextChoices):
        CREDIT_PACK = "credit_pack"
        CUSTOM = "custom"
        SUBSCRIPTION = "subscription"  # a paid invoice: its credits are the allowance
        AUTO_TOPUP = "auto_topup"  # charged off-session to the saved card

    class Status(models.TextChoices):
        OPEN = "open"  # the Checkout Session is waiting for the customer
        PROCESSING = "processing"  # paid by a method that settles later (a bank debit)
        PAID = "paid"
        FAILED = "failed"
        EXPIRED = "expired"  # the session closed unpaid
        REFUNDED = "refunded"
        PARTIALLY_REFUNDED = "partially_refunded"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="payments"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    pack = models.ForeignKey(CreditPack, null=True, blank=True, on_delete=models.SET_NULL)
    credits = money_field()
    # What the customer pays, fee included, and the fee's part of it; what a coupon took off.
    amount_cents = models.PositiveIntegerField()
    fee_cents = models.PositiveIntegerField(default=0)
    discount_cents = models.PositiveIntegerField(default=0)
    currency = models.CharField(max_length=3, default="usd")
    # Keep the card for auto top-up (Checkout's `setup_future_usage`).
    save_card = models.BooleanField(default=False)
    checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    invoice_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    payment_intent_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    charge_id = models.CharField(max_length=255, blank=True, db_index=True)
    refunded_cents = models.PositiveIntegerField(default=0)
    # The credit taken back by refunds and lost disputes so far.
    clawed_back = money_field(default=Decimal(0))
    created_at = models.DateTimeField(default=timezone.now)
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-created_at", "-id")

    def __str__(self) -> str:
        return f"{dollars(self.amount_cents)} by {self.user} ({self.status})"

    @property
    def ledger_reference(self) -> str:
        """The reference of the purchase's ledger entry: one per Payment, so a second
        event announcing the same payment grants nothing."""
        return f"payment:{self.pk}"


class StripeEvent(models.Model):
    """An event Stripe posted to the webhook, kept once (its id is Stripe's), with what
    became of it. Events are processed in a transaction, one delivery at a time."""

    class Status(models.TextChoices):
        RECEIVED = "received"
        PROCESSED = "processed"
        # About an object not known yet (an event overtook the one that creates it): run
        # again when that object arrives.
        DEFERRED = "deferred"
        IGNORED = "ignored"  # a type no handler takes, or about something not ours
        FAILED = "failed"  # the handler raised: its error is kept; retried from the admin

    id = models.CharField(max_length=255, primary_key=True)  # evt_…
    type = models.CharField(max_length=100, db_index=True)
    livemode = models.BooleanField(default=False)
    created = models.DateTimeField(help_text="When Stripe created the event.")
    payload = models.JSONField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.RECEIVED)
    # The Stripe object the event is waiting for (a payment intent id), while DEFERRED.
    waiting_for = models.CharField(max_length=255, blank=True, db_index=True)
    # The customer it turned out to concern (set by its handler), for staff.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    note = models.TextField(blank=True)  # the error of a failed one, why one was ignored
    attempts = models.PositiveIntegerField(default=0)
    received_at = models.DateTimeField(default=timezone.now, db_index=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ("-received_at",)

    def __str__(self) -> str:
        return f"{self.type} {self.id} ({self.status})"

    @property
    def object(self) -> dict[str, Any]:
        """The Stripe object the event is about (its `data.object`)."""
        data: dict[str, Any] = self.payload.get("data", {}).get("object", {})
        return data


class Dispute(models.Model):
    """A chargeback a customer opened with their bank: while one is open, the account's keys
    are refused (accounts.User.suspended_at); a lost one takes the payment's credit back."""

    id = models.CharField(max_length=255, primary_key=True)  # dp_…
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="disputes")
    amount_cents = models.PositiveIntegerField()
    status = models.CharField(max_length=32)  # Stripe's: needs_response, won, lost, …
    reason = models.CharField(max_length=64, blank=True)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.id} ({self.status})"

    @property
    def is_open(self) -> bool:
        return self.closed_at is None


class StaffRefund(models.Model):
    """A refund staff asked of Stripe (payments.staff_refund): one per form token, so a form
    sent twice refunds once even where Stripe's idempotency keys are not kept."""

    token = models.CharField(max_length=64, unique=True)
    payment = models.ForeignKey(Payment, on_delete=models.PROTECT, related_name="staff_refunds")
    amount_cents = models.PositiveIntegerField()
    reason = models.CharField(max_length=200)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    stripe_refund_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{dollars(self.amount_cents)} of payment {self.payment_id}"


class Coupon(models.Model):
    """A promotion code: credits when redeemed (POST /coupons/redeem), or a percentage off a
    credit purchase (given at checkout). For everyone, or for one user; a limited number of
    uses in total and per user; valid within a window."""

    class Kind(models.TextChoices):
        CREDITS = "credits"
        PERCENT = "percent", "percent off a purchase"

    code = models.CharField(max_length=40, unique=True, help_text="Matched without case.")
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.CREDITS)
    value = money_field(help_text="Credits granted, or the percentage off (1–100).")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="Only this user may redeem it; empty: anyone.",
    )
    max_uses = models.PositiveIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    max_uses_per_user = models.PositiveIntegerField(default=1)
    valid_from = models.DateTimeField(null=True, blank=True)
    valid_until = models.DateTimeField(null=True, blank=True)
    active = models.BooleanField(default=True)
    uses = models.PositiveIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return self.code

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.code = self.code.strip().upper()
        super().save(*args, **kwargs)


class CouponRedemption(models.Model):
    """One use of a coupon. A percentage coupon's use is taken when its checkout opens (so
    racing checkouts cannot pass its limit) and given back if that payment never completes."""

    coupon = models.ForeignKey(Coupon, on_delete=models.PROTECT, related_name="redemptions")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    payment = models.OneToOneField(
        Payment, null=True, blank=True, on_delete=models.CASCADE, related_name="coupon_use"
    )
    credits = money_field(default=Decimal(0))  # granted by a credits coupon
    discount_cents = models.PositiveIntegerField(default=0)  # taken off a purchase
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.coupon} by {self.user_id}"


class ReferralCode(models.Model):
    """A user's code to bring others (made on first asking: GET /referral/code)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referral_code"
    )
    code = models.CharField(max_length=8, unique=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return self.code


class Referral(models.Model):
    """Someone who came with a referral code. When their first purchase of at least
    GATEWAYZ_REFERRAL_MIN_PURCHASE completes, both get GATEWAYZ_REFERRAL_BONUS, once."""

    referrer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referrals_made"
    )
    referee = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="referred_by"
    )
    created_at = models.DateTimeField(default=timezone.now)
    rewarded_at = models.DateTimeField(null=True, blank=True)
    payment = models.ForeignKey(Payment, null=True, blank=True, on_delete=models.SET_NULL)

    def __str__(self) -> str:
        return f"{self.referrer_id} → {self.referee_id}"


class Subscription(models.Model):
    """A customer's subscription to a plan, as Stripe keeps it: opened by a Checkout Session
    (mode subscription), then kept by Stripe's events (payments.subscription_events). While
    it is active or past due the user is on its plan; each paid invoice grants the plan's
    allowance for the invoice's period."""

    class Status(models.TextChoices):
        INCOMPLETE = "incomplete"  # its Checkout Session is open
        ACTIVE = "active"
        TRIALING = "trialing"
        PAST_DUE = "past_due"
        UNPAID = "unpaid"
        CANCELED = "canceled"
        EXPIRED = "incomplete_expired"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="subscriptions"
    )
    plan = models.ForeignKey("accounts.Plan", on_delete=models.PROTECT, related_name="+")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.INCOMPLETE)
    checkout_session_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    stripe_subscription_id = models.CharField(max_length=255, unique=True, null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    # The allowance granted for the current period (an upgrade adds the difference).
    period_allowance = money_field(default=Decimal(0))
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.user} on {self.plan} ({self.status})"

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES


LIVE_STATUSES = (
    Subscription.Status.ACTIVE,
    Subscription.Status.TRIALING,
    Subscription.Status.PAST_DUE,
)


class BillingSettings(models.Model):
    """A customer's billing preferences: the balance under which they are told by mail, and
    auto top-up (a saved card charged off-session when available credit falls under a
    threshold: payments.auto_topup)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="billing_settings"
    )
    low_balance_threshold = money_field(null=True, blank=True)
    low_balance_notified_at = models.DateTimeField(null=True, blank=True)
    auto_topup_enabled = models.BooleanField(default=False)
    auto_topup_threshold = money_field(default=Decimal(5))
    auto_topup_amount = money_field(default=Decimal(20))
    # The card saved at a purchase (`save_card`): a Stripe PaymentMethod of the Customer.
    payment_method_id = models.CharField(max_length=255, blank=True)
    card_brand = models.CharField(max_length=32, blank=True)
    card_last4 = models.CharField(max_length=4, blank=True)
    # The top-up being charged (at most one at a time), and the declines in a row.
    auto_topup_payment = models.ForeignKey(
        Payment, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    auto_topup_failures = models.PositiveSmallIntegerField(default=0)
    auto_topup_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "billing settings"

    def __str__(self) -> str:
        return f"billing settings of {self.user_id}"
