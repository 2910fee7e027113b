"""Routing: each model's strategy, the caller's `provider` preferences, `:nitro`/`:floor`/
`:free` variants, provider-native model ids, and `models` fallbacks billed at the model that
served. Strategies are shown over many choices (`deployments_for`, in process), then end to
end through the openai SDK.

test/multi: mock-a (1.00/2.00, first by priority), mock-b (0.50/1.00), mock-c (3.00/6.00,
drops logit_bias).
"""

from __future__ import annotations

import json
from collections import Counter
from decimal import Decimal

import openai
import pytest

from core.errors import GatewayError
from gateway.guards.deployment_stats import _stats, stats_of
from gateway.pipeline.routing import (
    NO_PREFERENCES,
    Preferences,
    deployments_for,
    preferences_parse,
    variant_preferences,
)
from providers.catalog import CatalogModel, Deployment
from tests.support.waits import settled

pytestmark = pytest.mark.smoke


def _deployment(provider: str, price: str = "1", weight: int = 1) -> Deployment:
    return Deployment(
        provider=provider,
        protocol="openai",
        base_url="http://x",
        api_key="",
        connect_timeout=1,
        read_timeout=1,
        upstream_model_id=provider,
        input_price=Decimal(price),
        output_price=Decimal(price),
        cached_input_price=Decimal(price),
        weight=weight,
    )


def _model(strategy: str, *deployments: Deployment) -> CatalogModel:
    return CatalogModel("m", "m", 0, None, (), 0, deployments, strategy=strategy)


def _firsts(model: CatalogModel, prefs: Preferences = NO_PREFERENCES, n: int = 4000) -> Counter:
    return Counter(deployments_for(model, prefs, {})[0].provider for _ in range(n))


def test_weighted_routing_follows_the_weights():
    model = _model(
        "weighted",
        _deployment("a", weight=3),
        _deployment("b", weight=1),
        _deployment("off", weight=0),
    )
    firsts = _firsts(model)
    # 3:1 within ±3.5 standard deviations of 4000 draws; weight 0 is never first.
    assert abs(firsts["a"] / 4000 - 0.75) < 0.024
    assert firsts["off"] == 0
    # Every deployment stays in the list, for failover.
    assert sorted(d.provider for d in deployments_for(model, NO_PREFERENCES, {})) == [
        "a",
        "b",
        "off",
    ]


def test_cost_latency_and_least_busy_strategies_choose_by_their_measure():
    cheap, dear = _deployment("cheap", "0.5"), _deployment("dear", "3")
    assert _firsts(_model("cost", dear, cheap), n=1) == {"cheap": 1}

    _stats.clear()
    stats_of("slow", "m").latency_add(900.0)
    stats_of("quick", "m").latency_add(40.0)
    latency = _model("latency", _deployment("slow"), _deployment("quick"))
    assert _firsts(latency, n=1) == {"quick": 1}
    stats_of("quick", "m").latency_add(5000.0)  # it slows down: the EWMA follows
    stats_of("quick", "m").latency_add(5000.0)
    assert _firsts(latency, n=1) == {"slow": 1}

    stats_of("busy", "m").in_flight = 5
    stats_of("idle", "m").in_flight = 1
    assert _firsts(_model("least_busy", _deployment("busy"), _deployment("idle")), n=1) == {
        "idle": 1
    }
    _stats.clear()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("fast", "'provider' must be an object."),
        ({"order": "mock-a"}, "'provider.order' must be an array of provider slugs."),
        ({"sort": "speed"}, "'provider.sort' must be one of price, latency, throughput."),
        ({"allow_fallbacks": "no"}, "'provider.allow_fallbacks' must be a boolean."),
        ({"max_price": {"prompt": -1}}, "'provider.max_price.prompt' must be a number of at"),
        ({"max_price": {"request": 1}}, "'provider.max_price' must be an object with prompt"),
        ({"data_collection": "deny"}, "'provider.data_collection' is not supported"),
    ],
)
def test_bad_preferences_are_refused_by_name(raw, message):
    with pytest.raises(GatewayError) as caught:
        preferences_parse(raw)
    assert caught.value.status == 400 and caught.value.message.startswith(message)


def _client(gateway: str, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=20)


def _served(gateway: str, key: str, model: str = "test/multi", text: str = "hi", **extra):
    raw = _client(gateway, key).chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": text}], **extra
    )
    return raw.headers["x-gatewayz-provider"], raw


@pytest.mark.parametrize(
    ("provider", "served"),
    [
        ({"order": ["mock-c", "mock-a"]}, "mock-c"),
        ({"only": ["mock-b"]}, "mock-b"),
        ({"ignore": ["mock-a"]}, "mock-b"),
        ({"sort": "price"}, "mock-b"),
        ({"max_price": {"prompt": 0.9}}, "mock-b"),
        ({"max_price": {"prompt": "2", "completion": "2"}}, "mock-a"),
    ],
)
def test_provider_preferences_choose_the_deployment(gateway, make_account, provider, served):
    account = make_account()
    assert _served(gateway, account.key, extra_body={"provider": provider})[0] == served


def test_the_preferences_are_not_forwarded_to_the_provider(gateway, make_account):
    account = make_account()
    _, raw = _served(
        gateway,
        account.key,
        text='!mock {"echo_request": true}',
        extra_body={"provider": {"only": ["mock-b"]}, "models": ["test/echo"]},
    )
    forwarded = json.loads(raw.parse().choices[0].message.content)["body"]
    assert "provider" not in forwarded and "models" not in forwarded
    assert forwarded["model"] == "echo-b"


def test_without_fallbacks_only_the_first_choice_is_tried(gateway, make_account):
    account = make_account()
    fault = '!mock {"status": 503, "only_model": "echo-c"}'
    with pytest.raises(openai.APIStatusError) as caught:
        _served(
            gateway,
            account.key,
            text=fault,
            extra_body={"provider": {"order": ["mock-c"], "allow_fallbacks": False}},
        )
    log = settled(caught.value.response.headers["x-request-id"])
    assert {a["provider"] for a in log.attempts} == {"mock-c"}


def test_require_parameters_skips_a_provider_that_would_drop_one(gateway, make_account):
    account = make_account()
    prefs = {"order": ["mock-c", "mock-b"], "require_parameters": True}
    served, _ = _served(
        gateway, account.key, logit_bias={"50256": -100}, extra_body={"provider": prefs}
    )
    assert served == "mock-b"  # mock-c drops logit_bias
    prefs["require_parameters"] = False
    assert _served(gateway, account.key, extra_body={"provider": prefs})[0] == "mock-c"


def test_no_fitting_provider_is_a_clear_404(gateway, make_account):
    account = make_account()
    with pytest.raises(openai.NotFoundError) as caught:
        _served(gateway, account.key, extra_body={"provider": {"only": ["nobody"]}})
    assert caught.value.body["code"] == "no_provider_fits"


def test_model_strategies_route_end_to_end(gateway, make_account):
    account = make_account()
    assert _served(gateway, account.key, "test/cheapest")[0] == "mock-b"
    weighted = Counter(_served(gateway, account.key, "test/weighted")[0] for _ in range(40))
    assert weighted["mock-a"] > weighted["mock-b"] > 0  # 3:1; both, with ~1e-5 odds not


def test_the_latency_strategy_learns_from_traffic(gateway, make_account):
    account = make_account()
    slow_a = '!mock {"delay": 0.3, "only_model": "echo-a"}'
    for _ in range(4):  # both get measured, mock-a as slow
        _served(gateway, account.key, "test/fastest", text=slow_a)
    assert _served(gateway, account.key, "test/fastest")[0] == "mock-b"


@pytest.mark.parametrize(
    ("model", "served"),
    [
        ("test/multi:floor", "mock-b"),  # cheapest
        ("test/freeable:free", "mock-b"),  # the zero-priced deployment only
        ("mock-b/free-b", "mock-b"),  # <provider>/<its id>: that provider only
        ("single-a", "mock-a"),  # a provider's own id for a model
    ],
)
def test_variants_and_native_ids_pick_deployments(gateway, make_account, model, served):
    account = make_account()
    provider, raw = _served(gateway, account.key, model)
    assert provider == served
    assert raw.headers["x-gatewayz-model"] in ("test/multi", "test/freeable", "test/single")


def test_nitro_sorts_by_measured_throughput():
    prefs = variant_preferences(NO_PREFERENCES, "nitro")
    assert prefs.sort == "throughput"
    _stats.clear()
    stats_of("steady", "m").throughput_add(100, 1.0)
    stats_of("rapid", "m").throughput_add(900, 1.0)
    model = _model("priority", _deployment("steady"), _deployment("rapid"))
    assert [d.provider for d in deployments_for(model, prefs, {})] == ["rapid", "steady"]
    _stats.clear()


def test_fallback_models_serve_and_bill_at_the_model_that_served(gateway, make_account):
    account = make_account()
    provider, raw = _served(gateway, account.key, "test/dead", extra_body={"models": ["test/echo"]})
    usage = raw.parse().usage
    assert (provider, raw.headers["x-gatewayz-model"]) == ("mock", "test/echo")
    log = settled(raw.headers["x-request-id"])
    assert (log.requested_model, log.served_model) == ("test/dead", "test/echo")
    assert [(a["model"], a["provider"]) for a in log.attempts] == [
        ("test/dead", "dead"),
        ("test/echo", "mock"),
    ]
    # test/echo's prices (1.00 / 2.00 per 1M), not test/dead's.
    assert log.cost == (Decimal(usage.prompt_tokens) + 2 * usage.completion_tokens) / 10**6


def test_bad_fallback_models_are_refused(gateway, make_account):
    account = make_account()
    for models, code in (("test/echo", None), (["nope/nothing"], "model_not_found")):
        with pytest.raises(openai.APIStatusError) as caught:
            _served(gateway, account.key, extra_body={"models": models})
        assert caught.value.status_code in (400, 404)
        if code:
            assert caught.value.body["code"] == code
