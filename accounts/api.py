"""The customer's management API: profile and API keys."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.generics import ListAPIView
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from accounts.models import ApiKey, AuditEntry, User
from accounts.restrictions import (
    client_address,
    ips_clean,
    models_clean,
    referrers_clean,
    scopes_clean,
)
from accounts.selectors import api_key_get_for_user, api_keys_of
from accounts.services import api_key_create, api_key_revoke, api_key_update, user_create
from accounts.signals import user_signed_up
from accounts.throttles import SignupThrottle


class Cleaned(serializers.JSONField):
    """A restriction list, checked and normalised once by its model-side cleaner
    (accounts.restrictions), so the API and the admin accept the same values."""

    def __init__(self, clean: Any) -> None:
        super().__init__(required=False)
        self.clean = clean

    def to_internal_value(self, data: Any) -> Any:
        try:
            return self.clean(super().to_internal_value(data))
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from None


SPEND_LIMIT: dict[str, Any] = {
    "required": False,
    "allow_null": True,
    "max_digits": 18,
    "decimal_places": 6,
    "min_value": Decimal("0.000001"),
}


class RestrictionsInput(serializers.Serializer):
    allowed_ips = Cleaned(ips_clean)
    allowed_referrers = Cleaned(referrers_clean)
    allowed_models = Cleaned(models_clean)
    scopes = Cleaned(scopes_clean)
    max_requests = serializers.IntegerField(required=False, allow_null=True, min_value=1)
    spend_limit_day = serializers.DecimalField(**SPEND_LIMIT)
    spend_limit_month = serializers.DecimalField(**SPEND_LIMIT)
    spend_limit_total = serializers.DecimalField(**SPEND_LIMIT)


class ApiKeyOutput(serializers.ModelSerializer):
    masked = serializers.CharField(read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields: tuple[str, ...] = (
            "id",
            "name",
            "masked",
            "prefix",
            "last4",
            "created_at",
            "last_used_at",
            "expires_at",
            "revoked_at",
            "active",
            "allowed_ips",
            "allowed_referrers",
            "allowed_models",
            "scopes",
            "max_requests",
            "spend_limit_day",
            "spend_limit_month",
            "spend_limit_total",
        )

    def get_active(self, obj: ApiKey) -> bool:
        return obj.is_active()


class ApiKeyCreated(ApiKeyOutput):
    key = serializers.CharField(read_only=True, help_text="The whole key, shown this once.")

    class Meta(ApiKeyOutput.Meta):
        fields: tuple[str, ...] = (*ApiKeyOutput.Meta.fields, "key")


class ApiKeyListCreate(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "keys:manage"

    class Input(RestrictionsInput):
        name = serializers.CharField(max_length=100)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema(
        responses=inline_serializer("ApiKeyList", {"data": ApiKeyOutput(many=True)}),
    )
    def get(self, request: Request) -> Response:
        keys = api_keys_of(user=request_user(request))
        return Response({"data": ApiKeyOutput(keys, many=True).data})

    @extend_schema(request=Input, responses={201: ApiKeyCreated})
    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, raw = api_key_create(user=request_user(request), **data.validated_data)
        # The only time the full key is ever shown.
        return Response({**ApiKeyOutput(api_key).data, "key": raw}, status=status.HTTP_201_CREATED)


class ApiKeyDetail(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "keys:manage"

    class Changes(RestrictionsInput):
        name = serializers.CharField(max_length=100, required=False)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    @extend_schema(request=Changes, responses=ApiKeyOutput)
    def patch(self, request: Request, key_id: int) -> Response:
        api_key = api_key_get_for_user(user=request_user(request), key_id=key_id)
        data = self.Changes(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data:
            api_key_update(api_key=api_key, **data.validated_data)
        return Response(ApiKeyOutput(api_key).data)

    @extend_schema(responses={204: None})
    def delete(self, request: Request, key_id: int) -> Response:
        api_key = api_key_get_for_user(user=request_user(request), key_id=key_id)
        api_key_revoke(api_key=api_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class AuditEntryOutput(serializers.ModelSerializer):
    actor = serializers.SerializerMethodField()

    class Meta:
        model = AuditEntry
        fields = (
            "id",
            "created_at",
            "action",
            "actor",
            "target_type",
            "target_id",
            "target_repr",
            "before",
            "after",
            "ip",
        )

    def get_actor(self, entry: AuditEntry) -> str:
        if entry.actor_key_id is not None:
            return f"api key {entry.actor_key_id}"
        if entry.actor_id is None:
            return "system"
        return "you" if entry.actor_id == entry.owner_id else "staff"


class AuditLog(ListAPIView):
    """Changes to the caller's own account: its keys, credits and profile."""

    serializer_class = AuditEntryOutput
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "usage:read"

    def get_queryset(self):  # type: ignore[no-untyped-def]  # DRF's signature
        return AuditEntry.objects.filter(owner=request_user(self.request))


class Profile(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "usage:read"

    @extend_schema(
        responses=inline_serializer(
            "Profile",
            {
                "id": serializers.IntegerField(),
                "email": serializers.EmailField(),
                "role": serializers.ChoiceField(choices=("user", "developer", "admin")),
                "date_joined": serializers.DateTimeField(),
            },
        )
    )
    def get(self, request: Request) -> Response:
        user = request_user(request)
        return Response(
            {
                "id": user.pk,
                "email": user.email,
                "role": user.role,
                "date_joined": user.date_joined,
            }
        )


class SignupInput(serializers.Serializer):
    email = serializers.EmailField(max_length=254)
    password = serializers.CharField(min_length=8, max_length=128, write_only=True)

    def validate_email(self, value: str) -> str:
        return User.objects.normalize_email(value).lower()

    def validate(self, data: dict[str, Any]) -> dict[str, Any]:
        try:
            validate_password(data["password"], User(email=data["email"]))
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from None
        return data


class Signup(APIView):
    """A new customer account, then a session's tokens (as `POST /auth/token` gives them).
    Throttled per client address: accounts cost nothing to make, so they are the way to
    multiply free limits."""

    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (SignupThrottle,)

    @extend_schema(
        request=SignupInput,
        responses={
            201: inline_serializer(
                "SignedUp",
                {
                    "id": serializers.IntegerField(),
                    "email": serializers.EmailField(),
                    "access": serializers.CharField(),
                    "refresh": serializers.CharField(),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        from rest_framework_simplejwt.tokens import RefreshToken

        data = SignupInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                user = user_create(**data.validated_data)
        except IntegrityError:
            raise serializers.ValidationError(
                {"email": ["This email cannot be used for a new account."]}
            ) from None
        address = client_address(
            request.META.get("REMOTE_ADDR"),
            request.META.get("HTTP_X_FORWARDED_FOR"),
            settings.GATEWAYZ_TRUSTED_PROXIES,
        )
        user_signed_up.send(sender=User, user=user, ip=str(address or ""))
        refresh = RefreshToken.for_user(user)
        body = {
            "id": user.pk,
            "email": user.email,
            "access": str(refresh.access_token),
            "refresh": str(refresh),
        }
        return Response(body, status=status.HTTP_201_CREATED)
