"""Provider quirks and routing fixes, declared in the bundled catalog, each shown on the
request the provider would receive."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from core.errors import GatewayError
from providers.catalog import Catalog, Deployment, catalog_build
from providers.catalog_file import BUNDLED_CATALOG, catalog_file_load
from providers.protocols.common import auth_headers, quirks_apply
from providers.protocols.openai import chat_request

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

PROVIDER_KEYS = (
    "CEREBRAS_API_KEY",
    "OPENROUTER_API_KEY",
    "XAI_API_KEY",
    "GROQ_API_KEY",
    "DEEPINFRA_API_KEY",
    "CLOUDFLARE_API_TOKEN",
    "ANTHROPIC_API_KEY",
)


@pytest.fixture
def catalog(monkeypatch: pytest.MonkeyPatch) -> Catalog:
    for name in PROVIDER_KEYS:
        monkeypatch.setenv(name, f"sk-{name.lower()}")
    catalog_file_load(path=BUNDLED_CATALOG)
    return catalog_build()


def _deployment(catalog: Catalog, model: str, provider: str) -> Deployment:
    resolved = catalog.resolve(model)
    assert resolved is not None, model
    return next(d for d in resolved.deployments if d.provider == provider)


def _sent(body: dict, deployment: Deployment) -> dict:
    return orjson.loads(chat_request(body, deployment, 1000)[2])


def _chat(**extra: object) -> dict:
    return {"model": "x", "messages": [{"role": "user", "content": "hi"}], **extra}


def test_cerebras_qwen3_gets_reasoning_disabled_unless_the_caller_chose(catalog):
    cerebras = _deployment(catalog, "qwen/qwen-3-32b", "cerebras")

    assert _sent(_chat(), cerebras)["disable_reasoning"] is True
    assert "disable_reasoning" not in _sent(_chat(reasoning_effort="high"), cerebras)
    assert _sent(_chat(disable_reasoning=False), cerebras)["disable_reasoning"] is False
    groq = _deployment(catalog, "qwen/qwen-3-32b", "groq")
    assert "disable_reasoning" not in _sent(_chat(), groq)  # only Cerebras wants it


def test_deepseek_chat_resolves_to_the_versioned_model_on_openrouter(catalog):
    for name in ("deepseek-chat", "deepseek/deepseek-chat"):
        model = catalog.resolve(name)
        assert model is not None and model.id == "deepseek/deepseek-chat-v3-0324"
        openrouter = _deployment(catalog, name, "openrouter")
        assert _sent(_chat(), openrouter)["model"] == "deepseek/deepseek-chat-v3-0324"


def test_any_mistralai_model_routes_to_openrouter_unchanged(catalog):
    model = catalog.resolve("mistralai/some-future-model")

    assert model is not None and [d.provider for d in model.deployments] == ["openrouter"]
    assert _sent(_chat(), model.deployments[0])["model"] == "mistralai/some-future-model"
    assert model.deployments[0].output_price > Decimal(0)  # held and billed at the route's price
    assert catalog.resolve("mistralai/") is None


@pytest.mark.parametrize(
    "name",
    ["grok-2", "grok-2-1212", "x-ai/grok-2", "x-ai/grok-2-1212", "xai/grok-2", "xai/grok-2-1212"],
)
def test_deprecated_grok_2_names_alias_to_grok_3(catalog, name):
    model = catalog.resolve(name)
    assert model is not None and model.id == "x-ai/grok-3"
    assert _sent(_chat(), _deployment(catalog, name, "xai"))["model"] == "grok-3"


def test_cerebras_refuses_parameters_it_cannot_honour_with_a_400(catalog):
    cerebras = _deployment(catalog, "qwen/qwen-3-32b", "cerebras")

    with pytest.raises(GatewayError) as refused:
        _sent(_chat(logit_bias={"1": 5}), cerebras)

    assert refused.value.status == 400 and refused.value.param == "logit_bias"
    assert "cerebras" in refused.value.message


def test_a_base_url_placeholder_comes_from_the_environment(monkeypatch, catalog):
    def cloudflare(c: Catalog) -> list[Deployment]:
        return [
            d
            for m in c.models.values()
            for d in m.deployments
            if d.provider == "cloudflare-workers-ai"
        ]

    assert cloudflare(catalog) == []  # no account id: switched off, not a broken URL
    monkeypatch.setenv("CLOUDFLARE_ACCOUNT_ID", "acc123")
    served = cloudflare(catalog_build())
    assert served and served[0].base_url.endswith("/accounts/acc123/ai/v1")


BASE = Deployment(
    "p", "openai", "https://p.example/v1", "k", 1, 1, "m", Decimal(1), Decimal(1), Decimal(1)
)


def test_dropped_renamed_and_defaulted_parameters():
    from dataclasses import replace

    quirky = replace(
        BASE,
        drop_params=frozenset({"store"}),
        rename_params=(("max_tokens", "max_completion_tokens"),),
        default_params=(("safe_prompt", True),),
    )

    out = quirks_apply(_chat(store=True, max_tokens=5), quirky)

    assert "store" not in out and out["max_completion_tokens"] == 5 and "max_tokens" not in out
    assert out["safe_prompt"] is True
    plain = _chat()
    assert quirks_apply(plain, BASE) is plain  # no quirks: the body as it came, not a copy


@pytest.mark.parametrize(
    ("auth", "header", "value"),
    [
        ("bearer", "authorization", "Bearer k"),
        ("x-api-key", "x-api-key", "k"),
        ("x-goog-api-key", "x-goog-api-key", "k"),
        ("key", "authorization", "Key k"),
    ],
)
def test_each_auth_style_sends_the_credential_its_way(auth, header, value):
    from dataclasses import replace

    headers = auth_headers(replace(BASE, auth=auth, extra_headers=(("X-Title", "Gatewayz"),)))

    assert headers[header] == value and headers["X-Title"] == "Gatewayz"


def test_openai_itself_gets_max_completion_tokens(catalog, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai")
    openai_gpt = _deployment(catalog_build(), "openai/gpt-4o", "openai")

    sent = _sent(_chat(max_tokens=50), openai_gpt)
    defaulted = _sent(_chat(), openai_gpt)

    assert sent["max_completion_tokens"] == 50 and "max_tokens" not in sent
    # No limit set, none added: the provider's own default stands.
    assert "max_completion_tokens" not in defaulted and "max_tokens" not in defaulted
