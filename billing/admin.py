from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from billing.models import CreditAccount, CreditHold, LedgerEntry


class ReadOnlyAdmin(admin.ModelAdmin):
    """The ledger changes only through billing services: never edited by hand."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


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
