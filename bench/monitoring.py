"""The monitoring, usage and discovery endpoints over a big request log: `make bench-monitoring`
(python -m bench.monitoring [--requests 1000000]).

Seeds `gatewayz_bench_monitoring` (Postgres, migrated on first use) with N logged requests
over 30 days (1,000 customers, 2,000 keys, the bundled catalog's models, 3% failures),
rolls them up as beat does (the hours, then the days from them), then times every endpoint
and the dashboard's pages in-process through Django's test client (no network: the view,
its queries and the JSON or template), and the public ones' computations (their 30 s cache
off). Beside them, in the same run, `GET /user/profile` as the baseline: a DRF view with
one small query. Reports p50 and p95
per endpoint in ms and as a ratio to the baseline's p95; the target is p95 ≤ 50 ms.
Writes bench/results/<UTC time>-monitoring.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

DB = "gatewayz_bench_monitoring"
SERVER = "postgres://postgres@127.0.0.1:5432"
RESULTS = Path(__file__).parent / "results"
ROOT = Path(__file__).resolve().parents[1]


def _setup_django() -> None:
    os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings_test"
    os.environ["DATABASE_URL"] = f"{SERVER}/{DB}"
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/14")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost")
    exists = subprocess.run(
        ["psql", f"{SERVER}/postgres", "-Atc", f"SELECT 1 FROM pg_database WHERE datname='{DB}'"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(["psql", f"{SERVER}/postgres", "-qc", f"CREATE DATABASE {DB}"], check=True)
    print("migrating (first use: a minute or two)...", flush=True)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        check=True,
        env={**os.environ},
    )
    import django

    django.setup()


def _seed(requests: int) -> list[str]:
    from django.db import connection

    from accounts.models import User
    from billing.models import RequestLog
    from monitoring.models import UsageRollup
    from providers.catalog import catalog_build
    from providers.catalog_file import BUNDLED_CATALOG, catalog_file_load
    from providers.models import Provider

    catalog_file_load(path=BUNDLED_CATALOG)
    for env in Provider.objects.exclude(credential_env="").values_list("credential_env", flat=True):
        os.environ.setdefault(env, "sk-bench")
    served = sorted((m.id, m.deployments[0].provider) for m in catalog_build().models.values())[:60]
    newest = RequestLog.objects.order_by("-created_at").values_list("created_at", flat=True)[:1]
    fresh = bool(newest) and newest[0] > datetime.now(UTC) - timedelta(minutes=10)
    if (
        fresh
        and RequestLog.objects.count() == requests
        and UsageRollup.objects.filter(total=True).exists()
    ):
        print(f"the log already holds {requests:,} requests", flush=True)
        return [m for m, _ in served]
    # Seeded again when older: "the last hour" of a log seeded an hour ago is empty.
    print(f"seeding {requests:,} requests over 30 days...", flush=True)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE monitoring_requestlog, billing_settledrequest, monitoring_usagerollup"
        )
        # The bench database holds the bench's own accounts only, and what they made.
        cursor.execute("TRUNCATE accounts_user CASCADE")
        User.objects.bulk_create(
            [User(email=f"bench-{i}@example.com", password="!") for i in range(1, 1001)]
        )
        cursor.execute("SELECT min(id) FROM accounts_user WHERE email LIKE 'bench-%%'")
        first_user = cursor.fetchone()[0]
        models = ",".join(f"'{m}'" for m, _ in served)
        providers = ",".join(f"'{p}'" for _, p in served)
        # Customers as they are: a few heavy, most light (activity skewed toward low ids),
        # each using three models of their own.
        n = len(served)
        cursor.execute("SELECT setseed(0.42)")
        cursor.execute(
            f"""
            INSERT INTO monitoring_requestlog (request_id, user_id, api_key_id, endpoint,
                requested_model, served_model, provider, status, error_type, prompt_tokens,
                completion_tokens, cached_tokens, cache_write_tokens, cost, provider_cost,
                upstream_latency_ms, ttft_ms, total_latency_ms, stream, attempts, created_at)
            SELECT 'bench-' || g, {first_user} + u, NULL, 'chat.completions',
                (ARRAY[{models}])[1 + (u * 7 + g % 3) % {n}],
                (ARRAY[{models}])[1 + (u * 7 + g % 3) % {n}],
                (ARRAY[{providers}])[1 + (u * 7 + g % 3) % {n}],
                CASE WHEN g % 33 = 0 THEN 502 ELSE 200 END,
                CASE WHEN g % 33 = 0 THEN 'upstream_error' ELSE '' END,
                100 + g % 900, 20 + g % 300, g % 50, 0, (g % 1000) * 0.000001,
                (g % 1000) * 0.0000008, 50 + g % 3000, 20 + g % 800, 60 + g % 3000,
                g % 4 = 0, '[]'::jsonb,
                now() - (g::float / {requests} * interval '30 days')
            FROM (SELECT g, floor(power(random(), 2.5) * 1000)::int AS u
                  FROM generate_series(1, {requests}) g) AS seeded
            """
        )
        cursor.execute(
            "INSERT INTO billing_settledrequest SELECT request_id, created_at "
            "FROM monitoring_requestlog"
        )
        cursor.execute("ANALYZE monitoring_requestlog")
    print(f"  seeded in {time.perf_counter() - started:.1f} s; rolling up...", flush=True)
    _roll_up()
    return [m for m, _ in served]


def _roll_up() -> None:
    from django.db import connection
    from django.utils import timezone

    from monitoring.rollups import rollup_day_from_hours, rollups_compute

    started = time.perf_counter()
    now = timezone.now()
    day = now - timedelta(days=31)
    while day < now:
        rollups_compute(start=day, end=min(day + timedelta(days=1), now), granularity="hour")
        rollup_day_from_hours(day)
        day += timedelta(days=1)
    rollup_day_from_hours(now)
    with connection.cursor() as cursor:
        # What autovacuum does on a live system: statistics, and the visibility map that
        # lets distinct-customer counts read the covering index alone.
        cursor.execute("VACUUM ANALYZE monitoring_usagerollup")
        cursor.execute("SELECT count(*) FROM monitoring_usagerollup")
        rows = cursor.fetchone()[0]
    print(f"  {rows:,} rollup rows in {time.perf_counter() - started:.1f} s", flush=True)


def _timed(call: Callable[[], object], rounds: int) -> tuple[float, float]:
    for _ in range(3):
        call()
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        call()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(0.95 * len(samples)) - 1)]


def _measure(models: list[str], rounds: int) -> list[tuple[str, float, float]]:
    from django.test import Client

    from accounts.models import User
    from monitoring import discovery, uptime
    from providers.catalog import catalog_build

    staff, _ = User.objects.get_or_create(email="bench-staff@staff.example.com")
    staff.role = "admin"
    staff.is_staff = True
    staff.save()
    customer = User.objects.filter(email="bench-1@example.com").first()
    as_staff, as_customer = Client(), Client()
    as_staff.force_login(staff)
    as_customer.force_login(customer)
    catalog = catalog_build()
    model = models[0]
    provider = catalog.models[model].deployments[0].provider

    def get(client: Client, path: str) -> Callable[[], object]:
        def call() -> object:
            answer = client.get(path)
            assert answer.status_code == 200, (path, answer.status_code, answer.content[:200])
            return answer

        return call

    endpoints: list[tuple[str, Callable[[], object]]] = [
        ("GET /user/profile (baseline)", get(as_customer, "/user/profile")),
        ("GET /user/usage (7 days by day)", get(as_customer, "/user/usage")),
        (
            "GET /user/usage (a month by hour, per model)",
            get(
                as_customer,
                "/user/usage?granularity=hour&group_by=model&from="
                + (datetime.now(UTC) - timedelta(days=30)).date().isoformat(),
            ),
        ),
        ("GET /user/requests", get(as_customer, "/user/requests")),
        # The web pages that read the same data (docs/web.md): rendered templates included.
        ("page /dashboard (7 days)", get(as_customer, "/dashboard")),
        ("page /dashboard (30 days)", get(as_customer, "/dashboard?range=30d")),
        ("page /keys/usage", get(as_customer, "/keys/usage")),
        ("GET /user/requests?status=failed", get(as_customer, "/user/requests?status=failed")),
    ]
    staff_paths = [
        "stats/realtime",
        f"stats/hourly/{provider}",
        f"errors/{provider}",
        "error-rates",
        "providers/comparison",
        f"latency/{provider}/{model}",
        f"latency-trends/{provider}",
        "cost-analysis",
        "token-efficiency",
        "anomalies",
        "chat-requests",
        f"chat-requests?model={model}",
        "chat-requests/counts",
        "chat-requests/models",
        "chat-requests/providers",
        "chat-requests/plot-data",
    ]
    endpoints += [
        (f"GET /api/monitoring/{p}", get(as_staff, f"/api/monitoring/{p}")) for p in staff_paths
    ]
    public: list[tuple[str, Callable[[], object]]] = [
        ("/v1/models/trending (24h)", lambda: discovery.models_trending({}, catalog)),
        (
            "/v1/models/trending (30d)",
            lambda: discovery.models_trending({"time_range": "30d"}, catalog),
        ),
        (
            "/v1/models/trending (30d, by users)",
            lambda: discovery.models_trending({"time_range": "30d", "sort_by": "users"}, catalog),
        ),
        ("/v1/models/low-latency", lambda: discovery.models_low_latency({}, catalog)),
        (
            "/v1/models/low-latency (30d)",
            lambda: discovery.models_low_latency({"time_range": "30d"}, catalog),
        ),
        (
            "/v1/models/search (popularity)",
            lambda: discovery.models_search({"sort_by": "popularity"}, catalog),
        ),
        ("/v1/provider", lambda: discovery.providers_list({}, catalog)),
        (
            f"/v1/provider/{provider}/stats (7d)",
            lambda: discovery.provider_stats({"time_range": "7d"}, catalog, provider),
        ),
        (
            f"/v1/provider/{provider}/top-models",
            lambda: discovery.provider_top_models({}, catalog, provider),
        ),
        ("/v1/gateways/summary", lambda: discovery.gateways_summary({}, catalog)),
        (
            "/v1/gateways/summary (30d)",
            lambda: discovery.gateways_summary({"time_range": "30d"}, catalog),
        ),
        (
            "/health/providers/uptime (7d)",
            lambda: uptime.providers_uptime({"period": "7d"}, catalog),
        ),
        ("/health/models/uptime (30d)", lambda: uptime.models_uptime({"period": "30d"}, catalog)),
    ]
    endpoints += [(f"{name}, uncached", call) for name, call in public]
    # The dashboard reads rollups, whatever the customer's history: its queries are counted
    # here, for the heaviest customer of a million-request log (docs/web.md: at most 10).
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as counted:
        get(as_customer, "/dashboard?range=30d")()
    print(f"  /dashboard: {len(counted)} queries", flush=True)
    assert len(counted) <= 10, [q["sql"][:120] for q in counted.captured_queries]
    results = []
    for name, call in endpoints:
        p50, p95 = _timed(call, rounds)
        results.append((name, p50, p95))
        print(f"  {name:<60} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    _setup_django()
    models = _seed(args.requests)
    results = _measure(models, args.rounds)
    baseline = results[0][2]
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    lines = [
        f"# Monitoring endpoints over {args.requests:,} logged requests ({stamp})",
        "",
        f"In-process (Django's test client), {args.rounds} timed calls each after 3 warm-ups.",
        "Ratio: p95 ÷ the baseline's p95 (`GET /user/profile`) in the same run.",
        "",
        "| endpoint | p50 ms | p95 ms | p95 ÷ baseline | ≤ 50 ms |",
        "|---|---:|---:|---:|:---:|",
    ]
    for name, p50, p95 in results:
        ok = "yes" if p95 <= 50 else "**no**"
        lines.append(f"| {name} | {p50:.1f} | {p95:.1f} | {p95 / baseline:.1f} | {ok} |")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{stamp}-monitoring.md"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
