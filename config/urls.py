from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts.api import ApiKeyDetail, ApiKeyListCreate, AuditLog, Profile, Signup
from accounts.provider_keys_api import ProviderKeyDetail, ProviderKeyListCreate
from accounts.throttles import LoginThrottle, TokenRefreshThrottle
from billing.api import Balance, CreditTransactions
from monitoring.api import CircuitBreakerReset, CircuitBreakers, ProviderHealth, metrics_view
from monitoring.requests_api import (
    ChatRequestCounts,
    ChatRequestModels,
    ChatRequestPlotData,
    ChatRequestProviders,
    ChatRequests,
    UserRequests,
)
from monitoring.staff_api import (
    Anomalies,
    CostAnalysis,
    ErrorRates,
    HourlyStats,
    LatencyTrends,
    ModelLatency,
    ModelTokenEfficiency,
    ProviderErrors,
    ProvidersComparison,
    RealtimeStats,
    TokenEfficiency,
)
from monitoring.usage_api import UserUsage

# The staff monitoring API (monitoring.staff_api, monitoring.requests_api): the seed's paths.
# Model ids hold slashes (`openai/gpt-4o`): `path:` takes the rest of the URL.
MONITORING = [
    path("stats/realtime", RealtimeStats.as_view()),
    path("stats/hourly/<slug:provider>", HourlyStats.as_view()),
    path("errors/<slug:provider>", ProviderErrors.as_view()),
    path("error-rates", ErrorRates.as_view()),
    path("providers/comparison", ProvidersComparison.as_view()),
    path("latency/<slug:provider>/<path:model>", ModelLatency.as_view()),
    path("latency-trends/<slug:provider>", LatencyTrends.as_view()),
    path("cost-analysis", CostAnalysis.as_view()),
    path("token-efficiency", TokenEfficiency.as_view()),
    path("token-efficiency/<slug:provider>/<path:model>", ModelTokenEfficiency.as_view()),
    path("anomalies", Anomalies.as_view()),
    path("chat-requests", ChatRequests.as_view()),
    path("chat-requests/counts", ChatRequestCounts.as_view()),
    path("chat-requests/models", ChatRequestModels.as_view()),
    path("chat-requests/providers", ChatRequestProviders.as_view()),
    path("chat-requests/plot-data", ChatRequestPlotData.as_view()),
]

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema", SpectacularAPIView.as_view(), name="openapi-schema"),
    path("auth/signup", Signup.as_view(), name="signup"),
    path(
        "auth/token",
        TokenObtainPairView.as_view(throttle_classes=[LoginThrottle]),
        name="token-obtain",
    ),
    path(
        "auth/token/refresh",
        TokenRefreshView.as_view(throttle_classes=[TokenRefreshThrottle]),
        name="token-refresh",
    ),
    path("user/api-keys", ApiKeyListCreate.as_view(), name="api-keys"),
    path("user/api-keys/audit-logs", AuditLog.as_view(), name="audit-logs"),
    path("user/api-keys/<int:key_id>", ApiKeyDetail.as_view(), name="api-key-revoke"),
    path("user/provider-keys", ProviderKeyListCreate.as_view(), name="provider-keys"),
    path("user/provider-keys/<int:key_id>", ProviderKeyDetail.as_view(), name="provider-key"),
    path("user/balance", Balance.as_view(), name="balance"),
    path("user/profile", Profile.as_view(), name="profile"),
    path("user/credit-transactions", CreditTransactions.as_view(), name="credit-transactions"),
    path("user/usage", UserUsage.as_view(), name="user-usage"),
    path("user/requests", UserRequests.as_view(), name="user-requests"),
    path("api/monitoring/health", ProviderHealth.as_view(), name="provider-health"),
    path("api/monitoring/circuit-breakers", CircuitBreakers.as_view(), name="circuit-breakers"),
    path(
        "api/monitoring/circuit-breakers/<slug:provider>/reset",
        CircuitBreakerReset.as_view(),
        name="circuit-breaker-reset",
    ),
    path("api/monitoring/", include(MONITORING)),
    path("", include("payments.urls")),
    # Prometheus: the gateway's page (gateway.metrics), which holds django-prometheus's
    # figures too, and the ones read at scrape time, in multiprocess mode as well.
    path("metrics", metrics_view, name="prometheus-metrics"),
]

# Unmatched URLs under the APIs answer in the APIs' format (JSON), not Django's HTML page.
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
