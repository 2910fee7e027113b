from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from monitoring.models import RequestLog


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
