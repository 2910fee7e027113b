from django.urls import path

from payments.api import CheckoutSession, CreditPackages, Payments
from payments.pages import (
    billing,
    billing_coupon,
    billing_plan,
    billing_portal,
    billing_referral,
    billing_settings_save,
    checkout_cancel,
    checkout_success,
    pricing,
)
from payments.plans_api import Plans, PortalSession, SubscriptionCheckout, UserPlan
from payments.promotions_api import CouponRedeem, ReferralApply, ReferralCodeView, ReferralStats
from payments.settings_api import BillingSettingsView
from payments.webhook import StripeWebhook

urlpatterns = [
    path("api/stripe/credit-packages", CreditPackages.as_view(), name="credit-packages"),
    path("api/stripe/checkout-session", CheckoutSession.as_view(), name="checkout-session"),
    path("api/stripe/payments", Payments.as_view(), name="payments"),
    path(
        "api/stripe/subscription-checkout",
        SubscriptionCheckout.as_view(),
        name="subscription-checkout",
    ),
    path("api/stripe/portal-session", PortalSession.as_view(), name="portal-session"),
    path("plans", Plans.as_view(), name="plans"),
    path("user/plan", UserPlan.as_view(), name="user-plan"),
    path("user/billing-settings", BillingSettingsView.as_view(), name="billing-settings"),
    path("api/stripe/webhook", StripeWebhook.as_view(), name="stripe-webhook"),
    path("coupons/redeem", CouponRedeem.as_view(), name="coupon-redeem"),
    path("referral/code", ReferralCodeView.as_view(), name="referral-code"),
    path("referral/stats", ReferralStats.as_view(), name="referral-stats"),
    path("referral/apply", ReferralApply.as_view(), name="referral-apply"),
    path("pricing", pricing, name="pricing"),
    path("billing", billing, name="billing"),
    path("billing/plan", billing_plan, name="billing-plan"),
    path("billing/portal", billing_portal, name="billing-portal"),
    path("billing/settings", billing_settings_save, name="billing-settings-save"),
    path("billing/coupon", billing_coupon, name="billing-coupon"),
    path("billing/referral", billing_referral, name="billing-referral"),
    path("billing/success", checkout_success, name="checkout-success"),
    path("billing/cancel", checkout_cancel, name="checkout-cancel"),
]
