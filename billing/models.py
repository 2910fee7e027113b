from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone

# Credits are exact decimals: prices per 1M tokens carry ≤ 6 places, so a charge never
# needs more than 12.
ZERO = Decimal(0)


def money_field(**options: Any) -> models.DecimalField[Decimal | int | str, Decimal]:
    return models.DecimalField(max_digits=24, decimal_places=12, **options)


class CreditAccount(models.Model):
    """A user's spendable balance. `balance` always equals the sum of the user's ledger."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_account"
    )
    balance = money_field(default=ZERO)
    held = money_field(default=ZERO)
    # The part of `balance` that is a plan's allowance: spent before purchased credit (usage
    # takes from it first: billing.usage_writer), never rolled over (billing.allowance).
    allowance = money_field(default=ZERO, db_default=ZERO)
    allowance_expires_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.user}: {self.balance}"

    @property
    def available(self) -> Decimal:
        return self.balance - self.held

    @property
    def purchased(self) -> Decimal:
        """The balance beyond the allowance: bought, granted, or owed (below zero)."""
        return self.balance - self.allowance


class LedgerEntry(models.Model):
    """An append-only balance change, idempotent on (kind, reference)."""

    class Kind(models.TextChoices):
        GRANT = "grant"
        PURCHASE = "purchase"
        USAGE = "usage"
        REFUND = "refund"
        ADJUSTMENT = "adjustment"
        # A purchase's credit taken back: its payment refunded, or a dispute lost.
        CLAWBACK = "clawback"
        # A plan's allowance granted for a period, or its unspent rest at the period's end.
        ALLOWANCE = "allowance"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    amount = money_field()
    balance_after = money_field()
    reference = models.CharField(max_length=100)
    memo = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        verbose_name_plural = "ledger entries"
        constraints = [
            models.UniqueConstraint(fields=("kind", "reference"), name="ledger_kind_reference")
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount} ({self.reference})"


class CreditHold(models.Model):
    """Credit reserved for one in-flight request; replaced by its charge at settlement."""

    request_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="credit_holds"
    )
    amount = money_field()
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)
    # The request's journal, as billing.lost_requests writes it (JSON text): what admission
    # knew, and what a stream had delivered at its last record. Blank: none kept. (A
    # database default too: a process of the release before still inserts holds without.)
    journal = models.TextField(blank=True, default="", db_default="")
    delivered = models.TextField(blank=True, default="", db_default="")

    def __str__(self) -> str:
        return f"hold {self.amount} for {self.request_id}"


class PendingAvailChange(models.Model):
    """A balance change made while Redis was unreachable, not yet added to the user's Redis
    `avail` (billing.redis_credit). Written in the transaction of the change itself, so
    none is lost; applied and deleted once Redis is back (`credit_pending_apply`)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    amount = money_field()
    # A usage charge's request id: Redis may have admitted that request and hold credit
    # for it, which the change then releases; blank for grants, purchases and the like.
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.amount} for user {self.user_id} ({self.request_id or 'no request'})"


class RequestLog(models.Model):
    """One row per inference request, written by settlement (idempotent on request_id): what
    the request cost, the usage behind it and how it was served. Billing writes it with the
    ledger (billing.usage_writer, billing.settlement); monitoring and the limits read it."""

    # Unique in fact, but not by an index: on Postgres the table is partitioned by month
    # (billing.retention), which keeps unique indexes per partition; SettledRequest is what
    # makes writing it idempotent.
    request_id = models.CharField(max_length=64, db_index=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    endpoint = models.CharField(max_length=64)
    requested_model = models.CharField(max_length=200, blank=True)
    served_model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    status = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=24, decimal_places=12, default=Decimal(0))
    # What the provider bills for it: the cost before the markup (billing.pricing); 0 on the
    # customer's own key, and for a request settled from its journal (an estimate).
    provider_cost = models.DecimalField(
        max_digits=24, decimal_places=12, default=Decimal(0), db_default=Decimal(0)
    )
    upstream_latency_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    total_latency_ms = models.FloatField()
    stream = models.BooleanField(default=False)
    # Every upstream attempt, in order: {provider, model, status (0: no answer), latency_ms,
    # error}; the last one served, unless the request failed.
    attempts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        # Its table keeps the name it had in monitoring, where it began.
        db_table = "monitoring_requestlog"
        ordering = ("-created_at",)
        indexes = [
            models.Index(fields=("user", "-created_at"), name="monitoring__user_id_f320f8_idx"),
            # A provider's latest failures (staff's errors/{provider}): failures only, so
            # the index costs nothing on the requests that succeed.
            models.Index(
                fields=("provider", "-created_at"),
                condition=~models.Q(status=200),
                name="requestlog_failures_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.status}"


class SettledRequest(models.Model):
    """A request settled: written once, by the usage writer, in the transaction that logs
    and charges it, so a replayed usage event (a redelivery, a spool, a lost request's
    journal) is recognised and changes nothing. Kept as long as the request log
    (billing.retention)."""

    request_id = models.CharField(max_length=64, primary_key=True)
    settled_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.request_id


class StoredResponse(models.Model):
    """A Responses API answer kept for its customer (`store`, the API's default), so that a
    later request can continue from it (`previous_response_id`) or point at its items
    (`item_reference`), and the customer can read or delete it. Written with the request
    log row by the usage writer, never on the request path; kept
    GATEWAYZ_RESPONSES_RETENTION_DAYS (gateway.endpoints.responses_state has the rules)."""

    id = models.CharField(max_length=64, primary_key=True)  # resp_…
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    previous_response_id = models.CharField(max_length=64, blank=True)
    # This request's input items (each with its id) and the answer's output items.
    input_items = models.JSONField(default=list)
    output_items = models.JSONField(default=list)
    response = models.JSONField(default=dict)  # the Response object as it was answered
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return self.id


class Trial(models.Model):
    """A new customer's free trial: GATEWAYZ_TRIAL_CREDIT credits for GATEWAYZ_TRIAL_DAYS,
    at most GATEWAYZ_TRIAL_DAILY_CAP a day, one per person (billing.trials). Its credit is
    kept as the account's allowance: spent first, gone when the trial (or the day) ends."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="trial"
    )
    # The email as a person, not a mailbox alias, is (billing.trials.email_key): one trial
    # each, whatever the case, the dots or the +tags of the address signed up with.
    email_key = models.CharField(max_length=254, unique=True)
    ip = models.CharField(max_length=45, blank=True, db_index=True)
    credit = money_field()
    daily_cap = money_field(default=ZERO)  # 0: none
    granted = money_field(default=ZERO)  # what its slices have given so far, net of expiry
    started_at = models.DateTimeField(default=timezone.now, db_index=True)
    ends_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)  # the first payment
    ending_told_at = models.DateTimeField(null=True, blank=True)  # "your trial ends soon"

    def __str__(self) -> str:
        return f"trial of {self.user}"
