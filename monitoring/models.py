from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone


class RequestLog(models.Model):
    """One row per inference request, written by settlement (idempotent on request_id)."""

    request_id = models.CharField(max_length=64, unique=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    api_key = models.ForeignKey(
        "accounts.ApiKey", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    endpoint = models.CharField(max_length=64)
    requested_model = models.CharField(max_length=200, blank=True)
    served_model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    status = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    cache_write_tokens = models.PositiveIntegerField(default=0)
    cost = models.DecimalField(max_digits=24, decimal_places=12, default=Decimal(0))
    upstream_latency_ms = models.FloatField(null=True, blank=True)
    ttft_ms = models.FloatField(null=True, blank=True)
    total_latency_ms = models.FloatField()
    stream = models.BooleanField(default=False)
    # Every upstream attempt, in order: {provider, model, status (0: no answer), latency_ms,
    # error}; the last one served, unless the request failed.
    attempts = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at",)
        indexes = [models.Index(fields=("user", "-created_at"))]

    def __str__(self) -> str:
        return f"{self.request_id} {self.status}"


class HealthSample(models.Model):
    """One health check of a provider (model blank: the provider as a whole) or of one
    deployment: what the uptime timelines are drawn from."""

    class Status(models.TextChoices):
        OPERATIONAL = "operational"
        DEGRADED = "degraded"
        DOWN = "down"

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices)
    http_status = models.PositiveSmallIntegerField(default=0)  # 0: no answer
    latency_ms = models.FloatField(null=True, blank=True)
    detail = models.CharField(max_length=300, blank=True)
    checked_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ("-checked_at",)
        indexes = [models.Index(fields=("provider", "model", "-checked_at"))]

    def __str__(self) -> str:
        return f"{self.provider} {self.model} {self.status}"
