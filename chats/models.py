"""Conversations customers have in the web playground, kept for them: a session and its
messages, what each answer cost and how long it took, feedback, and a share link."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class ChatSession(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="chat_sessions"
    )
    title = models.CharField(max_length=200, blank=True)
    model = models.CharField(max_length=200, blank=True, help_text="The last model asked.")
    system_prompt = models.TextField(blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now, db_index=True)
    # A read-only public page at /share/<token> while set; revoking clears it.
    share_token = models.CharField(max_length=43, unique=True, null=True, blank=True)

    class Meta:
        ordering = ("-updated_at", "-id")
        indexes = [models.Index(fields=("user", "-updated_at"))]

    def __str__(self) -> str:
        return self.title or f"Chat {self.pk}"


class ChatMessage(models.Model):
    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    session = models.ForeignKey(ChatSession, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    model = models.CharField(max_length=200, blank=True)
    # An answer's figures, as the gateway reported them (usage.cost: exact credits).
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True)
    completion_tokens = models.PositiveIntegerField(null=True, blank=True)
    cost = models.DecimalField(max_digits=24, decimal_places=12, null=True, blank=True)
    latency_ms = models.PositiveIntegerField(null=True, blank=True)
    feedback = models.SmallIntegerField(default=0, choices=[(1, "good"), (0, "none"), (-1, "bad")])
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("created_at", "id")

    def __str__(self) -> str:
        return f"{self.role}: {self.content[:40]}"
