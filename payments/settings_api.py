"""GET / PATCH /user/billing-settings: the low-balance notice's threshold and auto top-up
(on or off, threshold, amount, the saved card)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from core.amounts import amount_text
from payments.api import refusal
from payments.billing_settings import SettingsRefused, billing_settings_of, billing_settings_update
from payments.models import BillingSettings


def dollars_field(**options: Any) -> serializers.DecimalField:
    return serializers.DecimalField(max_digits=12, decimal_places=2, **options)


class BillingSettingsInput(serializers.Serializer):
    low_balance_threshold = dollars_field(
        min_value=0, allow_null=True, required=False, help_text="null: no notice"
    )
    auto_topup_enabled = serializers.BooleanField(required=False)
    auto_topup_threshold = dollars_field(min_value=0, required=False)
    auto_topup_amount = dollars_field(required=False)


class AutoTopUpOutput(serializers.Serializer):
    enabled = serializers.BooleanField()
    threshold = serializers.CharField()
    amount = serializers.CharField()
    card = serializers.CharField(allow_null=True, help_text="e.g. visa …4242; null: none saved")
    failures = serializers.IntegerField(help_text="declines in a row")
    charging = serializers.BooleanField(help_text="a top-up is being charged")


class BillingSettingsOutput(serializers.Serializer):
    low_balance_threshold = serializers.CharField(allow_null=True)
    auto_topup = AutoTopUpOutput()


def _shown(row: BillingSettings) -> dict[str, Any]:
    card = f"{row.card_brand} …{row.card_last4}".strip() if row.payment_method_id else None
    threshold = row.low_balance_threshold
    return {
        "low_balance_threshold": None if threshold is None else amount_text(threshold),
        "auto_topup": {
            "enabled": row.auto_topup_enabled,
            "threshold": amount_text(row.auto_topup_threshold),
            "amount": amount_text(row.auto_topup_amount),
            "card": card,
            "failures": row.auto_topup_failures,
            "charging": row.auto_topup_payment_id is not None,
        },
    }


class BillingSettingsView(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "billing"

    @extend_schema(responses=BillingSettingsOutput)
    def get(self, request: Request) -> Response:
        return Response(_shown(billing_settings_of(request_user(request))))

    @extend_schema(request=BillingSettingsInput, responses=BillingSettingsOutput)
    def patch(self, request: Request) -> Response:
        given = BillingSettingsInput(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            row = billing_settings_update(user=request_user(request), **given.validated_data)
        except SettingsRefused as refused:
            return refusal(400, str(refused), refused.code, refused.param)
        return Response(_shown(row))
