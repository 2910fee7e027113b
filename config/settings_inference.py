"""Settings of the inference workers (`config.asgi_inference`): the main settings without the
apps that only the web side uses.

Inference workers serve /v1/* and /health* and nothing else, so they need the models of the
request path (accounts, billing, providers, monitoring, gateway) but not dj-stripe, whose
models and the stripe SDK are ~20 MB of every worker's memory (bench/README.md). Code that
links to dj-stripe's models therefore lives in apps the gateway's request path never imports.
"""

from config.settings import *  # noqa: F403
from config.settings import INSTALLED_APPS, MIDDLEWARE

# dj-stripe and payments: Stripe, billing pages and webhooks; the token blacklist: JWT
# logins; drf-spectacular: the OpenAPI document; allauth and htmx: the web pages (web side
# only).
WEB_ONLY_APPS = {
    "djstripe",
    "payments",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "django_htmx",
    "chats",
}

INSTALLED_APPS = [app for app in INSTALLED_APPS if app not in WEB_ONLY_APPS]
# The raw gateway app never enters Django's middleware; the pages' own stay on the web side.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith(("allauth.", "django_htmx."))]
