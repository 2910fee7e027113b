"""Shared fixtures: real Postgres/Redis (or the embedded lane's SQLite), the mock upstream
and gateway server processes, and accounts with keys and credit."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from tests.support.servers import REPO_ROOT, Upstream, free_port, spawn, stop

UPSTREAM_KEY = "sk-test-upstream"
# The Stripe double's key (dj-stripe wants 24+ characters after the prefix) and the secret
# that signs its events.
STRIPE_KEY = "sk_test_gatewayzStripeDouble000000"
WEBHOOK_SECRET = "whsec_test_gatewayz_double"


@pytest.fixture(scope="session")
def mock_upstream() -> Iterator[Upstream]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = spawn(
        ["-m", "mockserver", "--port", str(port), "--api-key", UPSTREAM_KEY], f"{url}/health"
    )
    yield Upstream(url, UPSTREAM_KEY)
    stop(proc)


@pytest.fixture(scope="session")
def stripe_double() -> Iterator[str]:
    """Stripe for the tests: mockserver.stripe in front of localstripe (tests/payments)."""
    localstripe_port, port = free_port(), free_port()
    localstripe = f"http://127.0.0.1:{localstripe_port}"
    (REPO_ROOT / "var").mkdir(exist_ok=True)
    backend = spawn(
        ["-m", "localstripe", "--port", str(localstripe_port), "--from-scratch"],
        f"{localstripe}/js.stripe.com/v3/",
        log=REPO_ROOT / "var" / "localstripe.log",  # a line per call: not the test output
    )
    url = f"http://127.0.0.1:{port}"
    double = spawn(
        [
            "-m",
            "mockserver.stripe",
            "--port",
            str(port),
            "--localstripe",
            localstripe,
            "--webhook-secret",
            WEBHOOK_SECRET,
        ],
        f"{url}/_double/health",
    )
    yield url
    stop(double)
    stop(backend)


@pytest.fixture(scope="session")
def django_db_setup(
    request: pytest.FixtureRequest,
    django_test_environment: None,
    django_db_blocker: Any,
    django_db_use_migrations: bool,
    django_db_keepdb: bool,
    django_db_createdb: bool,
    django_db_modify_db_settings: None,
) -> Iterator[None]:
    """pytest-django's set-up, except that the default database is always set up: the
    end-to-end tests use it through server processes, not through the `db` fixture."""
    from django.apps import apps
    from django.conf import settings
    from django.test.utils import setup_databases, teardown_databases

    if not django_db_use_migrations:  # --no-migrations: tables straight from the models
        # Django's own switch: an app whose migration module is None has no migrations.
        settings.MIGRATION_MODULES = {app.label: None for app in apps.get_app_configs()}
    keepdb = django_db_keepdb and not django_db_createdb

    if settings.REDIS_URL:
        # A fresh database reuses user ids: forget the credit Redis kept for the last run's.
        import redis

        redis.Redis.from_url(settings.REDIS_URL).flushdb()
    with django_db_blocker.unblock():
        config = setup_databases(
            verbosity=request.config.option.verbose,
            interactive=False,
            keepdb=keepdb,
            aliases={"default"},
        )
        # The request log as production has it (tables made straight from the models are
        # not partitioned: the migration does that).
        from billing.retention import log_partition

        log_partition()
    yield
    if not django_db_keepdb:
        with django_db_blocker.unblock():
            teardown_databases(config, verbosity=request.config.option.verbose)


def _database_url() -> str:
    s = connection.settings_dict
    if s["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{s['NAME']}"
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


@pytest.fixture(scope="session")
def test_catalog(
    django_db_setup: Any,
    django_db_blocker: Any,
    mock_upstream: Upstream,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """The catalog the gateway processes serve, committed once a session. Ask for it from
    tests that serve through a gateway, not from `django_db` ones: a transactional test's
    flush would take it away from every later test (tests/support/catalogs.py loads it
    into a test's own transaction instead)."""
    from providers.catalog_file import catalog_file_load

    text = (Path(__file__).parent / "data" / "catalog.toml").read_text()
    text = text.replace("{mock}", mock_upstream.url).replace(
        "{dead}", f"http://127.0.0.1:{free_port()}"
    )
    path = tmp_path_factory.mktemp("catalog") / "catalog.toml"
    path.write_text(text)
    with django_db_blocker.unblock():
        catalog_file_load(path=path)


GatewayStarter = Callable[..., str]
_gateway_procs: dict[str, Any] = {}  # by URL: the processes `start_gateway` started


@pytest.fixture(scope="session")
def start_gateway(
    test_catalog: None, django_db_blocker: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[GatewayStarter]:
    """Starts a gateway process (uvicorn, the production ASGI app) on the test database; it
    runs to the end of the session unless `stop_gateway` stops it sooner."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    spool = tmp_path_factory.mktemp("usage-spool")  # the session's, never a former run's

    def start(
        app: str = "config.asgi:application", log: Path | None = None, **extra_env: str
    ) -> str:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        env = {
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "DATABASE_URL": database_url,
            "GATEWAYZ_TEST_UPSTREAM_KEY": UPSTREAM_KEY,
            "GATEWAYZ_TEST_WRONG_KEY": "sk-wrong",
            "GATEWAYZ_MAX_BODY_BYTES": str(64 * 1024),
            # Faults are tested on the shared gateways all the time: their breakers must not
            # open (tests/gateway/test_breakers.py starts gateways whose breakers do).
            "GATEWAYZ_BREAKER_FAILURES": "1000000",
            "GATEWAYZ_BREAKER_MIN_REQUESTS": "1000000",
            "GATEWAYZ_RETRY_BACKOFF_SECONDS": "0.05",
            "GATEWAYZ_USAGE_SPOOL_DIR": str(spool),
            **extra_env,
        }
        quiet = ["--no-access-log", "--log-level", "warning"]
        args = ["-m", "uvicorn", app, "--port", str(port), "--no-proxy-headers", *quiet]
        _gateway_procs[url] = spawn(args, f"{url}/v1/models", env, log)
        return url

    yield start
    for proc in _gateway_procs.values():
        stop(proc)
    _gateway_procs.clear()


@pytest.fixture(scope="session")
def stop_gateway() -> Callable[[str], None]:
    """Stops a gateway `start_gateway` started: a module's own gateway need not hold its
    database connections (Postgres allows 100 in all) for the rest of the session."""

    def stop_one(url: str) -> None:
        proc = _gateway_procs.pop(url, None)
        if proc is not None:  # not killed by `kill_gateway` already
            stop(proc)

    return stop_one


@pytest.fixture(scope="session")
def kill_gateway() -> Callable[[str], None]:
    """SIGKILLs a gateway `start_gateway` started, as a crash would end it: no shutdown."""

    def kill_one(url: str) -> None:
        proc = _gateway_procs.pop(url)
        proc.kill()
        proc.wait()

    return kill_one


@pytest.fixture
def own_gateway(
    start_gateway: GatewayStarter, stop_gateway: Callable[[str], None]
) -> Iterator[GatewayStarter]:
    """`start_gateway` for one test: the gateways it starts are stopped when the test ends."""
    started: list[str] = []

    def start(*args: Any, **kwargs: Any) -> str:
        started.append(start_gateway(*args, **kwargs))
        return started[-1]

    yield start
    for url in started:
        stop_gateway(url)


@pytest.fixture(scope="session")
def gateway(start_gateway: GatewayStarter) -> str:
    return start_gateway()


@pytest.fixture
def live_db(django_db_setup: Any, django_db_blocker: Any) -> Iterator[None]:
    """Database access outside a test transaction: what the tests write, the gateway
    processes see. Tests keep to their own freshly created accounts."""
    with django_db_blocker.unblock():
        yield


@dataclass(frozen=True)
class Account:
    user: Any
    key: str
    key_id: int


@pytest.fixture
def make_account(live_db: None) -> Callable[..., Account]:
    from accounts.services import api_key_create, user_create
    from billing.services import credit_grant

    def make(credit: Decimal = Decimal("10")) -> Account:
        user = user_create(email=f"{uuid.uuid4().hex[:12]}@example.com")
        if credit:
            credit_grant(user=user, amount=credit, reference=f"test:{user.pk}")
        api_key, raw = api_key_create(user=user, name="test")
        return Account(user, raw, api_key.pk)

    return make
