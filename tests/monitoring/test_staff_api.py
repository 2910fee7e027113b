"""The staff monitoring API (monitoring.staff_api, monitoring.requests_api): the seed's paths
and shapes, figures equal to the log's, staff only; and the customer's own request list."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from accounts.services import api_key_create, user_create
from billing.models import RequestLog
from monitoring.anomalies import anomalies_sync
from monitoring.models import Incident
from monitoring.requests_api import COUNT_CAP
from monitoring.rollups import bucket_start
from tests.support.request_logs import request_logged, rolled_up

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.smoke,
    pytest.mark.usefixtures("only_this_tests_rows"),
]


STAFF_PATHS = (
    "stats/realtime",
    "stats/hourly/mock",
    "errors/mock",
    "error-rates",
    "providers/comparison",
    "latency/mock/test/echo",
    "latency-trends/mock",
    "cost-analysis",
    "token-efficiency",
    "token-efficiency/mock/test/echo",
    "anomalies",
    "chat-requests",
    "chat-requests/counts",
    "chat-requests/models",
    "chat-requests/providers",
    "chat-requests/plot-data",
)


@pytest.fixture
def customer():
    return user_create(email="mon-customer@example.com", password="long pass phrase!")


@pytest.fixture
def traffic(customer):
    other = user_create(email="mon-other@example.com")
    request_logged(model="test/echo", provider="mock", user=customer, cost="1", provider_cost="0.8")
    request_logged(model="test/echo", provider="mock", user=customer, latency_ms=3000)
    request_logged(
        model="test/echo",
        provider="mock",
        user=other,
        status=502,
        cost="0",
        provider_cost="0",
        error_type="upstream_error",
    )
    request_logged(model="test/claude", provider="mock-anthropic", user=other, cost="2")
    rolled_up(days=1)


@pytest.fixture
def staff() -> Client:
    user = user_create(email="mon-staff@example.com", password="long pass phrase!")
    user.role = "developer"
    user.save()
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.parametrize("path", STAFF_PATHS)
def test_staff_paths_answer_staff_and_refuse_customers(staff, customer, traffic, path):
    answer = staff.get(f"/api/monitoring/{path}")
    assert answer.status_code == 200, answer.content
    assert answer.json()["success"] is True
    client = Client()
    client.force_login(customer)
    assert client.get(f"/api/monitoring/{path}").status_code == 403
    assert Client().get(f"/api/monitoring/{path}").status_code in (401, 403)


def test_figures_equal_the_log(staff, traffic):
    comparison = staff.get("/api/monitoring/providers/comparison").json()["providers"]
    mock = next(p for p in comparison if p["provider"] == "mock")
    assert (mock["total_requests"], mock["failed_requests"], mock["success_rate"]) == (
        3,
        1,
        0.6667,
    )
    assert mock["avg_latency_ms"] == pytest.approx((100 + 3000 + 100) / 3, abs=0.01)
    rates = staff.get("/api/monitoring/error-rates").json()["models"]
    assert list(rates) == ["test/echo", "test/claude"]  # worst first
    assert rates["test/echo"]["errors_by_type"] == {"upstream_error": 1}
    cost = staff.get("/api/monitoring/cost-analysis").json()
    assert (cost["revenue"], cost["provider_cost"], cost["margin"]) == ("3.5", "1.6", "1.9")
    assert cost["providers"]["mock-anthropic"]["margin"] == "1.6"
    assert list(cost["providers"]) == ["mock-anthropic", "mock"]  # costliest first
    latency = staff.get("/api/monitoring/latency/mock/test/echo?percentiles=50,90").json()
    assert (latency["count"], latency["p50"], latency["p90"]) == (3, 250, 5000)
    hourly = staff.get("/api/monitoring/stats/hourly/mock").json()["data"]
    [hour] = hourly.values()
    assert (hour["total_requests"], hour["failed_requests"]) == (3, 1)
    realtime = staff.get("/api/monitoring/stats/realtime").json()
    assert realtime["windows"]["5m"]["requests"] == 4
    assert realtime["providers"]["mock"]["health_score"] == 66.67
    efficiency = staff.get("/api/monitoring/token-efficiency/mock/test/echo").json()
    assert (efficiency["avg_input_tokens"], efficiency["tokens_per_request"]) == (100, 110)


def test_errors_and_chat_requests(staff, customer, traffic):
    errors = staff.get("/api/monitoring/errors/mock").json()
    assert [(e["status"], e["error_type"]) for e in errors["data"]] == [(502, "upstream_error")]
    page = staff.get("/api/monitoring/chat-requests", {"limit": 2, "model": "test/echo"}).json()
    assert page["metadata"]["total_count"] == 3 and page["metadata"]["returned_count"] == 2
    assert (
        page["metadata"]["total_count_exact"] is True
    )  # counted exactly up to 1,000 past the page
    assert page["metadata"]["filters"]["model"] == "test/echo"
    failed = staff.get("/api/monitoring/chat-requests", {"status": "failed"}).json()
    assert [r["status"] for r in failed["data"]] == [502]
    theirs = staff.get("/api/monitoring/chat-requests", {"user_id": customer.pk}).json()
    assert theirs["metadata"]["total_count"] == 2
    counts = staff.get("/api/monitoring/chat-requests/counts").json()
    assert counts["metadata"]["total_requests"] == 4
    plot = staff.get("/api/monitoring/chat-requests/plot-data").json()
    assert sum(plot["plot_data"]["requests"]) == 4 and plot["metadata"]["recent_count"] == 4
    bad = staff.get("/api/monitoring/chat-requests", {"limit": "lots"})
    assert (bad.status_code, bad.json()["param"]) == (400, "limit")
    bad_percentile = staff.get("/api/monitoring/latency/mock/test/echo?percentiles=x")
    assert bad_percentile.status_code == 400
    nothing = staff.get("/api/monitoring/latency/mock/test/none")
    assert (nothing.status_code, nothing.json()["success"]) == (404, False)


def test_anomalies_against_the_same_hour_of_past_days(staff):
    hour = bucket_start(timezone.now(), "hour")
    for days in range(1, 6):  # five ordinary days: 1 in 25 failing at this hour
        at = hour - timedelta(days=days) + timedelta(minutes=1)
        for i in range(25):
            request_logged(model="test/echo", provider="mock", at=at, status=502 if i == 0 else 200)
    for i in range(25):  # today: 15 in 25
        request_logged(
            model="test/echo",
            provider="mock",
            at=hour + timedelta(seconds=1),
            status=502 if i < 15 else 200,
        )
    rolled_up(days=7)
    [anomaly] = staff.get("/api/monitoring/anomalies").json()["anomalies"]
    assert (anomaly["type"], anomaly["model"], anomaly["severity"]) == (
        "high_error_rate",
        "test/echo",
        "critical",
    )
    assert anomaly["expected"] == 0.04 and anomaly["value"] == 0.6
    anomalies_sync()
    [incident] = Incident.objects.filter(kind="error_anomaly", closed_at__isnull=True)
    assert (incident.provider, incident.model) == ("mock", "test/echo")


def test_customers_list_their_own_requests(customer, traffic):
    client = Client()
    client.force_login(customer)
    body = client.get("/user/requests").json()
    assert body["total"] == 2 and not body["has_more"]
    assert {r["served_model"] for r in body["data"]} == {"test/echo"}
    assert "provider_cost" not in body["data"][0] and "attempts" not in body["data"][0]
    slow = client.get("/user/requests", {"limit": 1}).json()
    assert slow["has_more"] is True
    none = client.get("/user/requests", {"status": "failed"}).json()
    assert none["total"] == 0  # the failure was someone else's
    exported = client.get("/user/requests", {"format": "csv"})
    assert exported["content-type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert len(rows) == 2 and {Decimal(r["cost"]) for r in rows} == {Decimal("1"), Decimal("0.5")}
    bad = client.get("/user/requests", {"from": "yesterday"})
    assert (bad.status_code, bad.json()["param"]) == (400, "from")
    bad_csv = client.get("/user/requests", {"from": "yesterday", "format": "csv"})
    assert (bad_csv.status_code, bad_csv.json()["param"]) == (400, "from")
    assert Client().get("/user/requests", {"format": "csv"}).status_code in (401, 403)
    assert client.get("/user/requests", {"format": "xml"}).json()["param"] == "format"


def test_a_key_needs_the_usage_scope(customer, traffic):
    _, raw = api_key_create(user=customer, name="inference only", scopes=["inference"])
    answer = Client().get("/user/requests", headers={"authorization": f"Bearer {raw}"})
    assert answer.status_code == 403


def test_a_heavy_customers_count_stops_past_the_page(customer):
    """Counted up to 1,000 past the page, and said to be a floor past that: an exact count
    of a heavy customer's whole log would be paid on every page turn."""
    logged = timezone.now() - timedelta(minutes=5)
    RequestLog.objects.bulk_create(
        RequestLog(
            request_id=f"heavy-{i}",
            user=customer,
            endpoint="chat.completions",
            served_model="test/echo",
            provider="mock",
            status=200,
            total_latency_ms=100,
            created_at=logged,
        )
        for i in range(COUNT_CAP + 5)
    )
    client = Client()
    client.force_login(customer)
    first = client.get("/user/requests", {"limit": 2}).json()
    assert (first["total"], first["total_exact"], first["has_more"]) == (COUNT_CAP, False, True)
    last = client.get("/user/requests", {"limit": 10, "offset": COUNT_CAP}).json()
    assert (last["total"], last["total_exact"]) == (COUNT_CAP + 5, True)
    assert len(last["data"]) == 5 and last["has_more"] is False
