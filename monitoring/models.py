from __future__ import annotations

from django.db import models
from django.utils import timezone


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
