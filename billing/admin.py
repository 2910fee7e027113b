from __future__ import annotations

from functools import partial

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html

from billing.models import CreditAccount, CreditHold, LedgerEntry, RequestLog, Trial
from billing.staff_admin import PERMISSION, adjust_view
from billing.trials import trial_end_now, trial_extend
from core.amounts import amount_text
from core.readonly_admin import ReadOnlyAdmin


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ("user", "credits", "credits_held", "updated_at")
    search_fields = ("user__email",)

    def get_list_display(self, request: HttpRequest) -> tuple[str, ...]:
        if request.user.has_perm(PERMISSION):  # beside the name: in view on a phone too
            return ("user", "change_credit", *self.list_display[1:])
        return self.list_display

    @admin.display(description="balance", ordering="balance")
    def credits(self, account: CreditAccount) -> str:
        return amount_text(account.balance)

    @admin.display(description="held", ordering="held")
    def credits_held(self, account: CreditAccount) -> str:
        return amount_text(account.held)

    def get_urls(self) -> list[URLPattern]:
        adjust = self.admin_site.admin_view(partial(adjust_view, self))
        own = [path("<path:object_id>/adjust/", adjust, name="billing_creditaccount_adjust")]
        return own + super().get_urls()

    @admin.display(description="")
    def change_credit(self, account: CreditAccount) -> str:
        url = reverse("admin:billing_creditaccount_adjust", args=[account.pk])
        return format_html('<a href="{}">Grant, refund or deduct</a>', url)


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


@admin.register(Trial)
class TrialAdmin(ReadOnlyAdmin):
    list_display = (
        "user",
        "credit",
        "daily_cap",
        "started_at",
        "ends_at",
        "ended_at",
        "converted_at",
    )
    list_filter = ("ended_at", "converted_at")
    search_fields = ("user__email", "email_key", "ip")
    list_select_related = ("user",)
    actions = ("end_now", "extend_week")

    def get_actions(self, request: HttpRequest):  # type: ignore[no-untyped-def]  # Django's
        actions = super().get_actions(request)
        if not request.user.has_perm("billing.change_trial"):
            actions.pop("end_now", None)
            actions.pop("extend_week", None)
        return actions

    @admin.action(description="End the selected trials now (their unspent credit taken back)")
    def end_now(self, request: HttpRequest, trials: QuerySet[Trial]) -> None:
        for trial in trials:
            trial_end_now(trial=trial)
        messages.info(request, f"{len(trials)} trial(s) ended.")

    @admin.action(description="Extend the selected trials by 7 days")
    def extend_week(self, request: HttpRequest, trials: QuerySet[Trial]) -> None:
        for trial in trials:
            trial_extend(trial=trial, days=7)
        messages.info(request, f"{len(trials)} trial(s) extended by 7 days.")
