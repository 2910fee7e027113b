from __future__ import annotations

from typing import Any, ClassVar

from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.utils import timezone


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
        return self.create_user(email, password, **extra)


class User(AbstractUser):
    class Role(models.TextChoices):
        USER = "user"
        DEVELOPER = "developer"
        ADMIN = "admin"

    username = None  # type: ignore[assignment]  # email is the login
    email = models.EmailField(unique=True)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.USER)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []
    objects: ClassVar[UserManager] = UserManager()  # type: ignore[assignment]  # email manager

    def __str__(self) -> str:
        return self.email


class ApiKey(models.Model):
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
    # This key's own rate limits; empty means the key defaults (GATEWAYZ_RATE_LIMITS).
    limit_rpm = models.PositiveIntegerField("requests per minute", null=True, blank=True)
    limit_rpd = models.PositiveIntegerField("requests per day", null=True, blank=True)
    limit_tpm = models.PositiveIntegerField("tokens per minute", null=True, blank=True)
    limit_tpd = models.PositiveBigIntegerField("tokens per day", null=True, blank=True)
    limit_concurrent = models.PositiveIntegerField("concurrent requests", null=True, blank=True)
    # Its requests' place in the queue when a gateway process is at capacity
    # (gateway.priority); only staff set it.
    priority = models.CharField(
        max_length=8,
        choices=[(p, p) for p in ("critical", "high", "default", "low")],
        default="default",
    )

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
