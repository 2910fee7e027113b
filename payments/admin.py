from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from core.readonly_admin import ReadOnlyAdmin
from payments.events import event_process
from payments.models import (
    BillingSettings,
    Coupon,
    CouponRedemption,
    CreditPack,
    Dispute,
    Payment,
    Referral,
    StripeEvent,
    Subscription,
    dollars,
)
from payments.staff_refund import PERMISSION as REFUND_PERMISSION
from payments.staff_refund import REFUNDABLE, refund_view


@admin.register(CreditPack)
class CreditPackAdmin(admin.ModelAdmin):
    list_display = ("name", "price", "credits", "active", "position")
    list_editable = ("active", "position")

    @admin.display(ordering="price_cents")
    def price(self, pack: CreditPack) -> str:
        return dollars(pack.price_cents)


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "kind", "status", "paid", "credits", "refunded")
    list_filter = ("status", "kind")
    search_fields = ("user__email", "checkout_session_id", "payment_intent_id", "charge_id")
    list_select_related = ("user",)

    @admin.display(ordering="amount_cents")
    def paid(self, payment: Payment) -> str:
        return dollars(payment.amount_cents)

    @admin.display(ordering="refunded_cents")
    def refunded(self, payment: Payment) -> str:
        return dollars(payment.refunded_cents) if payment.refunded_cents else ""

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        if request.user.has_perm(REFUND_PERMISSION):  # near the front: in view on a phone too
            return ("created_at", "refund", *self.list_display[1:])
        return self.list_display

    @admin.display(description="")
    def refund(self, payment: Payment) -> str:
        if payment.status not in REFUNDABLE:
            return ""
        url = reverse("admin:payments_payment_refund", args=[payment.pk])
        return format_html('<a href="{}">Refund…</a>', url)

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(partial(refund_view, self))
        own = [path("<path:object_id>/refund/", view, name="payments_payment_refund")]
        return own + super().get_urls()


@admin.register(StripeEvent)
class StripeEventAdmin(ReadOnlyAdmin):
    list_display = ("received_at", "type", "status", "user", "attempts", "id", "note")
    list_filter = ("status", "type")
    search_fields = ("id", "waiting_for", "user__email")
    list_select_related = ("user",)
    actions = ("process_again",)

    def get_actions(self, request: HttpRequest):  # type: ignore[no-untyped-def]  # Django's
        actions = super().get_actions(request)
        if not request.user.has_perm("payments.change_stripeevent"):
            actions.pop("process_again", None)
        return actions

    @admin.action(description="Process the selected failed or waiting events again")
    def process_again(self, request: HttpRequest, events: QuerySet[StripeEvent]) -> None:
        retried = events.filter(status__in=(StripeEvent.Status.FAILED, StripeEvent.Status.DEFERRED))
        outcomes = [
            event_process(event_id).status for event_id in retried.values_list("id", flat=True)
        ]
        processed = outcomes.count(StripeEvent.Status.PROCESSED)
        messages.info(
            request,
            f"{len(outcomes)} event(s) processed again: {processed} done, "
            f"{len(outcomes) - processed} still failed or waiting.",
        )


@admin.register(Dispute)
class DisputeAdmin(ReadOnlyAdmin):
    list_display = ("opened_at", "id", "payment", "amount", "status", "reason", "closed_at")
    list_filter = ("status",)

    @admin.display(ordering="amount_cents")
    def amount(self, dispute: Dispute) -> str:
        return dollars(dispute.amount_cents)


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ("code", "kind", "value", "user", "uses", "max_uses", "valid_until", "active")
    list_filter = ("kind", "active")
    search_fields = ("code", "user__email")
    raw_id_fields = ("user",)
    readonly_fields = ("uses",)


@admin.register(CouponRedemption)
class CouponRedemptionAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "coupon", "user", "credits", "discount_cents", "payment")
    search_fields = ("coupon__code", "user__email")
    list_select_related = ("coupon", "user")


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "referrer", "referee", "rewarded_at")
    search_fields = ("referrer__email", "referee__email")
    list_select_related = ("referrer", "referee")


@admin.register(Subscription)
class SubscriptionAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "plan",
        "status",
        "current_period_end",
        "cancel_at_period_end",
    )
    list_filter = ("status", "plan")
    search_fields = ("user__email", "stripe_subscription_id")
    list_select_related = ("user", "plan")


@admin.register(BillingSettings)
class BillingSettingsAdmin(ReadOnlyAdmin):
    list_display = (
        "user",
        "low_balance_threshold",
        "auto_topup_enabled",
        "auto_topup_threshold",
        "auto_topup_amount",
        "card_last4",
        "auto_topup_failures",
    )
    list_filter = ("auto_topup_enabled",)
    search_fields = ("user__email",)
    list_select_related = ("user",)
