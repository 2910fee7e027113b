"""The customer's balance and credit transactions."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.generics import ListAPIView
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from billing.models import LedgerEntry
from billing.selectors import balance_of, ledger_entries_of
from core.amounts import amount_text

AMOUNT = serializers.CharField(help_text="An exact decimal, as a string.")


class Balance(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "usage:read"

    @extend_schema(
        responses=inline_serializer(
            "Balance",
            {
                "balance": AMOUNT,
                "held": AMOUNT,
                "available": AMOUNT,
                "allowance": AMOUNT,
                "allowance_expires_at": serializers.DateTimeField(allow_null=True),
                "purchased": AMOUNT,
                "currency": serializers.ChoiceField(choices=("credits",)),
            },
        )
    )
    def get(self, request: Request) -> Response:
        shown = balance_of(user=request_user(request))
        # Amounts as strings: exact decimals survive JSON that way.
        return Response(
            {
                "balance": amount_text(shown.balance),
                "held": amount_text(shown.held),
                "available": amount_text(shown.available),
                "allowance": amount_text(shown.allowance),
                "allowance_expires_at": shown.allowance_expires_at,
                "purchased": amount_text(shown.purchased),
                "currency": "credits",
            }
        )


class LedgerEntryOutput(serializers.ModelSerializer):
    amount = serializers.DecimalField(max_digits=24, decimal_places=12, coerce_to_string=True)
    balance_after = serializers.DecimalField(
        max_digits=24, decimal_places=12, coerce_to_string=True
    )

    class Meta:
        model = LedgerEntry
        fields = ("id", "kind", "amount", "balance_after", "reference", "memo", "created_at")


class CreditTransactions(ListAPIView):
    serializer_class = LedgerEntryOutput
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "usage:read"

    def get_queryset(self):  # type: ignore[no-untyped-def]  # DRF's signature
        return ledger_entries_of(user=request_user(self.request))
