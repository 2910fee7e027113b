from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.utils import timezone


class Provider(models.Model):
    class Protocol(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    protocol = models.CharField(max_length=16, choices=Protocol.choices, default=Protocol.OPENAI)
    base_url = models.URLField(max_length=300)
    # The name of the environment variable that holds the provider's API key; the secret
    # itself never enters the database.
    credential_env = models.CharField(max_length=100, blank=True)
    connect_timeout = models.FloatField(default=5.0)
    read_timeout = models.FloatField(default=120.0)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("slug",)

    def __str__(self) -> str:
        return self.slug


class Model(models.Model):
    canonical_id = models.CharField(max_length=200, unique=True)
    name = models.CharField(max_length=200, blank=True)
    context_length = models.PositiveIntegerField(default=0)
    # Cap on output tokens; also what a request without max_tokens reserves credit for.
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    capabilities = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("canonical_id",)

    def __str__(self) -> str:
        return self.canonical_id


def price_field() -> models.DecimalField[Decimal | int | str, Decimal]:
    """Credits per 1M tokens: six decimal places, exact."""
    return models.DecimalField(max_digits=18, decimal_places=6, default=Decimal(0))


class Offering(models.Model):
    """One provider serving one model, at its prices (credits per 1M tokens)."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="offerings")
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="offerings")
    upstream_model_id = models.CharField(max_length=200)
    input_price = price_field()
    output_price = price_field()
    cached_input_price = price_field()
    priority = models.IntegerField(default=100, help_text="lower is tried first")
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("model", "priority", "provider")
        constraints = [
            models.UniqueConstraint(fields=("provider", "model"), name="offering_provider_model")
        ]

    def __str__(self) -> str:
        return f"{self.model} @ {self.provider}"


class Alias(models.Model):
    alias = models.CharField(max_length=200, unique=True)
    model = models.ForeignKey(Model, on_delete=models.CASCADE, related_name="aliases")

    class Meta:
        verbose_name_plural = "aliases"

    def __str__(self) -> str:
        return f"{self.alias} → {self.model}"


class CatalogState(models.Model):
    """A single row whose version rises on every catalog edit, so every process reloads."""

    version = models.PositiveBigIntegerField(default=0)
    loaded_file_version = models.CharField(max_length=50, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"catalog v{self.version} ({self.loaded_file_version})"
