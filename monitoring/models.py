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


# Upper bounds (ms) of the latency and time-to-first-token histogram buckets; the last bucket
# has no bound. Counts per bucket add across rows, so percentiles of any grouping and window
# come from summed buckets (monitoring.rollups.percentile), never from averaged percentiles.
LATENCY_BUCKETS_MS = (50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000)


class UsageRollup(models.Model):
    """The request log summed by hour or day, per user, key, model and provider: what the
    usage, monitoring and discovery views read instead of scanning the log. Written by
    monitoring.rollups (the current hour every minute), recomputable for any window."""

    class Granularity(models.TextChoices):
        HOUR = "hour"
        DAY = "day"

    granularity = models.CharField(max_length=4, choices=Granularity.choices)
    bucket = models.DateTimeField(help_text="The hour's or the day's start (UTC).")
    # Every customer's requests of the bucket summed per model and provider (user and key
    # empty): what staff, discovery and uptime read. Else one customer's key's.
    total = models.BooleanField(default=False)
    user_id = models.BigIntegerField(null=True)  # ids, not keys: rows outlive what they name
    api_key_id = models.BigIntegerField(null=True)
    model = models.CharField(max_length=200, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    # 5xx answers: the gateway or its providers failed (uptime counts these, not the
    # client's own mistakes or departures).
    server_errors = models.PositiveIntegerField(default=0)
    errors_by_type = models.JSONField(default=dict)  # error_type -> count
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    cost = models.DecimalField(max_digits=24, decimal_places=12, default=0)
    provider_cost = models.DecimalField(max_digits=24, decimal_places=12, default=0)
    latency_ms_sum = models.FloatField(default=0)  # for averages, beside the percentiles
    latency_buckets = models.JSONField(default=list)  # counts per LATENCY_BUCKETS_MS (+1)
    ttft_buckets = models.JSONField(default=list)

    class Meta:
        indexes = [
            models.Index(fields=("granularity", "bucket")),
            models.Index(fields=("user_id", "granularity", "bucket")),
            models.Index(fields=("total", "granularity", "bucket"), name="rollup_total_idx"),
            # Distinct customers of a window (monitoring.stats.users_by) are counted from
            # this index alone, never the wide rows: 4× faster over a month on Postgres.
            models.Index(
                fields=("granularity", "bucket"),
                include=("model", "provider", "user_id"),
                condition=models.Q(total=False, user_id__isnull=False),
                name="rollup_customers_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.granularity} {self.bucket:%Y-%m-%d %H:%M} {self.model} {self.provider}"


class Incident(models.Model):
    """A stretch of trouble at a provider (model blank: the provider as a whole), opened and
    closed by monitoring.incidents from traffic, checks and anomalies; staff add a note. The
    uptime timelines mark the buckets an incident overlaps."""

    class Kind(models.TextChoices):
        DOWNTIME = "downtime", "checks failing"
        ERROR_SURGE = "error_surge", "error rate over the threshold"
        ERROR_ANOMALY = "error_anomaly", "error rate unusual for the hour"
        LATENCY_ANOMALY = "latency_anomaly", "latency unusual for the hour"

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=200, blank=True)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    opened_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)
    # The worst figure seen while open: an error rate (0-1) or a z-score, by kind.
    peak = models.FloatField(default=0)
    detail = models.CharField(max_length=300, blank=True)
    note = models.TextField(blank=True, help_text="Staff's account: cause, action, follow-up.")

    class Meta:
        ordering = ("-opened_at",)
        indexes = [models.Index(fields=("provider", "-opened_at"))]
        constraints = [
            # One open incident per provider, model and kind: evaluation updates it.
            models.UniqueConstraint(
                fields=("provider", "model", "kind"),
                condition=models.Q(closed_at__isnull=True),
                name="incident_one_open",
            )
        ]

    def __str__(self) -> str:
        where = f"{self.provider} {self.model}".strip()
        return f"{where}: {self.get_kind_display()}"

    @property
    def minutes(self) -> float | None:
        if self.closed_at is None:
            return None
        return (self.closed_at - self.opened_at).total_seconds() / 60
