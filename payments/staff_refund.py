"""Staff refund a customer's payment at Stripe, for a reason (the Refund API). The credit is
taken back when Stripe's `charge.refunded` event arrives (payments.charge_events), as for a
refund made in Stripe's dashboard; the form's token is Stripe's idempotency key, so a form
sent twice refunds once. Audited with who, why and how much."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

import stripe
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse

from accounts.audit import audit_record
from payments.models import Payment, StaffRefund, dollars
from payments.stripe_api import PaymentsNotConfigured, stripe_client

PERMISSION = "payments.change_payment"
CENT = Decimal("0.01")
REFUNDABLE = (Payment.Status.PAID, Payment.Status.PARTIALLY_REFUNDED)


class RefundForm(forms.Form):
    amount = forms.DecimalField(
        min_value=Decimal("0.01"), max_digits=10, decimal_places=2, label="Amount (US $)"
    )
    reason = forms.CharField(max_length=200, help_text="Kept in the audit log and at Stripe.")
    token = forms.CharField(widget=forms.HiddenInput)


def refundable_cents(payment: Payment) -> int:
    """What is left to refund: refunds asked of Stripe count before its event confirms them."""
    asked = payment.staff_refunds.aggregate(cents=Sum("amount_cents"))["cents"] or 0
    return payment.amount_cents - max(payment.refunded_cents, asked)


def payment_refund(
    *, payment: Payment, cents: int, reason: str, token: str, staff: Any = None
) -> str:
    """Asks Stripe to refund `cents` of the payment, once per `token`; answers the refund's
    id. The request is recorded first: a second sending of the form finds it and stops."""
    if payment.status not in REFUNDABLE or not payment.payment_intent_id:
        raise ValueError("Only a paid payment can be refunded.")
    remaining = refundable_cents(payment)
    if not 0 < cents <= remaining:
        raise ValueError(f"At most {dollars(remaining)} of this payment is left to refund.")
    try:
        with transaction.atomic():
            asked = StaffRefund.objects.create(
                token=token,
                payment=payment,
                amount_cents=cents,
                reason=reason,
                requested_by=staff if getattr(staff, "pk", None) else None,
            )
    except IntegrityError:
        return StaffRefund.objects.get(token=token).stripe_refund_id  # sent before
    try:
        refund = stripe_client().v1.refunds.create(
            params={
                "payment_intent": payment.payment_intent_id,
                "amount": cents,
                "metadata": {"gatewayz_reason": reason[:200]},
            },
            options={"idempotency_key": f"gatewayz-refund-{token}"},
        )
    except Exception:
        asked.delete()  # not made: the form may be sent again
        raise
    asked.stripe_refund_id = str(refund.id)
    asked.save(update_fields=["stripe_refund_id"])
    audit_record(
        "payment.refund",
        payment,
        owner_id=payment.user_id,
        before={"refunded_cents": payment.refunded_cents},
        after={"refund_requested_cents": cents, "reason": reason, "refund": refund.id},
    )
    return str(refund.id)


def refund_view(
    model_admin: admin.ModelAdmin, request: HttpRequest, object_id: str
) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    payment = get_object_or_404(Payment.objects.select_related("user"), pk=object_id)
    remaining = refundable_cents(payment)
    initial = {"token": uuid.uuid4().hex, "amount": (Decimal(remaining) / 100).quantize(CENT)}
    form = RefundForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            refund_id = payment_refund(
                payment=payment,
                cents=int(data["amount"] * 100),
                reason=data["reason"],
                token=data["token"],
                staff=request.user,
            )
        except (ValueError, PaymentsNotConfigured) as refused:
            form.add_error(None, str(refused))
        except stripe.StripeError as error:
            form.add_error(None, f"Stripe refused: {error.user_message or error}")
        else:
            messages.success(
                request,
                f"Refund {refund_id} of ${data['amount']:.2f} asked of Stripe; the credit is "
                "taken back when Stripe confirms it.",
            )
            return HttpResponseRedirect(reverse("admin:payments_payment_changelist"))
    context: dict[str, Any] = {
        **model_admin.admin_site.each_context(request),
        "title": f"Refund a payment of {payment.user}",
        "opts": model_admin.model._meta,
        "payment": payment,
        "paid": dollars(payment.amount_cents),
        "refunded": dollars(payment.refunded_cents),
        "form": form,
    }
    return TemplateResponse(request, "admin/payments/payment/refund.html", context)
