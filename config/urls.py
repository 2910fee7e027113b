from allauth.account import views as auth_pages
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from accounts import pages as account_pages
from accounts.api import ApiKeyDetail, ApiKeyListCreate, AuditLog, Profile, Signup
from accounts.provider_keys_api import ProviderKeyDetail, ProviderKeyListCreate
from accounts.throttles import LoginThrottle, TokenRefreshThrottle
from billing.api import Balance, CreditTransactions
from chats import api as chats_api
from chats import pages as chat_pages
from chats import playground
from config.pages import home
from monitoring import catalog_pages
from monitoring import pages as monitoring_pages
from monitoring.admin_analytics import analytics
from monitoring.api import CircuitBreakerReset, CircuitBreakers, ProviderHealth
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

# The web pages (docs/web.md). The account pages are allauth's, under /account/; the four
# everyone types are short, named as allauth names them so its links and redirects use them.
PAGES = [
    path("", home, name="home"),
    path("login", auth_pages.login, name="account_login"),
    path("signup", auth_pages.signup, name="account_signup"),
    path("logout", auth_pages.logout, name="account_logout"),
    path("password/reset", auth_pages.password_reset, name="account_reset_password"),
    path("account/", include("allauth.urls")),
    path("dashboard", monitoring_pages.dashboard, name="dashboard"),
    path("status", monitoring_pages.status, name="status"),
    path("models", catalog_pages.models, name="models"),
    path("models/<path:model_id>", catalog_pages.model, name="model"),
    path("keys", account_pages.keys, name="keys"),
    path("keys/usage", monitoring_pages.key_usage, name="key-usage"),
    path("keys/<int:key_id>", account_pages.key, name="key"),
    path("keys/<int:key_id>/revoke", account_pages.key_revoke, name="key-revoke"),
    path("settings", account_pages.settings_page, name="settings"),
    path(
        "settings/provider-keys/<int:key_id>/delete",
        account_pages.provider_key_remove,
        name="provider-key-remove",
    ),
    path("settings/delete", account_pages.account_delete, name="account-delete"),
    path("playground", playground.playground, name="playground"),
    path("playground/<int:session_id>", playground.playground, name="playground-session"),
    path("playground/key", playground.playground_key, name="playground-key"),
    path("playground/save", playground.playground_save, name="playground-save"),
    path("chats", chat_pages.chats, name="chats"),
    path("chats/<int:session_id>", chat_pages.chat_settings, name="chat-settings"),
    path("chats/<int:session_id>/rename", chat_pages.chat_rename, name="chat-rename"),
    path("chats/<int:session_id>/delete", chat_pages.chat_delete, name="chat-delete"),
    path("chats/<int:session_id>/share", chat_pages.chat_share, name="chat-share"),
    path(
        "chats/messages/<int:message_id>/feedback",
        chat_pages.message_feedback,
        name="message-feedback",
    ),
    path("share/<str:token>", chat_pages.shared, name="chat-shared"),
]

# The chats as an API (chats.api), under /v1/ beside the gateway's routes (config.asgi
# sends these paths to Django).
CHATS_API = [
    path("v1/chat/sessions", chats_api.Sessions.as_view()),
    path("v1/chat/sessions/<int:session_id>", chats_api.SessionDetail.as_view()),
    path("v1/chat/sessions/<int:session_id>/messages", chats_api.SessionMessages.as_view()),
    path("v1/chat/sessions/<int:session_id>/share", chats_api.SessionShare.as_view()),
    path("v1/chat/messages/<int:message_id>/feedback", chats_api.MessageFeedback.as_view()),
    path("v1/chat/search", chats_api.Search.as_view()),
]

urlpatterns = [
    *PAGES,
    *CHATS_API,
    path("admin/analytics/", admin.site.admin_view(analytics), name="admin-analytics"),
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
    # /metrics is the gateway's page, served before Django (config.asgi).
]

# Unmatched URLs under the APIs answer in the APIs' format (JSON), not Django's HTML page.
handler404 = "config.errors.not_found"
handler500 = "config.errors.server_error"
