"""Upstream calls stay off our own network: base URLs that are private, loopback or
link-local addresses are refused when saved and switched off when loaded, and names are
resolved through a guard that drops such addresses (DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest
from django.core.exceptions import ValidationError
from django.test import override_settings

from providers.catalog import catalog_build
from providers.models import Model, Offering, Provider
from providers.ssrf import GuardedResolver, address_allowed, base_url_problem

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(
    ("address", "public", "loopback", "private"),
    [
        ("8.8.8.8", True, True, True),
        ("2606:4700::1111", True, True, True),
        ("127.0.0.1", False, True, True),
        ("::1", False, True, True),
        ("::ffff:127.0.0.1", False, True, True),  # IPv4 in IPv6 clothing
        ("10.1.2.3", False, False, True),
        ("192.168.1.1", False, False, True),
        ("fd00::1", False, False, True),
        ("169.254.169.254", False, False, False),  # the cloud metadata service
        ("fe80::1", False, False, False),
        ("0.0.0.0", False, False, False),
    ],
)
def test_which_addresses_each_setting_allows(address, public, loopback, private):
    ip = ipaddress.ip_address(address)
    assert [address_allowed(ip, n) for n in ("public", "loopback", "private")] == [
        public,
        loopback,
        private,
    ]


@override_settings(GATEWAYZ_UPSTREAM_NETWORKS="public")
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://localhost:8000/v1",
        "http://[::1]/v1",
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.5/v1",
        "ftp://api.example.com",
        "not a url",
    ],
)
def test_base_urls_into_our_network_are_refused_by_default(url, db):
    assert base_url_problem(url) is not None
    provider = Provider(slug="evil", name="Evil", base_url=url)
    with pytest.raises(ValidationError) as caught:
        provider.full_clean()
    assert "base_url" in caught.value.message_dict


@override_settings(GATEWAYZ_UPSTREAM_NETWORKS="public")
def test_public_base_urls_and_names_pass_the_save_check():
    assert base_url_problem("https://api.openai.com/v1") is None
    assert base_url_problem("https://{ACCOUNT}.example.com/v1") is None


@override_settings(GATEWAYZ_UPSTREAM_NETWORKS="public")
def test_a_name_that_resolves_into_our_network_cannot_be_connected_to():
    async def resolve() -> None:
        resolver = GuardedResolver()
        try:
            await resolver.resolve("localhost", 80)
        finally:
            await resolver.close()

    with pytest.raises(OSError, match="may not reach"):
        asyncio.run(resolve())


@override_settings(GATEWAYZ_UPSTREAM_NETWORKS="loopback")
def test_a_provider_pointed_at_the_metadata_service_is_switched_off_in_the_catalog(db):
    evil = Provider.objects.create(slug="metadata", name="M", base_url="http://169.254.169.254")
    model = Model.objects.create(canonical_id="ssrf/model")
    Offering.objects.create(provider=evil, model=model, upstream_model_id="x")

    assert catalog_build().resolve("ssrf/model") is None
