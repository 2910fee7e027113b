"""The customer's payments API, on the seed's paths: the credit packages on sale, a
Checkout Session to buy one (or a custom amount), and the payments made."""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import stripe
from django.conf import settings
from django.utils.http import url_has_allowed_host_and_scheme
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from core.amounts import amount_text
from payments.checkout import (
    PurchaseRefused,
    checkout_start,
    fee_cents_for,
    quote_custom,
    quote_pack,
    quote_with_coupon,
)
from payments.coupons import CouponRefused
from payments.models import CreditPack, Payment
from payments.stripe_api import NOT_CONFIGURED, PaymentsNotConfigured, payments_configured

log = logging.getLogger(__name__)


def refusal(status_code: int, message: str, code: str, param: str | None = None) -> Response:
    """An error the client can act on: what went wrong, a stable code, the field at fault."""
    body = {"detail": message, "code": code}
    if param:
        body["param"] = param
    return Response(body, status=status_code)


def not_configured() -> Response:
    return refusal(status.HTTP_503_SERVICE_UNAVAILABLE, NOT_CONFIGURED, "payments_not_configured")


class CreditPackOutput(serializers.ModelSerializer):
    price = serializers.SerializerMethodField(help_text="US dollars, as a string")
    credits = serializers.DecimalField(max_digits=24, decimal_places=12, coerce_to_string=True)
    fee_cents = serializers.SerializerMethodField()

    class Meta:
        model = CreditPack
        fields = ("id", "name", "price_cents", "price", "credits", "fee_cents")

    def get_price(self, pack: CreditPack) -> str:
        return f"{pack.price_cents / 100:.2f}"

    def get_fee_cents(self, pack: CreditPack) -> int:
        return fee_cents_for(pack.price_cents)


class CreditPackages(APIView):
    """Public: the pricing page reads it before anyone signs in."""

    permission_classes = (AllowAny,)
    authentication_classes = ()

    @extend_schema(
        responses=inline_serializer(
            "CreditPackages",
            {
                "payments_configured": serializers.BooleanField(),
                "packages": CreditPackOutput(many=True),
                "custom_amount": inline_serializer(
                    "CustomAmount",
                    {"min": serializers.CharField(), "max": serializers.CharField()},
                ),
                "fee": inline_serializer(
                    "TopUpFee",
                    {"percent": serializers.CharField(), "min": serializers.CharField()},
                ),
            },
        )
    )
    def get(self, request: Request) -> Response:
        packs = CreditPack.objects.filter(active=True)
        return Response(
            {
                "payments_configured": payments_configured(),
                "packages": CreditPackOutput(packs, many=True).data,
                "custom_amount": {
                    "min": amount_text(settings.GATEWAYZ_TOPUP_MIN),
                    "max": amount_text(settings.GATEWAYZ_TOPUP_MAX),
                },
                "fee": {
                    "percent": amount_text(settings.GATEWAYZ_TOPUP_FEE_PERCENT),
                    "min": amount_text(settings.GATEWAYZ_TOPUP_FEE_MIN),
                },
            }
        )


class CheckoutInput(serializers.Serializer):
    # Bounded: an id past the database's integer range is no package, not a database error.
    package_id = serializers.IntegerField(
        required=False, min_value=1, max_value=2**31 - 1, help_text="A credit package's id"
    )
    amount = serializers.CharField(
        required=False, help_text='Or a custom amount of credits (US dollars), e.g. "25.00"'
    )
    coupon = serializers.CharField(
        required=False, max_length=40, help_text="A percentage coupon's code"
    )
    save_card = serializers.BooleanField(
        required=False, default=False, help_text="Keep the card for auto top-up"
    )
    success_url = serializers.URLField(required=False)
    cancel_url = serializers.URLField(required=False)


def return_url(request: Request, given: str | None, default_path: str, param: str) -> str:
    """Where Stripe sends the customer back: this site (or a trusted origin) only."""
    if not given:
        return request.build_absolute_uri(default_path)
    hosts = {request.get_host(), *(urlsplit(o).netloc for o in settings.CSRF_TRUSTED_ORIGINS)}
    if not url_has_allowed_host_and_scheme(given, allowed_hosts=hosts):
        raise PurchaseRefused(f"{param} must be a page of this site.", param)
    return given


class CheckoutSession(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    @extend_schema(
        request=CheckoutInput,
        responses={
            201: inline_serializer(
                "CheckoutSession",
                {
                    "payment_id": serializers.IntegerField(),
                    "session_id": serializers.CharField(),
                    "url": serializers.URLField(help_text="Send the customer here to pay"),
                    "credits": serializers.CharField(),
                    "amount_cents": serializers.IntegerField(),
                    "fee_cents": serializers.IntegerField(),
                    "discount_cents": serializers.IntegerField(),
                },
            ),
            503: OpenApiResponse(description="Payments are not configured"),
        },
    )
    def post(self, request: Request) -> Response:
        if not payments_configured():
            return not_configured()
        given = CheckoutInput(data=request.data)
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            if ("package_id" in data) == ("amount" in data):
                raise PurchaseRefused("Give either package_id or amount.", "package_id")
            quote = (
                quote_pack(data["package_id"])
                if "package_id" in data
                else quote_custom(data["amount"])
            )
            if data.get("coupon"):
                quote = quote_with_coupon(quote, user=request_user(request), code=data["coupon"])
            success = return_url(
                request,
                data.get("success_url"),
                "/billing/success?session_id={CHECKOUT_SESSION_ID}",
                "success_url",
            )
            cancel = return_url(request, data.get("cancel_url"), "/billing/cancel", "cancel_url")
        except PurchaseRefused as refused:
            return refusal(400, str(refused), "invalid_request", refused.param)
        except CouponRefused as refused:
            return refusal(refused.status, str(refused), refused.code, "coupon")
        # `{CHECKOUT_SESSION_ID}` is Stripe's placeholder: build_absolute_uri quotes it.
        success = success.replace("%7BCHECKOUT_SESSION_ID%7D", "{CHECKOUT_SESSION_ID}")
        try:
            payment, url = checkout_start(
                user=request_user(request),
                quote=quote,
                success_url=success,
                cancel_url=cancel,
                save_card=data["save_card"],
            )
        except CouponRefused as refused:  # used up since it was checked
            return refusal(refused.status, str(refused), refused.code, "coupon")
        except PaymentsNotConfigured:
            return not_configured()
        except stripe.StripeError as error:
            log.warning("Stripe refused a Checkout Session: %s", error)
            message = f"Stripe did not open the payment page: {error.user_message or error}"
            return refusal(status.HTTP_502_BAD_GATEWAY, message, "stripe_error")
        return Response(
            {
                "payment_id": payment.pk,
                "session_id": payment.checkout_session_id,
                "url": url,
                "credits": amount_text(payment.credits),
                "amount_cents": payment.amount_cents,
                "fee_cents": payment.fee_cents,
                "discount_cents": payment.discount_cents,
            },
            status=status.HTTP_201_CREATED,
        )


class PaymentOutput(serializers.ModelSerializer):
    credits = serializers.DecimalField(max_digits=24, decimal_places=12, coerce_to_string=True)

    class Meta:
        model = Payment
        fields = (
            "id",
            "kind",
            "status",
            "credits",
            "amount_cents",
            "fee_cents",
            "refunded_cents",
            "currency",
            "created_at",
            "paid_at",
        )


class Payments(ListAPIView):
    serializer_class = PaymentOutput
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    def get_queryset(self):  # type: ignore[no-untyped-def]  # DRF's signature
        return Payment.objects.filter(user=request_user(self.request))
