from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils import timezone

from providers.credentials import credential_decrypt, credential_encrypt, credential_hint
from providers.ssrf import base_url_validate


class Provider(models.Model):
    class Protocol(models.TextChoices):
        OPENAI = "openai", "OpenAI-compatible"
        ANTHROPIC = "anthropic", "Anthropic Messages"
        GEMINI = "gemini", "Google Gemini / Vertex AI"
        FAL = "fal", "Fal"

    class Auth(models.TextChoices):
        DEFAULT = "", "the protocol's own"
        BEARER = "bearer", "Authorization: Bearer"
        X_API_KEY = "x-api-key", "x-api-key"
        X_GOOG_API_KEY = "x-goog-api-key", "x-goog-api-key"
        KEY = "key", "Authorization: Key"

    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=100)
    protocol = models.CharField(max_length=16, choices=Protocol.choices, default=Protocol.OPENAI)
    # `{NAME}` placeholders are filled from environment variables (e.g. an account id).
    base_url = models.CharField(max_length=300, validators=[base_url_validate])
    auth = models.CharField(max_length=16, choices=Auth.choices, blank=True)
    extra_headers = models.JSONField(default=dict, blank=True)
    # Request quirks (docs/catalog.md): parameters dropped silently (only those that do not
    # change the answer's meaning), refused with a 400, or renamed.
    drop_params = models.JSONField(default=list, blank=True)
    unsupported_params = models.JSONField(default=list, blank=True)
    rename_params = models.JSONField(default=dict, blank=True)
    # Whether it takes Anthropic-style `cache_control` marks on OpenAI-shape content parts and
    # tools (OpenRouter does): kept when translating from /v1/messages, else dropped.
    accepts_cache_control = models.BooleanField(default=False)
    # The platform's API key for the provider: stored encrypted (providers.credentials), set
    # in the admin, never shown again but for its hint; or else the name of an environment
    # variable that holds it.
    credential_ciphertext = models.TextField(blank=True, editable=False)
    credential_hint = models.CharField(max_length=8, blank=True)
    credential_env = models.CharField(max_length=100, blank=True)
    connect_timeout = models.FloatField(default=5.0)
    read_timeout = models.FloatField(default=120.0)
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("slug",)
        permissions = [("reset_breakers", "Can reset the provider's circuit breakers")]

    def __str__(self) -> str:
        return self.slug

    def credential_set(self, raw: str) -> None:
        """Stores (or, with "", removes) the platform's key; saved by the caller."""
        self.credential_ciphertext = credential_encrypt(raw) if raw else ""
        self.credential_hint = credential_hint(raw) if raw else ""

    # Not `credential`: the admin would take a method of the form field's name for the
    # field's value, and show it (decrypted) to staff who may only view.
    def credential_plaintext(self) -> str:
        return credential_decrypt(self.credential_ciphertext) if self.credential_ciphertext else ""


class ProviderKey(models.Model):
    """A customer's own key for a provider (BYOK): their requests served by that provider
    go out with it, and are charged `GATEWAYZ_BYOK_FEE` of the list price instead of the
    price (docs/security.md). Stored encrypted like the platform's keys."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="provider_keys"
    )
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    ciphertext = models.TextField(editable=False)
    hint = models.CharField(max_length=8)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("user", "provider"), name="one_key_per_provider")
        ]

    def __str__(self) -> str:
        return f"key {self.hint} for provider {self.provider_id}"

    def key_set(self, raw: str) -> None:
        self.ciphertext = credential_encrypt(raw)
        self.hint = credential_hint(raw)

    def key_plaintext(self) -> str:
        return credential_decrypt(self.ciphertext)


class Model(models.Model):
    class Kind(models.TextChoices):
        CHAT = "chat"
        EMBEDDING = "embedding"
        IMAGE = "image"

    class Strategy(models.TextChoices):
        PRIORITY = "priority", "priority order"
        WEIGHTED = "weighted", "weighted random"
        LATENCY = "latency", "lowest latency"
        COST = "cost", "lowest cost"
        LEAST_BUSY = "least_busy", "fewest requests in flight"

    canonical_id = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.CHAT)
    # How its offerings are ordered for each request (gateway.pipeline.routing); failover
    # follows it.
    routing_strategy = models.CharField(
        max_length=16, choices=Strategy.choices, default=Strategy.PRIORITY
    )
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
    cache_write_price = price_field()  # a five-minute cache write (Anthropic's default TTL)
    cache_write_1h_price = price_field()  # an hour's cache write; below cache_write: the same
    # Images: credits per image at the base size and quality, times the multipliers.
    per_image_price = price_field()
    size_multipliers = models.JSONField(default=dict, blank=True)
    quality_multipliers = models.JSONField(default=dict, blank=True)
    # Parameters set for the caller unless it set them (or any of `default_params_unless`).
    default_params = models.JSONField(default=dict, blank=True)
    default_params_unless = models.JSONField(default=list, blank=True)
    # Overrides the provider's accepts_cache_control for this model (None: the provider's).
    accepts_cache_control = models.BooleanField(null=True, blank=True, default=None)
    priority = models.IntegerField(default=100, help_text="lower is tried first")
    weight = models.PositiveIntegerField(
        default=1, help_text="its share of first choices under the weighted strategy"
    )
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("model", "priority", "provider")
        constraints = [
            models.UniqueConstraint(fields=("provider", "model"), name="offering_provider_model")
        ]

    def __str__(self) -> str:
        return f"{self.model} @ {self.provider}"


class PrefixRoute(models.Model):
    """Model ids outside the catalog that start with `prefix` go to `provider` unchanged,
    priced at these prices (an upper bound for the family)."""

    prefix = models.CharField(max_length=100, unique=True)
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    input_price = price_field()
    output_price = price_field()
    enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return f"{self.prefix}* → {self.provider}"


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
