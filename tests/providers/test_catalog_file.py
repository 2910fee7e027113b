"""Catalog files: the bundled one loads, an operator's own provider joins, money stays exact."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from providers.catalog import catalog_build
from providers.catalog_file import BUNDLED_CATALOG, CatalogFileError, catalog_file_load
from providers.models import CatalogState, Offering, Provider

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

OPERATOR_FILE = """
version = "local-1"

[[providers]]
slug = "local-vllm"
base_url = "http://127.0.0.1:8010/v1/"
credential_env = ""

[[models]]
id = "local/qwen2.5-7b"
context_length = 32768
offerings = [{ provider = "local-vllm", upstream_id = "Qwen/Qwen2.5-7B-Instruct", input = "0", output = "0.01" }]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    return path


def test_it_loads_the_bundled_catalog_idempotently():
    slugs = [p["slug"] for p in tomllib.loads(BUNDLED_CATALOG.read_text())["providers"]]
    bundled = Offering.objects.filter(provider__slug__in=slugs)
    first = catalog_file_load(path=BUNDLED_CATALOG)
    count = bundled.count()
    catalog_file_load(path=BUNDLED_CATALOG)

    assert {"openai", "openrouter", "together", "groq"} <= set(
        Provider.objects.values_list("slug", flat=True)
    )
    assert bundled.count() == count and first.offerings == count
    gpt = Offering.objects.get(provider__slug="openai", model__canonical_id="openai/gpt-4o")
    assert (gpt.input_price, gpt.output_price) == (Decimal("2.50"), Decimal("10.00"))
    assert CatalogState.objects.get().loaded_file_version == first.version


def test_it_serves_an_operators_own_provider_without_a_credential(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    catalog_file_load(path=BUNDLED_CATALOG)
    catalog_file_load(path=_write(tmp_path, OPERATOR_FILE))

    catalog = catalog_build()

    model = catalog.resolve("local/qwen2.5-7b")
    assert model is not None
    assert model.deployments[0].base_url == "http://127.0.0.1:8010/v1"
    assert catalog.resolve("openai/gpt-4o") is None  # no OPENAI_API_KEY here


def test_it_switches_a_provider_on_with_its_key(monkeypatch):
    catalog_file_load(path=BUNDLED_CATALOG)
    monkeypatch.setenv("GROQ_API_KEY", "gsk-test")

    model = catalog_build().resolve("llama-3.3-70b")

    assert model is not None and model.id == "meta-llama/llama-3.3-70b-instruct"
    assert [d.provider for d in model.deployments] == ["groq"]
    assert model.deployments[0].api_key == "gsk-test"


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("input = 0.1", "write prices as strings"),
        ('input = "0.0000001"', "at most 6 decimal places"),
        ('input = "-1"', "≥ 0"),
        ('input = "cheap"', "not a price"),
    ],
)
def test_it_refuses_inexact_prices(tmp_path, bad, message):
    text = OPERATOR_FILE.replace('input = "0"', bad)
    with pytest.raises(CatalogFileError, match=message):
        catalog_file_load(path=_write(tmp_path, text))
    assert not Provider.objects.filter(slug="local-vllm").exists()  # nothing half-loaded


def test_it_refuses_an_unknown_provider(tmp_path):
    text = OPERATOR_FILE.replace('provider = "local-vllm"', 'provider = "nobody"')
    with pytest.raises(CatalogFileError, match="unknown provider 'nobody'"):
        catalog_file_load(path=_write(tmp_path, text))


CACHING_FILE = """
version = "local-2"

[[providers]]
slug = "local-router"
base_url = "http://127.0.0.1:8011/v1"
credential_env = ""
cache_control = true

[[models]]
id = "local/claude"
offerings = [{ provider = "local-router", upstream_id = "c", input = "3", output = "15", cache_write = "3.75", cache_write_1h = "6" }]

[[models]]
id = "local/llama"
offerings = [{ provider = "local-router", upstream_id = "l", input = "1", output = "2", cache_control = false }]
"""


def test_a_provider_declares_cache_control_and_an_offering_may_say_otherwise(tmp_path):
    catalog_file_load(path=_write(tmp_path, CACHING_FILE))

    catalog = catalog_build()

    claude, llama = (catalog.models[m].deployments[0] for m in ("local/claude", "local/llama"))
    assert (claude.cache_control, llama.cache_control) == (True, False)
    assert (claude.cache_write_price, claude.cache_write_1h_price) == (Decimal("3.75"), Decimal(6))
    # Unset, cache writes cost a plain input token, whatever their TTL.
    assert (llama.cache_write_price, llama.cache_write_1h_price) == (Decimal(1), Decimal(1))


def test_it_refuses_a_cache_control_that_is_not_a_boolean(tmp_path):
    text = CACHING_FILE.replace("cache_control = true", 'cache_control = "yes"')
    with pytest.raises(CatalogFileError, match="cache_control: must be true or false"):
        catalog_file_load(path=_write(tmp_path, text))
