"""The monitoring API: provider health (public, a status page's data), and for staff the
circuit breakers and resetting a provider's."""

from __future__ import annotations

import time
from datetime import timedelta

from django.db.models import Count, Q
from django.utils import timezone
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.permissions import AllowAny, BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from gateway.guards.breaker_staff import breaker_view, breakers_list, breakers_reset
from monitoring.models import HealthSample
from providers.models import Provider


def staff_may(permission: str) -> type[BasePermission]:
    """Staff holding `permission` (accounts.roles gives it by role)."""

    class StaffMay(BasePermission):
        def has_permission(self, request: Request, view: APIView) -> bool:
            user = request.user
            return bool(user and user.is_staff and user.has_perm(permission))

    return StaffMay


class CircuitBreakerOutput(serializers.Serializer):
    """gateway.guards.breaker_staff.breaker_view, as documented (the OpenAPI document)."""

    provider = serializers.CharField()
    model = serializers.CharField()
    state = serializers.ChoiceField(choices=("closed", "open", "half_open"))
    consecutive_failures = serializers.IntegerField()
    window_requests = serializers.IntegerField()
    window_failures = serializers.IntegerField()
    opened_at = serializers.FloatField(allow_null=True)
    retry_at = serializers.FloatField(allow_null=True)
    probing = serializers.BooleanField()
    last_error = serializers.CharField(allow_blank=True)


class CircuitBreakers(APIView):
    permission_classes = (staff_may("providers.view_provider"),)

    @extend_schema(
        responses=inline_serializer("CircuitBreakerList", {"data": CircuitBreakerOutput(many=True)})
    )
    def get(self, request: Request) -> Response:
        now = time.time()
        views = [breaker_view(key, b, now) for key, b in sorted(breakers_list().items())]
        return Response({"data": views})


class CircuitBreakerReset(APIView):
    permission_classes = (staff_may("providers.reset_breakers"),)

    @extend_schema(
        request=None,
        responses=inline_serializer(
            "CircuitBreakerResetDone",
            {
                "provider": serializers.CharField(),
                "reset": serializers.ListField(child=serializers.CharField()),
            },
        ),
    )
    def post(self, request: Request, provider: str) -> Response:
        return Response({"provider": provider, "reset": breakers_reset(provider)})


RANK = {"unknown": -1, "operational": 0, "degraded": 1, "down": 2}


class PublicCircuitBreakerOutput(CircuitBreakerOutput):
    """What the public sees of a breaker: its state, not the provider's error text (which
    may quote our account's limits, org ids and the provider's internal names)."""

    last_error = None  # type: ignore[assignment]  # DRF: a field set to None is removed


PUBLIC_BREAKER_FIELDS = tuple(PublicCircuitBreakerOutput._declared_fields)


class ProviderHealth(APIView):
    """Per provider: its latest checks (monitoring.health), the breakers that are not
    closed, and its uptime over the last 24 hours (the share of operational checks). A
    provider with an open breaker is at best degraded, even if its probe answered. A
    provider not checked in the last hour (never, or its checks stopped) is `unknown`: no
    news is not good news. Public, so it shows statuses, codes and timings, never the
    text a provider answered (staff read breakers' in the breakers API)."""

    permission_classes = (AllowAny,)

    @extend_schema(
        auth=[],
        responses=inline_serializer(
            "ProviderHealthList",
            {
                "data": inline_serializer(
                    "ProviderHealth",
                    {
                        "provider": serializers.CharField(),
                        "status": serializers.ChoiceField(choices=tuple(RANK)),
                        "checked_at": serializers.DateTimeField(allow_null=True),
                        "uptime_24h": serializers.FloatField(allow_null=True),
                        "checks": serializers.ListField(child=serializers.DictField()),
                        "breakers": PublicCircuitBreakerOutput(many=True),
                    },
                    many=True,
                )
            },
        ),
    )
    def get(self, request: Request) -> Response:
        now_at = timezone.now()
        # Uptime counted by the database; the latest checks from the last hour (every
        # provider is checked at least every half hour), not a day of rows in Python.
        checks = {
            row["provider"]: (row["operational"], row["total"])
            for row in HealthSample.objects.filter(checked_at__gte=now_at - timedelta(hours=24))
            .values("provider")
            .annotate(total=Count("id"), operational=Count("id", filter=Q(status="operational")))
        }
        latest: dict[tuple[str, str], HealthSample] = {}
        recent = HealthSample.objects.filter(checked_at__gte=now_at - timedelta(hours=1))
        for sample in recent.order_by("-checked_at"):
            latest.setdefault((sample.provider, sample.model), sample)
        troubled: dict[str, list[dict]] = {}
        now = time.time()
        for key, breaker in breakers_list().items():
            view = breaker_view(key, breaker, now)
            public = {field: view[field] for field in PUBLIC_BREAKER_FIELDS}
            troubled.setdefault(view["provider"], []).append(public)
        served = Provider.objects.filter(enabled=True).values_list("slug", flat=True)
        providers = sorted({p for p, _ in latest} | set(troubled) | set(served))
        data = []
        for provider in providers:
            samples = [s for (p, _), s in latest.items() if p == provider]
            status = max((s.status for s in samples), key=RANK.__getitem__, default="unknown")
            if any(b["state"] != "closed" for b in troubled.get(provider, [])):
                status = max(status, "degraded", key=RANK.__getitem__)
            operational, total = checks.get(provider, (0, 0))
            data.append(
                {
                    "provider": provider,
                    "status": status,
                    "checked_at": max((s.checked_at for s in samples), default=None),
                    "uptime_24h": round(operational / total, 4) if total else None,
                    "checks": [
                        {
                            "model": s.model,
                            "status": s.status,
                            "http_status": s.http_status,
                            "latency_ms": s.latency_ms,
                        }
                        for s in samples
                    ],
                    "breakers": troubled.get(provider, []),
                }
            )
        return Response({"data": data})
