"""Gatewayz settings: one module, driven by environment variables (see README, "Settings")."""

from __future__ import annotations

import ipaddress
import secrets
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from config.databases import databases
from core.env import env_bool, env_decimal, env_float, env_int, env_list, env_str
from core.redis_topology import (
    Sentinels,
    parse_addresses,
    redis_url_at,
    sentinel_broker_url,
    url_database,
)

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("GATEWAYZ_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DEBUG", False)


def _secret(name: str) -> str:
    """A required secret; only a DEBUG run may fall back to one generated per checkout."""
    value = env_str(name)
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(f"{name} must be set (or DEBUG=1 for a local run)")
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    path = VAR_DIR / f"{name.lower()}.txt"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(48), encoding="utf-8")
    return path.read_text(encoding="utf-8").strip()


SECRET_KEY = _secret("SECRET_KEY")
# HMAC secret for API key digests: a database leak alone never reveals a usable key.
GATEWAYZ_KEY_PEPPER = _secret("GATEWAYZ_KEY_PEPPER").encode()

# What customers pay over the catalog's prices, which are the providers' (billing.pricing);
# each request records both. Requests served with the customer's own key pay the BYOK fee.
GATEWAYZ_MARKUP = env_decimal("GATEWAYZ_MARKUP", "1.25")
# What a request served with the customer's own provider key (BYOK) is charged: this share
# of the list price (the provider bills them for the rest).
GATEWAYZ_BYOK_FEE = env_decimal("GATEWAYZ_BYOK_FEE", "0.05")
# The most credit support staff change at a time (a grant, refund or deduction); more needs
# an admin (billing.staff_credit).
GATEWAYZ_SUPPORT_CREDIT_LIMIT = env_decimal("GATEWAYZ_SUPPORT_CREDIT_LIMIT", "50")
# Fernet keys for provider credentials at rest, the current one first (providers.credentials).
GATEWAYZ_CREDENTIAL_KEYS = env_list("GATEWAYZ_CREDENTIAL_KEYS")

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

# --- HTTPS (docs/deployment.md) ----------------------------------------------------------
# GATEWAYZ_HTTPS=1: the site is served over HTTPS only, by a proxy in front (Caddy in the
# compose file, an ingress in Kubernetes) that terminates TLS and sets X-Forwarded-Proto.
# It turns on what `check --deploy` asks for; each can still be set on its own.
GATEWAYZ_HTTPS = env_bool("GATEWAYZ_HTTPS", False)
if GATEWAYZ_HTTPS:
    # Believed only because the proxy overwrites the header a client sent: a proxy that
    # passes it through would let any client claim HTTPS.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", GATEWAYZ_HTTPS)
# Probes and scrapes come from inside, over plain HTTP: redirecting them would fail them.
SECURE_REDIRECT_EXEMPT = [r"^health(/|$)", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if GATEWAYZ_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", GATEWAYZ_HTTPS)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", GATEWAYZ_HTTPS)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", GATEWAYZ_HTTPS)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", GATEWAYZ_HTTPS)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "channels",
    "django_prometheus",
    "djstripe",
    # The web pages' sign-up, e-mail verification, login, password reset and TOTP (docs/web.md).
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_htmx",
    "core",
    "accounts",
    "providers",
    "billing",
    "monitoring",
    "gateway",
    "payments",
    "chats",
]

if sys.argv[1:2] == ["runserver"]:
    # daphne makes `runserver` serve the ASGI app; it brings Twisted (~20 MB per process),
    # which the uvicorn workers that serve production have no use for.
    INSTALLED_APPS.insert(0, "daphne")

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Static files from the process itself, compressed and cached forever by their hashed
    # names (collectstatic), or straight from the apps' folders under DEBUG.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.audit.AuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.web.site",
            ],
        },
    },
]

# --- storage -----------------------------------------------------------------------------
# The primary, a read replica for dashboards and monitoring (DATABASE_REPLICA_URL), and
# how connections reach Postgres (GATEWAYZ_DB_POOL_SIZE, GATEWAYZ_DB_PGBOUNCER,
# GATEWAYZ_DB_STATEMENT_TIMEOUT_MS): config/databases.py.
DATABASES = databases(VAR_DIR)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
# Redis behind Sentinels (core/redis_topology.py): every client asks them for the master.
try:
    REDIS_SENTINELS = Sentinels.parse(
        env_list("REDIS_SENTINELS"),
        env_str("REDIS_SENTINEL_MASTER", "mymaster"),
        env_str("REDIS_SENTINEL_PASSWORD"),
    )
    # Or a Redis Cluster (core/redis_cluster.py): some of its nodes, from which every client
    # learns the rest and which master serves which key.
    REDIS_CLUSTER_NODES = parse_addresses(env_list("REDIS_CLUSTER_NODES"), "REDIS_CLUSTER_NODES")
except ValueError as exc:
    raise ImproperlyConfigured(str(exc)) from exc
# Money scripts (credit holds, settlements, journals) are answered only once this many
# replicas hold them too (Redis' WAIT, once per batch): a failover then loses none of them
# (core/redis_wire.py, docs/deployment.md). On by default behind Sentinels.
GATEWAYZ_REDIS_WAIT_REPLICAS = env_int(
    "GATEWAYZ_REDIS_WAIT_REPLICAS", 1 if REDIS_SENTINELS or REDIS_CLUSTER_NODES else 0, minimum=0
)
GATEWAYZ_REDIS_WAIT_MS = env_int("GATEWAYZ_REDIS_WAIT_MS", 100, minimum=1)
# Groups of credit and limit keys, each under one hash tag (core/redis_groups.py): what a
# Redis Cluster shards by. 1: plain key names. Set once, the same for every process: a
# change moves every balance, and needs every process stopped and the spool folder empty.
GATEWAYZ_REDIS_CREDIT_GROUPS = env_int("GATEWAYZ_REDIS_CREDIT_GROUPS", 1, minimum=1)
if REDIS_SENTINELS and not REDIS_URL:
    raise ImproperlyConfigured(
        "REDIS_SENTINELS needs REDIS_URL for the database and password (redis://:pw@mymaster/0)"
    )
if REDIS_CLUSTER_NODES:
    if REDIS_SENTINELS:
        raise ImproperlyConfigured("REDIS_CLUSTER_NODES and REDIS_SENTINELS: one or the other")
    if not REDIS_URL or url_database(REDIS_URL):
        raise ImproperlyConfigured(
            "REDIS_CLUSTER_NODES needs REDIS_URL (its password) naming database 0, "
            "a Cluster's only one"
        )
    if GATEWAYZ_REDIS_CREDIT_GROUPS < 2:
        # With one group the keys of one money script are in different slots, which a
        # Cluster refuses (CROSSSLOT).
        raise ImproperlyConfigured(
            "REDIS_CLUSTER_NODES needs GATEWAYZ_REDIS_CREDIT_GROUPS of 2 or more "
            "(a few per master: docs/deployment.md, Cluster)"
        )
    if not env_str("CELERY_BROKER_URL"):
        raise ImproperlyConfigured(
            "Celery's broker cannot be a Redis Cluster: set CELERY_BROKER_URL "
            "(a Redis of its own, a Sentinel set or RabbitMQ)"
        )
CACHES: dict[str, dict[str, Any]]
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "gwz",
            # Fail fast when Redis is away: callers fall back (accounts.throttles).
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 2},
        },
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }
    if REDIS_SENTINELS:
        DJANGO_REDIS_CONNECTION_FACTORY = "django_redis.pool.SentinelConnectionFactory"
        CACHES["default"]["OPTIONS"].update(
            {
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
                "SENTINELS": list(REDIS_SENTINELS.addresses),
                "SENTINEL_KWARGS": {"password": REDIS_SENTINELS.password, "socket_timeout": 1},
            }
        )
        CACHES["default"]["LOCATION"] = redis_url_at(REDIS_URL, REDIS_SENTINELS.master)
    if REDIS_CLUSTER_NODES:
        DJANGO_REDIS_CONNECTION_FACTORY = "core.redis_cache.ClusterConnectionFactory"
else:
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
        "local": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    }

# --- auth --------------------------------------------------------------------------------
# The rollups' covering index (monitoring.models, rollup_customers_idx) includes columns
# only Postgres can keep in an index; SQLite (`make run`) builds it on its key columns.
SILENCED_SYSTEM_CHECKS = ["models.W040"]

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.ApiKeyAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "accounts.pagination.BoundedPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
# The OpenAPI document at /api/schema: the management API as DRF describes it, plus the
# inference routes, which the raw gateway app serves outside DRF (gateway.endpoints.openapi).
SPECTACULAR_SETTINGS = {
    "TITLE": "Gatewayz API",
    "DESCRIPTION": "One OpenAI- and Anthropic-compatible API in front of many LLM providers.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Two `role` fields (an account's, a chat message's): each its own enum name.
    "ENUM_NAME_OVERRIDES": {
        "AccountRoleEnum": "accounts.models.User.Role",
        "ChatRoleEnum": "chats.models.ChatMessage.Role",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "accounts.openapi.add_error_responses",
        "gateway.endpoints.openapi.add_inference_routes",
        "monitoring.openapi.add_public_routes",
    ],
}

# The address customers call, as the pages' code samples write it (`https://api.example.com`);
# empty: the host the page was asked from.
GATEWAYZ_PUBLIC_URL = env_str("GATEWAYZ_PUBLIC_URL").rstrip("/")

# The dashboard warns under this much available credit.
GATEWAYZ_LOW_BALANCE_BANNER = env_decimal("GATEWAYZ_LOW_BALANCE_BANNER", "1")

# The web pages' accounts (django-allauth): e-mail and password, a verified address before
# the first login (the mail goes to the console under `make run`), TOTP as a second factor.
# Its rate limits (signup, login failures, password resets) count in the cache.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
LOGIN_URL = "/login"
LOGIN_REDIRECT_URL = "/dashboard"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_EMAIL_VERIFICATION = "mandatory"
ACCOUNT_LOGIN_ON_EMAIL_CONFIRMATION = True
# One address an account; a new one replaces it only once its link is followed.
ACCOUNT_CHANGE_EMAIL = True
ACCOUNT_EMAIL_SUBJECT_PREFIX = "Gatewayz: "
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes"]
MFA_TOTP_ISSUER = "Gatewayz"

# API sessions: short access tokens; each refresh rotates the refresh token and retires the
# old one, so a stolen refresh token works once at most (and its theft shows).
# Per client address (accounts.throttles).
GATEWAYZ_LOGIN_RATE = env_str("GATEWAYZ_LOGIN_RATE", "10/min")
GATEWAYZ_TOKEN_REFRESH_RATE = env_str("GATEWAYZ_TOKEN_REFRESH_RATE", "30/min")
GATEWAYZ_SIGNUP_RATE = env_str("GATEWAYZ_SIGNUP_RATE", "5/hour")
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
}

# --- i18n, static ------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
# Hashed, compressed copies made by collectstatic; under DEBUG (`make run`) the files are
# served from their folders as they are edited.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# --- celery ------------------------------------------------------------------------------
CELERY_BROKER_URL = (
    env_str("CELERY_BROKER_URL")
    or (sentinel_broker_url(REDIS_URL, REDIS_SENTINELS) if REDIS_SENTINELS else REDIS_URL)
    or "filesystem://"
)
if CELERY_BROKER_URL.startswith("sentinel://") and REDIS_SENTINELS:
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "master_name": REDIS_SENTINELS.master,
        "sentinel_kwargs": {"password": REDIS_SENTINELS.password},
    }
if CELERY_BROKER_URL == "filesystem://":
    # Embedded default: a broker in a folder, so `make run` needs no server.
    _queue = VAR_DIR / "celery-queue"
    for _folder in (_queue, VAR_DIR / "celery-control"):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue),
        "data_folder_out": str(_queue),
        "control_folder": str(VAR_DIR / "celery-control"),
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "release-expired-holds": {
        "task": "billing.tasks.release_expired_holds",
        "schedule": 60.0,
    },
    # Balance changes made while Redis was unreachable, into Redis once it is back (the
    # gateway's processes do it as they find Redis again; this catches stragglers).
    "mirror-pending-balance-changes": {
        "task": "billing.tasks.mirror_pending_balance_changes",
        "schedule": 60.0,
    },
    # The request log's months (billing.retention) and the rollups' two years.
    "retain-request-log": {"task": "billing.tasks.retain_request_log", "schedule": 6 * 3600.0},
    "prune-rollups": {"task": "monitoring.tasks.prune_rollups", "schedule": 24 * 3600.0},
    "prune-playground-keys": {
        "task": "accounts.tasks.prune_playground_keys",
        "schedule": 24 * 3600.0,
    },
    "expire-stored-responses": {
        "task": "billing.tasks.expire_stored_responses",
        "schedule": 3600.0,
    },
    # Customers' cards charged when their credit runs low (payments.auto_topup), and
    # low-balance notices (payments.low_balance).
    "auto-top-up": {"task": "payments.tasks.auto_topup_run", "schedule": 60.0},
    "low-balance-notices": {"task": "payments.tasks.low_balance_notify", "schedule": 600.0},
    # Trials: the next day's slice of a capped trial, and trials whose time is up.
    "advance-trials": {"task": "billing.tasks.advance_trials", "schedule": 300.0},
    # Plans' allowances whose period has ended (billing.allowance: no roll-over).
    "expire-allowances": {
        "task": "billing.tasks.expire_allowances",
        "schedule": 300.0,
    },
    # The request log's hourly and daily rollups (monitoring.rollups): the current ones.
    "refresh-rollups": {"task": "monitoring.tasks.refresh_rollups", "schedule": 60.0},
    "evaluate-incidents": {"task": "monitoring.tasks.evaluate_incidents", "schedule": 60.0},
    # Health checks in tiers (monitoring.health): what serves traffic often, the rest rarely.
    "check-health-hot": {
        "task": "monitoring.tasks.check_health",
        "schedule": 60.0,
        "args": ("hot",),
    },
    "check-health-all": {
        "task": "monitoring.tasks.check_health",
        "schedule": 1800.0,
        "args": ("all",),
    },
}

# --- mail ----------------------------------------------------------------------------------
# Receipts and account notices (accounts.emails), sent by Celery. The console under `make
# run`; an ESP through django-anymail when EMAIL_ESP names one of its backends (resend,
# postmark, sendgrid, mailgun, brevo, …) with its API key in EMAIL_ESP_API_KEY.
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL") or "Gatewayz <billing@localhost>"
EMAIL_ESP = env_str("EMAIL_ESP")
if EMAIL_ESP:
    EMAIL_BACKEND = f"anymail.backends.{EMAIL_ESP}.EmailBackend"
    ANYMAIL = {f"{EMAIL_ESP.upper()}_API_KEY": env_str("EMAIL_ESP_API_KEY")}
else:
    EMAIL_BACKEND = env_str("EMAIL_BACKEND") or "django.core.mail.backends.console.EmailBackend"
# Where Django's file backend (EMAIL_BACKEND=django.core.mail.backends.filebased.EmailBackend)
# writes each message: a local run's inbox.
EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH") or str(VAR_DIR / "mail")

# --- stripe (payments, dj-stripe) ---------------------------------------------------------
# Payments are on when STRIPE_SECRET_KEY is set; without it (`make run`) the billing
# endpoints answer "payments are not configured" and everything else works.
STRIPE_SECRET_KEY = env_str("STRIPE_SECRET_KEY")
STRIPE_PUBLISHABLE_KEY = env_str("STRIPE_PUBLISHABLE_KEY")
# Signs the events Stripe posts to /api/stripe/webhook (the endpoint's `whsec_…`).
STRIPE_WEBHOOK_SECRET = env_str("STRIPE_WEBHOOK_SECRET") or env_str("DJSTRIPE_WEBHOOK_SECRET")
# Where every Stripe call goes: Stripe itself, or a local double (tests, development).
STRIPE_API_BASE = env_str("STRIPE_API_BASE") or "https://api.stripe.com"
STRIPE_LIVE_MODE = STRIPE_SECRET_KEY.startswith("sk_live_")
# dj-stripe reads the key by mode.
STRIPE_LIVE_SECRET_KEY = STRIPE_SECRET_KEY if STRIPE_LIVE_MODE else ""
STRIPE_TEST_SECRET_KEY = "" if STRIPE_LIVE_MODE else STRIPE_SECRET_KEY
DJSTRIPE_WEBHOOK_SECRET = STRIPE_WEBHOOK_SECRET
DJSTRIPE_FOREIGN_KEY_TO_FIELD = "id"
# A credit purchase: 1 credit = 1 US dollar. The fee is added to the price the customer
# pays (percent of the credits bought, at least the minimum), never taken from the credits.
GATEWAYZ_TOPUP_FEE_PERCENT = env_decimal("GATEWAYZ_TOPUP_FEE_PERCENT", "0")
GATEWAYZ_TOPUP_FEE_MIN = env_decimal("GATEWAYZ_TOPUP_FEE_MIN", "0")
# The range of a custom amount of credits (credit packs are edited in the admin).
GATEWAYZ_TOPUP_MIN = env_decimal("GATEWAYZ_TOPUP_MIN", "5")
GATEWAYZ_TOPUP_MAX = env_decimal("GATEWAYZ_TOPUP_MAX", "10000")
# Referrals: what each of the two people gets when the referee's first purchase of at least
# GATEWAYZ_REFERRAL_MIN_PURCHASE completes, and how many people one code may bring.
GATEWAYZ_REFERRAL_BONUS = env_decimal("GATEWAYZ_REFERRAL_BONUS", "10")
GATEWAYZ_REFERRAL_MIN_PURCHASE = env_decimal("GATEWAYZ_REFERRAL_MIN_PURCHASE", "10")
GATEWAYZ_REFERRAL_MAX_USES = env_int("GATEWAYZ_REFERRAL_MAX_USES", 10, minimum=0)
# Free trials for new customers (billing.trials): credit (0: no trials), days, the most of
# it spent a day (0: no cap), and how many trials one client address may start a day.
GATEWAYZ_TRIAL_CREDIT = env_decimal("GATEWAYZ_TRIAL_CREDIT", "0")
GATEWAYZ_TRIAL_DAYS = env_int("GATEWAYZ_TRIAL_DAYS", 14, minimum=1)
GATEWAYZ_TRIAL_DAILY_CAP = env_decimal("GATEWAYZ_TRIAL_DAILY_CAP", "0")
GATEWAYZ_TRIAL_PER_IP_DAY = env_int("GATEWAYZ_TRIAL_PER_IP_DAY", 3, minimum=0)
# Auto top-up: declined this many times in a row, it turns itself off (and says so by
# mail); after a decline it waits this long before charging the card again.
GATEWAYZ_AUTO_TOPUP_MAX_FAILURES = env_int("GATEWAYZ_AUTO_TOPUP_MAX_FAILURES", 3, minimum=1)
GATEWAYZ_AUTO_TOPUP_RETRY_SECONDS = env_int("GATEWAYZ_AUTO_TOPUP_RETRY_SECONDS", 3600, minimum=0)

# --- gateway -----------------------------------------------------------------------------
# Bodies larger than this are refused with 413 before they are parsed.
GATEWAYZ_MAX_BODY_BYTES = env_int("GATEWAYZ_MAX_BODY_BYTES", 4 * 1024 * 1024, minimum=1024)
# A hold not settled within this many seconds belongs to a crashed process: the request is
# settled from its journal and the hold released (docs/request-path.md).
GATEWAYZ_HOLD_TTL_SECONDS = env_int("GATEWAYZ_HOLD_TTL_SECONDS", 900, minimum=60)
# How long a stored Responses API answer is kept (OpenAI keeps them 30 days).
GATEWAYZ_RESPONSES_RETENTION_DAYS = env_int("GATEWAYZ_RESPONSES_RETENTION_DAYS", 30, minimum=1)
# The request log's rows (billing.retention: whole months dropped on Postgres) and the
# rollups' (monitoring.rollups, two years: what usage and monitoring read).
GATEWAYZ_REQUEST_LOG_RETENTION_DAYS = env_int("GATEWAYZ_REQUEST_LOG_RETENTION_DAYS", 90, minimum=1)
GATEWAYZ_ROLLUP_RETENTION_DAYS = env_int("GATEWAYZ_ROLLUP_RETENTION_DAYS", 731, minimum=1)
# How often a stream records what it has delivered in its journal, and so how much a crash
# can leave unbilled (one Redis command per stream per period, no wait for its reply).
GATEWAYZ_JOURNAL_SECONDS = env_float("GATEWAYZ_JOURNAL_SECONDS", 1.0)
# Where settled usage waits on local disk while the database cannot take it (with Redis:
# billing.usage_spool). Must survive a restart of the process; one per host is enough.
GATEWAYZ_USAGE_SPOOL_DIR = Path(env_str("GATEWAYZ_USAGE_SPOOL_DIR", str(VAR_DIR / "usage-spool")))
# The hot path's wait for a Redis reply: past it Redis counts as unreachable and requests
# are admitted on the database and in-process limits until it answers again
# (docs/limits.md). Replies normally take well under a millisecond.
GATEWAYZ_REDIS_TIMEOUT_SECONDS = env_float("GATEWAYZ_REDIS_TIMEOUT_SECONDS", 1.0)
# Output tokens reserved when a request sets no max_tokens and its model declares no cap.
GATEWAYZ_DEFAULT_MAX_OUTPUT_TOKENS = env_int("GATEWAYZ_DEFAULT_MAX_OUTPUT_TOKENS", 4096, minimum=1)
# Extra catalog files (an operator's own providers), loaded after the bundled catalog.
GATEWAYZ_CATALOG_FILES = env_list("GATEWAYZ_CATALOG_FILES")
# How often each process re-checks for revoked keys and catalog edits (seconds).
GATEWAYZ_INVALIDATION_POLL_SECONDS = env_float("GATEWAYZ_INVALIDATION_POLL_SECONDS", 0.5)
# While those polls fail (the database out of reach), a process keeps serving the keys it
# cached for this long after its last poll that succeeded: the bound on how late a key
# revoked meanwhile stops working there (docs/security.md). Its catalog it keeps throughout.
GATEWAYZ_KEY_CACHE_BLIND_SECONDS = env_int("GATEWAYZ_KEY_CACHE_BLIND_SECONDS", 300, minimum=1)
# The shared key cache in Redis (gateway.keycache_shared): a key's copy, for processes that
# have not cached it while the database is out of reach, lives this long after a process in
# touch with the database last loaded or used the key.
GATEWAYZ_SHARED_KEY_CACHE_SECONDS = env_int("GATEWAYZ_SHARED_KEY_CACHE_SECONDS", 300, minimum=3)
# Upstream connection limits (timeouts are per provider, in the catalog).
GATEWAYZ_UPSTREAM_MAX_CONNECTIONS = env_int("GATEWAYZ_UPSTREAM_MAX_CONNECTIONS", 512, minimum=1)
# Rate limits (0 = none). Windows are fixed UTC minutes and days; tokens count the estimate
# at admission (prompt bytes ÷ 4 + the output allowed, as OpenAI counts) and are corrected
# to the actual count at settlement. A key's own limits (admin, API) override the key
# defaults; the user's and the system's apply on top. See docs/limits.md.
GATEWAYZ_RATE_LIMITS = {
    scope: {
        kind: env_int(f"GATEWAYZ_{scope.upper()}_{kind.upper()}", default, minimum=0)
        for kind, default in defaults.items()
    }
    for scope, defaults in {
        # On by default: the three that stop one leaked or looping key from draining an
        # account or swamping the gateway. Each limit on costs a few Redis operations inside
        # the admission script (bench/README.md); operators add more where they need them.
        "key": {"rpm": 600, "rph": 0, "rpd": 0, "tpm": 2_000_000, "tpd": 0, "concurrent": 100},
        "user": {"rpm": 0, "rph": 0, "rpd": 0, "tpm": 0, "tpd": 0, "concurrent": 0},
        "system": {"rpm": 0, "rph": 0, "rpd": 0, "tpm": 0, "tpd": 0, "concurrent": 0},
    }.items()
}
# Credit granted to an account created by `make run`'s demo set-up.
GATEWAYZ_DEMO_CREDIT = env_decimal("GATEWAYZ_DEMO_CREDIT", "10")

# LOG_FORMAT=json: one JSON object a line (time, level, logger, message, and a request's
# fields: request_id, user_id, key_id, model, provider, status, latency_ms…; trace_id with
# tracing on), for a log pipeline to index; plain text otherwise.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be plain or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {
            "()": "pythonjsonlogger.orjson.OrjsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            "timestamp": False,
        },
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # One line per upstream call is noise at INFO; failures are logged by the gateway.
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "stripe": {"level": "WARNING"},  # a line per Stripe call
    },
}

# Failover and retries (docs/routing.md): attempts per request over every deployment and
# retry; the time they may take before an answer; rounds of retries of what failed
# transiently, after an exponential pause (longer if a provider's Retry-After says so, but
# never past GATEWAYZ_RETRY_AFTER_MAX_SECONDS: then the client gets the 429 instead).
GATEWAYZ_MAX_ATTEMPTS = env_int("GATEWAYZ_MAX_ATTEMPTS", 4, minimum=1)
GATEWAYZ_UPSTREAM_BUDGET_SECONDS = env_float("GATEWAYZ_UPSTREAM_BUDGET_SECONDS", 60.0)
GATEWAYZ_RETRY_ROUNDS = env_int("GATEWAYZ_RETRY_ROUNDS", 1, minimum=0)
GATEWAYZ_RETRY_BACKOFF_SECONDS = env_float("GATEWAYZ_RETRY_BACKOFF_SECONDS", 0.25)
GATEWAYZ_RETRY_AFTER_MAX_SECONDS = env_float("GATEWAYZ_RETRY_AFTER_MAX_SECONDS", 5.0)
# A provider × model × credential that answered 429 is skipped for its Retry-After, or this
# long when it gave none (gateway.guards.cooling); a 429 never counts against a breaker.
GATEWAYZ_COOLING_SECONDS = env_float("GATEWAYZ_COOLING_SECONDS", 2.0)
# A request that finds every deployment half-open with a probe out waits this long at most
# for the probe's verdict, instead of being refused at once.
GATEWAYZ_PROBE_WAIT_SECONDS = env_float("GATEWAYZ_PROBE_WAIT_SECONDS", 5.0)
# Circuit breakers per provider × model (gateway.guards.breaker_rules).
GATEWAYZ_BREAKER = {
    "failures": env_int("GATEWAYZ_BREAKER_FAILURES", 5, minimum=1),
    "window_seconds": env_float("GATEWAYZ_BREAKER_WINDOW_SECONDS", 60.0),
    "min_requests": env_int("GATEWAYZ_BREAKER_MIN_REQUESTS", 20, minimum=1),
    "error_rate": env_float("GATEWAYZ_BREAKER_ERROR_RATE", 0.5),
    "cooldown_seconds": env_float("GATEWAYZ_BREAKER_COOLDOWN_SECONDS", 15.0),
    "max_cooldown_seconds": env_float("GATEWAYZ_BREAKER_MAX_COOLDOWN_SECONDS", 600.0),
    "successes": env_int("GATEWAYZ_BREAKER_SUCCESSES", 2, minimum=1),
    "probe_seconds": env_float("GATEWAYZ_BREAKER_PROBE_SECONDS", 30.0),
}
# The process's upstream slots and their priority queue (gateway.guards.priority).
GATEWAYZ_PROCESS_MAX_IN_FLIGHT = env_int("GATEWAYZ_PROCESS_MAX_IN_FLIGHT", 4096, minimum=1)
GATEWAYZ_QUEUE_MAX_WAITING = env_int("GATEWAYZ_QUEUE_MAX_WAITING", 1024, minimum=0)
GATEWAYZ_QUEUE_WAIT_SECONDS = env_float("GATEWAYZ_QUEUE_WAIT_SECONDS", 10.0)
# /metrics (gateway.metrics_access): served with this bearer token, or to these networks
# when the request did not come through the front proxy.
GATEWAYZ_METRICS_TOKEN = env_str("GATEWAYZ_METRICS_TOKEN")
GATEWAYZ_METRICS_NETWORKS = tuple(
    ipaddress.ip_network(n, strict=False)
    for n in env_list(
        "GATEWAYZ_METRICS_NETWORKS",
        "127.0.0.0/8,::1/128,10.0.0.0/8,172.16.0.0/12,192.168.0.0/16,fc00::/7",
    )
)
# The proxies whose X-Forwarded-For is believed for the client's address (key IP allowlists,
# audit log): addresses or networks. Empty: the connection's peer is the client.
GATEWAYZ_TRUSTED_PROXIES = tuple(
    ipaddress.ip_network(n, strict=False) for n in env_list("GATEWAYZ_TRUSTED_PROXIES")
)
# Which networks upstream calls may reach (providers.ssrf): public | loopback | private.
GATEWAYZ_UPSTREAM_NETWORKS = env_str("GATEWAYZ_UPSTREAM_NETWORKS", "public")
if GATEWAYZ_UPSTREAM_NETWORKS not in ("public", "loopback", "private"):
    raise ImproperlyConfigured("GATEWAYZ_UPSTREAM_NETWORKS: public, loopback or private")

# Errors to Sentry (or GlitchTip, self-hosted Sentry) when SENTRY_DSN is set: scrubbed of
# prompts, completions, keys and emails before they leave (config.sentry).
SENTRY_DSN = env_str("SENTRY_DSN", "")
if SENTRY_DSN:
    from config.sentry import sentry_init

    sentry_init(
        dsn=SENTRY_DSN,
        environment=env_str("SENTRY_ENVIRONMENT", "production"),
        release=env_str("SENTRY_RELEASE", ""),
        traces_sample_rate=env_float("SENTRY_TRACES_SAMPLE_RATE", 0.0),
    )
