from __future__ import annotations

from django.contrib import admin

from billing.models import CreditAccount, CreditHold, LedgerEntry
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
