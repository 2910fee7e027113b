"""The customer's management API: profile and API keys."""

from __future__ import annotations

from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import request_user
from accounts.models import ApiKey
from accounts.selectors import api_key_get_for_user, api_keys_of
from accounts.services import api_key_create, api_key_revoke


class ApiKeyOutput(serializers.ModelSerializer):
    masked = serializers.CharField(read_only=True)
    active = serializers.SerializerMethodField()

    class Meta:
        model = ApiKey
        fields = (
            "id", "name", "masked", "prefix", "last4", "created_at", "last_used_at",
            "expires_at", "revoked_at", "active",
        )  # fmt: skip

    def get_active(self, obj: ApiKey) -> bool:
        return obj.is_active()


class ApiKeyListCreate(APIView):
    class Input(serializers.Serializer):
        name = serializers.CharField(max_length=100)
        expires_at = serializers.DateTimeField(required=False, allow_null=True)

    def get(self, request: Request) -> Response:
        keys = api_keys_of(user=request_user(request))
        return Response({"data": ApiKeyOutput(keys, many=True).data})

    def post(self, request: Request) -> Response:
        data = self.Input(data=request.data)
        data.is_valid(raise_exception=True)
        api_key, raw = api_key_create(user=request_user(request), **data.validated_data)
        # The only time the full key is ever shown.
        return Response({**ApiKeyOutput(api_key).data, "key": raw}, status=status.HTTP_201_CREATED)


class ApiKeyRevoke(APIView):
    def delete(self, request: Request, key_id: int) -> Response:
        api_key = api_key_get_for_user(user=request_user(request), key_id=key_id)
        api_key_revoke(api_key=api_key)
        return Response(status=status.HTTP_204_NO_CONTENT)


class Profile(APIView):
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
