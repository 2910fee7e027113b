"""Public discovery (monitoring.discovery): what is used, fast and cheap, from the rollups and
the served catalog; parameters refused by name; only models the catalog serves."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from accounts.services import user_create
from core.errors import GatewayError
from monitoring import discovery
from monitoring.params import ParamRefused
from tests.support.request_logs import request_logged, rolled_up

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.smoke,
    pytest.mark.usefixtures("only_this_tests_rows"),
]


@pytest.fixture
def traffic(catalog):
    """test/echo: 3 requests by 1 user, fast; test/claude: 2 by 2 users, many tokens, slow;
    a removed model with more traffic than either (kept in rollups, never listed)."""
    alice = user_create(email="disc-alice@example.com")
    bob = user_create(email="disc-bob@example.com")
    for _ in range(3):
        request_logged(model="test/echo", provider="mock", user=alice, latency_ms=40)
    for user in (alice, bob):
        request_logged(
            model="test/claude",
            provider="mock-anthropic",
            user=user,
            latency_ms=900,
            prompt_tokens=5000,
        )
    request_logged(model="test/echo", provider="mock", user=bob, status=502, latency_ms=30, at=None)
    for _ in range(9):
        request_logged(model="gone/model", provider="mock", user=alice)
    request_logged(
        model="test/echo",
        provider="mock",
        user=alice,
        at=timezone.now() - timedelta(days=2),
    )
    rolled_up()


def test_trending_by_requests_tokens_and_users(catalog, traffic):
    body = discovery.models_trending({}, catalog)
    assert [(m["model"], m["requests"]) for m in body["data"]] == [
        ("test/echo", 4),
        ("test/claude", 2),
    ]
    echo = body["data"][0]
    assert (echo["rank"], echo["unique_users"], echo["error_rate"]) == (1, 2, 0.25)
    assert echo["name"] and echo["pricing"]["input"] and echo["providers"] == ["mock"]
    assert body["pagination"] == {"limit": 10, "offset": 0, "total": 2, "has_more": False}
    by_tokens = discovery.models_trending({"sort_by": "tokens"}, catalog)["data"]
    assert by_tokens[0]["model"] == "test/claude"
    by_users = discovery.models_trending({"sort_by": "users", "limit": "1"}, catalog)
    assert [m["model"] for m in by_users["data"]] == ["test/claude"]  # 2 users, tie by name
    assert by_users["pagination"]["has_more"] is True
    week = discovery.models_trending({"time_range": "7d"}, catalog)["data"]
    assert week[0]["requests"] == 5  # the request two days ago counts in a week


def test_trending_refuses_unknown_parameters(catalog):
    with pytest.raises(ParamRefused) as refused:
        discovery.models_trending({"sort_by": "price"}, catalog)
    assert refused.value.param == "sort_by"
    with pytest.raises(ParamRefused):
        discovery.models_trending({"time_range": "2y"}, catalog)
    with pytest.raises(ParamRefused):
        discovery.models_trending({"limit": "0"}, catalog)


def test_low_latency_ranks_answers_by_median(catalog, traffic):
    body = discovery.models_low_latency({"min_requests": "2"}, catalog)
    assert body["models"] == ["test/echo", "test/claude"]
    assert body["data"][0]["latency_p50_ms"] == 50  # the bucket bound under which half fell
    assert discovery.models_low_latency({"min_requests": "3"}, catalog)["models"] == ["test/echo"]


def test_search_filters_sorts_and_pages(catalog, traffic):
    everything = discovery.models_search({"limit": "100"}, catalog)
    assert everything["meta"]["total"] == len(catalog.models)
    names = [m["name"].lower() for m in everything["data"]]
    assert names == sorted(names)
    claude = discovery.models_search({"q": "CLAUDE"}, catalog)["data"]
    assert claude and all("claude" in m["id"] for m in claude)
    cheap = discovery.models_search({"max_price": "1.5"}, catalog)["data"]
    assert cheap and all(Decimal(m["pricing"]["input"]) <= Decimal("1.5") for m in cheap)
    dearest = discovery.models_search({"sort_by": "price", "order": "desc"}, catalog)["data"]
    prices = [Decimal(m["pricing"]["input"]) for m in dearest]
    assert prices == sorted(prices, reverse=True)
    popular = discovery.models_search({"sort_by": "popularity", "limit": "2"}, catalog)
    assert [m["id"] for m in popular["data"]] == ["test/echo", "test/claude"]
    assert popular["meta"]["returned"] == 2 and popular["meta"]["limit"] == 2
    paged = discovery.models_search({"limit": "2", "offset": "2"}, catalog)["data"]
    assert [m["id"] for m in paged] == [m["id"] for m in everything["data"][2:4]]
    embeddings = discovery.models_search({"modality": "embedding"}, catalog)["data"]
    assert all("embedding" in m["modalities"] for m in embeddings)
    with pytest.raises(ParamRefused) as refused:
        discovery.models_search({"min_price": "cheap"}, catalog)
    assert refused.value.param == "min_price"


def test_providers_their_stats_and_top_models(catalog, traffic):
    listed = discovery.providers_list({}, catalog)
    by_slug = {p["slug"]: p for p in listed["data"]}
    assert by_slug["mock"]["requests_24h"] == 13  # its traffic, the removed model's too
    assert by_slug["mock"]["status"] == "unknown"  # never checked
    stats = discovery.provider_stats({}, catalog, "mock-anthropic")["data"]
    assert (stats["total_requests"], stats["unique_users"], stats["top_model"]) == (
        2,
        2,
        "test/claude",
    )
    assert stats["total_cost"] == "1" and stats["avg_cost_per_request"] == "0.5"
    top = discovery.provider_top_models({}, catalog, "mock")
    assert [(m["model"], m["requests"]) for m in top["data"]] == [
        ("gone/model", 9),
        ("test/echo", 4),
    ]
    with pytest.raises(GatewayError) as missing:
        discovery.provider_stats({}, catalog, "nobody")
    assert (missing.value.status, missing.value.code) == (404, "provider_not_found")


def test_gateways_summary_totals(catalog, traffic):
    data = discovery.gateways_summary({}, catalog)["data"]
    assert data["totals"]["requests"] == 15
    assert data["totals"]["unique_users"] == 2
    assert data["totals"]["models"] == 3  # served in the window, the removed one included
    assert data["totals"]["models_served"] == len(catalog.models)
    assert data["gateways"]["mock"]["unique_models"] == 2
    assert data["gateways"]["mock-anthropic"]["total_tokens"] == 2 * 5010
