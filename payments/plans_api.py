"""Plans on the seed's paths: what is on sale (public), the customer's own plan with their
allowance and purchased credit apart, a Checkout Session to subscribe, and the Billing
Portal to change or cancel."""

from __future__ import annotations

import logging
from typing import Any

import stripe
from django.conf import settings
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from accounts.models import Plan
from billing.selectors import credit_account_of
from core.amounts import amount_text
from payments.api import not_configured, refusal, return_url
from payments.checkout import PurchaseRefused
from payments.stripe_api import PaymentsNotConfigured, payments_configured
from payments.subscriptions import (
    SubscriptionRefused,
    plan_for_sale,
    portal_session_url,
    subscription_checkout_start,
    subscription_live,
)

log = logging.getLogger(__name__)
LIMITS = ("rpm", "rph", "rpd", "tpm", "tpd", "concurrent")


def plan_data(plan: Plan | None) -> dict[str, Any]:
    """A plan as customers read it: no plan is Free (the default limits)."""
    defaults = settings.GATEWAYZ_RATE_LIMITS["user"]
    limits = {}
    for kind in LIMITS:
        own = getattr(plan, f"limit_{kind}", None) if plan else None
        cap = own if own is not None else defaults.get(kind, 0)
        limits[kind] = cap or None  # None: no limit
    return {
        "slug": plan.slug if plan else "free",
        "name": plan.name if plan else "Free",
        "description": plan.description if plan else "",
        "price_cents": plan.price_cents if plan else 0,
        "interval": "month",
        "allowance": amount_text(plan.allowance) if plan else "0",
        "priority": plan.priority if plan else "default",
        "limits": limits,
    }


class PlanOutput(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    price_cents = serializers.IntegerField()
    interval = serializers.CharField()
    allowance = serializers.CharField(help_text="credits a month")
    priority = serializers.CharField()
    limits = serializers.DictField(
        child=serializers.IntegerField(allow_null=True), help_text="null: no limit"
    )

    class Meta:
        ref_name = "Plan"


class Plans(APIView):
    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        responses=inline_serializer(
            "Plans",
            {
                "data": PlanOutput(many=True),
                "payments_configured": serializers.BooleanField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        plans = [plan_data(p) for p in Plan.objects.filter(public=True)]
        if not any(p["slug"] == "free" for p in plans):
            plans.insert(0, plan_data(None))
        return Response({"data": plans, "payments_configured": payments_configured()})


class UserPlan(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "usage:read"

    @extend_schema(
        responses=inline_serializer(
            "UserPlan",
            {
                "plan": PlanOutput(),
                "subscription": inline_serializer(
                    "SubscriptionState",
                    {
                        "status": serializers.CharField(),
                        "current_period_end": serializers.DateTimeField(allow_null=True),
                        "cancel_at_period_end": serializers.BooleanField(),
                    },
                    allow_null=True,
                ),
                "allowance": serializers.CharField(),
                "allowance_expires_at": serializers.DateTimeField(allow_null=True),
                "purchased": serializers.CharField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        account = credit_account_of(user=user)
        live = subscription_live(user)
        subscription = None
        if live is not None:
            subscription = {
                "status": live.status,
                "current_period_end": live.current_period_end,
                "cancel_at_period_end": live.cancel_at_period_end,
            }
        return Response(
            {
                "plan": plan_data(user.plan),
                "subscription": subscription,
                "allowance": amount_text(account.allowance),
                "allowance_expires_at": account.allowance_expires_at,
                "purchased": amount_text(account.purchased),
            }
        )


class SubscribeInput(serializers.Serializer):
    plan = serializers.CharField(max_length=32, help_text="A plan's slug, e.g. pro")
    success_url = serializers.URLField(required=False)
    cancel_url = serializers.URLField(required=False)


URL_ANSWER = inline_serializer("StripePage", {"url": serializers.URLField()})


class SubscriptionCheckout(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    @extend_schema(
        request=SubscribeInput,
        responses={
            201: URL_ANSWER,
            409: OpenApiResponse(description="Already subscribed: use the portal"),
            503: OpenApiResponse(description="Payments are not configured"),
        },
    )
    def post(self, request: Request) -> Response:
        if not payments_configured():
            return not_configured()
        given = SubscribeInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        user = request_user(request)
        try:
            plan = plan_for_sale(data["plan"])
            success = return_url(
                request, data.get("success_url"), "/billing/success?plan=1", "success_url"
            )
            cancel = return_url(request, data.get("cancel_url"), "/billing/cancel", "cancel_url")
            _, url = subscription_checkout_start(
                user=user, plan=plan, success_url=success, cancel_url=cancel
            )
        except SubscriptionRefused as refused:
            return refusal(refused.status, str(refused), refused.code, "plan")
        except PurchaseRefused as refused:
            return refusal(400, str(refused), "invalid_request", refused.param)
        except PaymentsNotConfigured:
            return not_configured()
        except stripe.StripeError as error:
            log.warning("Stripe refused a subscription Checkout Session: %s", error)
            message = f"Stripe did not open the payment page: {error.user_message or error}"
            return refusal(502, message, "stripe_error")
        return Response({"url": url}, status=201)


class PortalSession(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    @extend_schema(
        request=None,
        responses={201: URL_ANSWER, 503: OpenApiResponse(description="Not configured")},
    )
    def post(self, request: Request) -> Response:
        try:
            given = request.data.get("return_url") if isinstance(request.data, dict) else None
            given = given if isinstance(given, str) else None
            back = return_url(request, given, "/billing", "return_url")
            url = portal_session_url(user=request_user(request), return_url=back)
        except PurchaseRefused as refused:
            return refusal(400, str(refused), "invalid_request", refused.param)
        except PaymentsNotConfigured:
            return not_configured()
        except stripe.StripeError as error:
            message = f"Stripe did not open the billing portal: {error.user_message or error}"
            return refusal(502, message, "stripe_error")
        return Response({"url": url}, status=201)
