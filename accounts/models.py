from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone

from accounts.restrictions import (
    ALL_SCOPES,
    ips_clean,
    models_clean,
    referrers_clean,
    scopes_clean,
)
from accounts.verification import user_email_verified


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def create_user(self, email: str, password: str | None = None, **extra: Any) -> User:
        if not email:
            raise ValueError("a user needs an email address")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **extra: Any) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        extra.setdefault("role", User.Role.ADMIN)
        user = self.create_user(email, password, **extra)
        user_email_verified(user)
        return user


PRIORITY_CHOICES = [(p, p) for p in ("critical", "high", "default", "low")]


class RateLimits(models.Model):
    """Rate limits that replace defaults where set (gateway.guards.limits): a key's own, over the
    key defaults; a plan's, over the account defaults. Empty: the default; 0: no limit."""

    limit_rpm = models.PositiveIntegerField("requests per minute", null=True, blank=True)
    limit_rph = models.PositiveIntegerField("requests per hour", null=True, blank=True)
    limit_rpd = models.PositiveIntegerField("requests per day", null=True, blank=True)
    limit_tpm = models.PositiveIntegerField("tokens per minute", null=True, blank=True)
    limit_tpd = models.PositiveBigIntegerField("tokens per day", null=True, blank=True)
    limit_concurrent = models.PositiveIntegerField("concurrent requests", null=True, blank=True)

    class Meta:
        abstract = True


class Plan(RateLimits):
    """A customer plan: the limits of every account on it (the account scope of
    docs/limits.md, in place of the settings' `GATEWAYZ_USER_*` defaults), the priority of
    its keys' requests when a gateway process is at capacity, and what it costs a month and
    gives a month (its allowance, spent before purchased credit: billing.allowance).
    Customers subscribe with Stripe (payments.subscriptions); staff may assign one."""

    slug = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=100)
    # For keys that have no priority of their own (gateway.guards.priority).
    priority = models.CharField(max_length=8, choices=PRIORITY_CHOICES, default="default")
    price_cents = models.PositiveIntegerField(
        default=0, help_text="A month, in US cents; 0: free (nothing to subscribe to)."
    )
    allowance = models.DecimalField(
        max_digits=24, decimal_places=12, default=0, help_text="Credits granted each month."
    )
    # The Stripe Price (or Plan) to subscribe with; the Billing Portal's upgrades and
    # downgrades name it. Empty: Checkout is given the price inline.
    stripe_price_id = models.CharField(max_length=255, blank=True)
    public = models.BooleanField(default=True, help_text="Listed at GET /plans.")
    position = models.PositiveSmallIntegerField(default=0)
    description = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ("position", "slug")

    def __str__(self) -> str:
        return self.name


class User(AbstractUser):
    class Role(models.TextChoices):
        USER = "user"
        DEVELOPER = "developer"
        SUPPORT = "support"
        ADMIN = "admin"

    username = None  # type: ignore[assignment]  # email is the login
    email = models.EmailField(unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)
    plan = models.ForeignKey(
        Plan, null=True, blank=True, on_delete=models.PROTECT, related_name="users"
    )
    # While set, the account's keys are refused with a 403 (gateway.pipeline.auth) and it
    # can still log in, pay and see its data: a payment in dispute (payments.disputes).
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=200, blank=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]  # email manager

    def __str__(self) -> str:
        return self.email


def all_scopes() -> list[str]:
    return list(ALL_SCOPES)


class ApiKey(RateLimits):
    """A Gatewayz key. Only its HMAC digest is stored; the key itself is shown once."""

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100)
    digest = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=16)
    last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    # The key's own caps (gateway.guards.limits, KEY_CAPS): refused with a 403 once reached.
    max_requests = models.PositiveBigIntegerField(null=True, blank=True)
    spend_limit_day = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    spend_limit_month = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    spend_limit_total = models.DecimalField(max_digits=18, decimal_places=6, null=True, blank=True)
    # Restrictions (accounts.restrictions): empty lists restrict nothing.
    allowed_ips = models.JSONField(
        default=list, blank=True, validators=[ips_clean], help_text="addresses or CIDRs"
    )
    allowed_referrers = models.JSONField(
        default=list, blank=True, validators=[referrers_clean], help_text="domains"
    )
    allowed_models = models.JSONField(
        default=list, blank=True, validators=[models_clean], help_text="globs, e.g. openai/*"
    )
    scopes = models.JSONField(default=all_scopes, validators=[scopes_clean])
    # Its requests' place in the queue when a gateway process is at capacity
    # (gateway.guards.priority); only staff set it.
    priority = models.CharField(max_length=8, choices=PRIORITY_CHOICES, default="default")

    class Purpose(models.TextChoices):
        API = "", "API"
        # Made for the web playground's browser tab: inference only, an hour long, one
        # alive per customer (chats.playground); not listed among the customer's keys.
        PLAYGROUND = "playground", "Playground"

    purpose = models.CharField(max_length=16, choices=Purpose.choices, blank=True, default="")

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.name} ({self.masked})"

    @property
    def masked(self) -> str:
        return f"{self.prefix}…{self.last4}"

    def is_active(self, now: Any = None) -> bool:
        now = now or timezone.now()
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


class AuditEntry(models.Model):
    """One state change by a person (or the system, with no actor): accounts.audit."""

    actor = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_key = models.ForeignKey(
        ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The account the change concerns (its holder reads it in GET /user/api-keys/audit-logs).
    owner = models.ForeignKey(
        User, null=True, blank=True, on_delete=models.SET_NULL, related_name="audit_entries"
    )
    action = models.CharField(max_length=64)
    target_type = models.CharField(max_length=64)
    target_id = models.CharField(max_length=64)
    target_repr = models.CharField(max_length=200, blank=True)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    ip = models.CharField(max_length=45, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ("-created_at", "-id")
        indexes = [models.Index(fields=("owner", "-created_at"))]
        verbose_name_plural = "audit entries"

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.action} {self.target_repr}"
