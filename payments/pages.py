"""The pages payments owns: pricing (plans and credit packs), billing (buy credit, the
customer's payments), and where Stripe's Checkout sends the customer back. The return page
only reports: credit is granted by Stripe's signed event (payments.checkout_events), never
by a visit, which anyone can make with a session id in the address."""

from __future__ import annotations

import logging
from decimal import ROUND_HALF_UP, Decimal

import stripe
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from accounts.authentication import request_user
from accounts.models import Plan, User
from billing.selectors import balance_of
from core.amounts import CENTS, dollars_text
from payments.billing_settings import SettingsRefused, billing_settings_of, billing_settings_update
from payments.checkout import (
    PurchaseRefused,
    Quote,
    checkout_start,
    quote_custom,
    quote_pack,
    quote_with_coupon,
)
from payments.coupons import CouponRefused, coupon_redeem
from payments.models import CreditPack, Payment
from payments.referrals import ReferralRefused, referral_apply, referral_stats
from payments.stripe_api import PaymentsNotConfigured, payments_configured
from payments.subscriptions import (
    SubscriptionRefused,
    plan_for_sale,
    portal_session_url,
    subscription_checkout_start,
    subscription_live,
)

log = logging.getLogger(__name__)
PAYMENTS_SHOWN = 20


def checkout_success(request: HttpRequest) -> HttpResponse:
    session_id = request.GET.get("session_id", "")[:255]
    payment = Payment.objects.filter(checkout_session_id=session_id).first() if session_id else None
    return render(request, "payments/checkout_return.html", {"payment": payment, "paid": True})


def checkout_cancel(request: HttpRequest) -> HttpResponse:
    return render(request, "payments/checkout_return.html", {"payment": None, "paid": False})


def pricing(request: HttpRequest) -> HttpResponse:
    """Plans and credit packs as staff set them up (the admin), with the top-up fee."""
    context = {
        "plans": Plan.objects.filter(public=True).order_by("position", "price_cents"),
        "packs": CreditPack.objects.filter(active=True),
        "fee_percent": settings.GATEWAYZ_TOPUP_FEE_PERCENT,
        "fee_min": settings.GATEWAYZ_TOPUP_FEE_MIN,
        "topup_min": settings.GATEWAYZ_TOPUP_MIN,
        "topup_max": settings.GATEWAYZ_TOPUP_MAX,
    }
    return render(request, "payments/pricing.html", context)


class BuyForm(forms.Form):
    package = forms.IntegerField(required=False, widget=forms.RadioSelect)
    amount = forms.DecimalField(
        label="Or an amount of your choice",
        required=False,
        max_digits=10,
        decimal_places=2,
        help_text="In dollars: 1 credit is 1 dollar.",
    )
    coupon = forms.CharField(label="Coupon code", required=False, max_length=64)
    save_card = forms.BooleanField(
        label="Save my card for auto top-up", required=False, initial=False
    )


def _quote(form: BuyForm, user: User) -> Quote:
    data = form.cleaned_data
    if (data["package"] is None) == (data["amount"] is None):
        raise PurchaseRefused("Choose a package or type an amount (not both).", "package")
    quote = quote_pack(data["package"]) if data["package"] else quote_custom(data["amount"])
    if data["coupon"]:
        quote = quote_with_coupon(quote, user=user, code=data["coupon"].strip())
    return quote


@login_required
@require_http_methods(["GET", "POST"])
def billing(request: HttpRequest) -> HttpResponse:
    """Buy credit (Stripe Checkout), and the customer's payments. Credit is granted by
    Stripe's signed event when the payment succeeds, never by this page."""
    user = request_user(request)
    form = BuyForm(data=request.POST or None)
    configured = payments_configured()
    if request.method == "POST" and configured and form.is_valid():
        try:
            quote = _quote(form, user)
            success = request.build_absolute_uri("/billing/success?session_id=")
            _, url = checkout_start(
                user=user,
                quote=quote,
                success_url=success + "{CHECKOUT_SESSION_ID}",
                cancel_url=request.build_absolute_uri("/billing/cancel"),
                save_card=form.cleaned_data["save_card"],
            )
            return redirect(url)
        except PurchaseRefused as refused:
            form.add_error(refused.param if refused.param in form.fields else None, str(refused))
        except CouponRefused as refused:
            form.add_error("coupon", str(refused))
        except PaymentsNotConfigured:
            configured = False
        except stripe.StripeError as error:
            log.warning("Stripe refused a Checkout Session: %s", error)
            form.add_error(None, "Stripe did not open the payment page; try again in a moment.")
    settings_row = billing_settings_of(user)
    context = {
        "form": form,
        "configured": configured,
        "balance": balance_of(user=user),
        "plans": Plan.objects.filter(public=True, price_cents__gt=0),
        "subscription": subscription_live(user),
        "settings_form": BillingSettingsForm(
            initial={
                # Stored to the micro-dollar; asked and shown in cents.
                "low_balance_threshold": _cents(settings_row.low_balance_threshold),
                "auto_topup_enabled": settings_row.auto_topup_enabled,
                "auto_topup_threshold": _cents(settings_row.auto_topup_threshold),
                "auto_topup_amount": _cents(settings_row.auto_topup_amount),
            }
        ),
        "card": (
            f"{settings_row.card_brand} …{settings_row.card_last4}".strip()
            if settings_row.payment_method_id
            else ""
        ),
        "referral": referral_stats(user, listed=False),
        "packs": CreditPack.objects.filter(active=True),
        "payments": Payment.objects.filter(user=user).order_by("-created_at")[:PAYMENTS_SHOWN],
        "topup_min": settings.GATEWAYZ_TOPUP_MIN,
        "topup_max": settings.GATEWAYZ_TOPUP_MAX,
    }
    return render(request, "payments/billing.html", context, status=422 if form.errors else 200)


def _cents(amount: Decimal | None) -> Decimal | None:
    return None if amount is None else amount.quantize(CENTS, rounding=ROUND_HALF_UP)


class BillingSettingsForm(forms.Form):
    low_balance_threshold = forms.DecimalField(
        label="Mail me when available credit falls under",
        required=False,
        min_value=0,
        max_digits=12,
        decimal_places=2,
        help_text="In dollars; empty: no mail.",
    )
    auto_topup_enabled = forms.BooleanField(label="Top up automatically", required=False)
    auto_topup_threshold = forms.DecimalField(
        label="When available credit falls under", min_value=0, max_digits=12, decimal_places=2
    )
    auto_topup_amount = forms.DecimalField(
        label="Buy this much", max_digits=12, decimal_places=2, help_text="In dollars."
    )


def _back(request: HttpRequest, message: str, *, error: bool = False) -> HttpResponse:
    (messages.error if error else messages.success)(request, message)
    return redirect("billing")


@login_required
@require_POST
def billing_plan(request: HttpRequest) -> HttpResponse:
    """Subscribes to a plan through Stripe Checkout."""
    try:
        plan = plan_for_sale(request.POST.get("plan", ""))
        _, url = subscription_checkout_start(
            user=request_user(request),
            plan=plan,
            success_url=request.build_absolute_uri("/billing/success?plan=1"),
            cancel_url=request.build_absolute_uri("/billing/cancel"),
        )
    except (SubscriptionRefused, PurchaseRefused) as refused:
        return _back(request, str(refused), error=True)
    except PaymentsNotConfigured:
        return _back(request, "Payments are not set up here.", error=True)
    except stripe.StripeError as error:
        log.warning("Stripe refused a subscription Checkout Session: %s", error)
        return _back(request, "Stripe did not open the payment page; try again.", error=True)
    return redirect(url)


@login_required
@require_POST
def billing_portal(request: HttpRequest) -> HttpResponse:
    """Stripe's Billing Portal: change or cancel the plan, update the card, invoices."""
    try:
        url = portal_session_url(
            user=request_user(request), return_url=request.build_absolute_uri("/billing")
        )
    except PaymentsNotConfigured:
        return _back(request, "Payments are not set up here.", error=True)
    except stripe.StripeError as error:
        log.warning("Stripe refused a Billing Portal session: %s", error)
        return _back(request, "Stripe did not open the billing portal; try again.", error=True)
    return redirect(url)


@login_required
@require_POST
def billing_settings_save(request: HttpRequest) -> HttpResponse:
    form = BillingSettingsForm(request.POST)
    if not form.is_valid():
        problems = "; ".join(
            f"{form.fields[f].label}: {' '.join(str(m) for m in e)}" for f, e in form.errors.items()
        )
        return _back(request, f"Not saved. {problems}", error=True)
    try:
        billing_settings_update(user=request_user(request), **form.cleaned_data)
    except SettingsRefused as refused:
        return _back(request, f"Not saved: {refused}", error=True)
    return _back(request, "Saved your top-up and notice settings.")


@login_required
@require_POST
def billing_coupon(request: HttpRequest) -> HttpResponse:
    code = request.POST.get("code", "").strip()[:64]
    if not code:
        return _back(request, "Type the coupon's code.", error=True)
    try:
        redeemed = coupon_redeem(user=request_user(request), code=code)
    except CouponRefused as refused:
        return _back(request, str(refused), error=True)
    added = dollars_text(redeemed.credits)
    return _back(request, f"Coupon {code.upper()}: {added} of credit added.")


@login_required
@require_POST
def billing_referral(request: HttpRequest) -> HttpResponse:
    code = request.POST.get("code", "").strip()[:16]
    try:
        referral_apply(referee=request_user(request), code=code)
    except ReferralRefused as refused:
        return _back(request, str(refused), error=True)
    return _back(request, "Referral code applied: its bonus comes with your first purchase.")
