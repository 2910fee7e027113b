from __future__ import annotations

from django.contrib import admin

from chats.models import ChatMessage, ChatSession
from core.readonly_admin import ReadOnlyAdmin


class MessageInline(admin.TabularInline):
    model = ChatMessage
    extra = 0
    can_delete = False
    fields = ("role", "model", "content", "cost", "latency_ms", "feedback", "created_at")
    readonly_fields = fields


@admin.register(ChatSession)
class ChatSessionAdmin(ReadOnlyAdmin):
    """Customers' playground chats, for support to read when asked about an answer."""

    list_display = ("title", "user", "model", "updated_at")
    search_fields = ("title", "user__email")
    list_select_related = ("user",)
    inlines = (MessageInline,)
