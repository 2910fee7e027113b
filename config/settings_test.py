"""Settings of the test suite (selected by pytest's configuration, never by production).

Postgres and Redis on their standard local ports unless DATABASE_URL / REDIS_URL say
otherwise; the embedded lane sets DATABASE_URL to SQLite and REDIS_URL to nothing.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789")
os.environ.setdefault("GATEWAYZ_KEY_PEPPER", "test-pepper-not-for-production")
os.environ.setdefault(
    "GATEWAYZ_CREDENTIAL_KEYS", "dGVzdC1jcmVkZW50aWFsLWtleS1ub3QtZm9yLXByb2Q="
)  # a Fernet key (32 bytes, url-safe base64), for tests only
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/gatewayz")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
# Prices as the catalog lists them, so the tests' figures are the catalog's (the markup has
# tests of its own: tests/billing/test_markup.py).
os.environ.setdefault("GATEWAYZ_MARKUP", "1")
# The mock providers listen on loopback (tests/security checks the default refuses it).
os.environ.setdefault("GATEWAYZ_UPSTREAM_NETWORKS", "loopback")

from config.settings import *  # noqa: F403
from config.settings import DATABASES, VAR_DIR

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # speed, tests only

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # A file, not :memory:, so the gateway processes the tests start share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-gatewayz.sqlite3")}

# Celery tasks run in the test's own process (mail lands in pytest-django's `mailoutbox`).
CELERY_TASK_ALWAYS_EAGER = True

# Pages served by the tests' own processes find static files in their folders (no
# collectstatic before each run); tests/web/test_static.py builds the production manifest.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
