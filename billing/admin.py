from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from billing.models import CreditAccount, CreditHold, LedgerEntry, RequestLog
from core.readonly_admin import ReadOnlyAdmin


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ("user", "balance", "held", "updated_at")
    search_fields = ("user__email",)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "user", "kind", "amount", "balance_after", "reference")
    list_filter = ("kind",)
    search_fields = ("user__email", "reference")


@admin.register(CreditHold)
class CreditHoldAdmin(ReadOnlyAdmin):
    list_display = ("request_id", "user", "amount", "created_at", "expires_at")


@admin.register(RequestLog)
class RequestLogAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "request_id",
        "user",
        "requested_model",
        "provider",
        "status",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "total_latency_ms",
    )
    list_filter = ("status", "provider", "stream")
    search_fields = ("request_id", "user__email", "requested_model")
    date_hierarchy = "created_at"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
