"""Promotions on the seed's paths: redeem a coupon; a referral code, its stats, and
applying someone's code before one's first purchase."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from core.amounts import amount_text
from payments.api import refusal
from payments.coupons import CouponRefused, coupon_redeem
from payments.referrals import ReferralRefused, referral_apply, referral_code_of, referral_stats


class CodeInput(serializers.Serializer):
    code = serializers.CharField(max_length=40)


CODE_INPUT = CodeInput
REFUSAL = inline_serializer(
    "PromotionRefusal", {"detail": serializers.CharField(), "code": serializers.CharField()}
)


def _code(request: Request) -> str | None:
    """The code given, or None (none, not text, too long, or with a NUL character)."""
    given = CodeInput(data=request.data)
    return given.validated_data["code"] if given.is_valid() else None


class CouponRedeem(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    @extend_schema(
        request=CODE_INPUT,
        responses={
            200: inline_serializer(
                "CouponRedeemed",
                {"code": serializers.CharField(), "credits": serializers.CharField()},
            ),
            400: REFUSAL,
            404: REFUSAL,
            409: REFUSAL,
        },
    )
    def post(self, request: Request) -> Response:
        code = _code(request)
        if code is None:
            return refusal(400, "Give the coupon's code.", "invalid_request", "code")
        try:
            redemption = coupon_redeem(user=request_user(request), code=code)
        except CouponRefused as refused:
            return refusal(refused.status, str(refused), refused.code)
        return Response(
            {"code": redemption.coupon.code, "credits": amount_text(redemption.credits)}
        )


class ReferralCodeView(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    @extend_schema(
        responses=inline_serializer(
            "ReferralCode",
            {"code": serializers.CharField(), "max_uses": serializers.IntegerField()},
        )
    )
    def get(self, request: Request) -> Response:
        code = referral_code_of(request_user(request))
        return Response({"code": code.code, "max_uses": settings.GATEWAYZ_REFERRAL_MAX_USES})


class ReferralStats(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    @extend_schema(
        responses=inline_serializer(
            "ReferralStats",
            {
                "code": serializers.CharField(),
                "uses": serializers.IntegerField(),
                "max_uses": serializers.IntegerField(),
                "rewarded": serializers.IntegerField(),
                "earned": serializers.CharField(),
                "bonus": serializers.CharField(),
                "min_purchase": serializers.CharField(),
                "referrals": inline_serializer(
                    "ReferralRow",
                    {
                        "email": serializers.CharField(help_text="masked"),
                        "joined_at": serializers.DateTimeField(),
                        "rewarded_at": serializers.DateTimeField(allow_null=True),
                    },
                    many=True,
                ),
            },
        )
    )
    def get(self, request: Request) -> Response:
        return Response(referral_stats(request_user(request)))


class ReferralApply(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    @extend_schema(
        request=CODE_INPUT,
        responses={
            201: inline_serializer("ReferralApplied", {"referrer_code": serializers.CharField()}),
            400: REFUSAL,
            404: REFUSAL,
            409: REFUSAL,
        },
    )
    def post(self, request: Request) -> Response:
        code = _code(request)
        if code is None:
            return refusal(400, "Give the referral code.", "invalid_request", "code")
        try:
            referral_apply(referee=request_user(request), code=code)
        except ReferralRefused as refused:
            status = {"NOT_FOUND": 404, "ALREADY_REFERRED": 409, "MAX_USES_EXCEEDED": 409}
            return refusal(status.get(refused.code, 400), str(refused), refused.code)
        return Response({"referrer_code": code.upper()}, status=201)
