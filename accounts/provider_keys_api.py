"""The customer's own provider keys (BYOK), managed from their account: list, add or
replace, remove. A key is taken once and never returned: the API shows its hint only. (The
keys themselves are providers.byok's; the account's API sits above them.)"""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import KeyScope, request_user
from providers.byok import (
    provider_key_delete,
    provider_key_get_for_user,
    provider_key_put,
    provider_keys_of,
)
from providers.models import Provider, ProviderKey


class ProviderKeyOutput(serializers.ModelSerializer):
    provider: serializers.SlugRelatedField[Provider] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )

    class Meta:
        model = ProviderKey
        fields = ("id", "provider", "hint", "created_at")


class ProviderKeyInput(serializers.Serializer):
    provider = serializers.SlugRelatedField(
        slug_field="slug", queryset=Provider.objects.filter(enabled=True)
    )
    key = serializers.CharField(min_length=8, max_length=500, trim_whitespace=True, write_only=True)

    def validate_key(self, value: str) -> str:
        if any(c.isspace() or not c.isprintable() for c in value):
            raise serializers.ValidationError("A provider key has no spaces or control characters.")
        return value


class ProviderKeyListCreate(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "keys:manage"

    @extend_schema(
        responses=inline_serializer("ProviderKeyList", {"data": ProviderKeyOutput(many=True)})
    )
    def get(self, request: Request) -> Response:
        keys = provider_keys_of(user_id=request_user(request).pk)
        return Response({"data": ProviderKeyOutput(keys, many=True).data})

    @extend_schema(
        request=ProviderKeyInput, responses={200: ProviderKeyOutput, 201: ProviderKeyOutput}
    )
    def post(self, request: Request) -> Response:
        """Adds the key for its provider, or replaces the one held for it (200)."""
        data = ProviderKeyInput(data=request.data)
        data.is_valid(raise_exception=True)
        key, created = provider_key_put(
            user_id=request_user(request).pk,
            provider=data.validated_data["provider"],
            raw=data.validated_data["key"],
        )
        code = status.HTTP_201_CREATED if created else status.HTTP_200_OK
        return Response(ProviderKeyOutput(key).data, status=code)


class ProviderKeyDetail(APIView):
    permission_classes = (IsAuthenticated, KeyScope)
    required_scope = "keys:manage"

    @extend_schema(responses={204: None})
    def delete(self, request: Request, key_id: int) -> Response:
        key = provider_key_get_for_user(user_id=request_user(request).pk, key_id=key_id)
        provider_key_delete(key=key)
        return Response(status=status.HTTP_204_NO_CONTENT)
