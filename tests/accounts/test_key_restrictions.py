"""Key restrictions: IP allowlists (X-Forwarded-For believed only from trusted proxies),
referrer domains, model patterns and scopes; on the inference routes (through the official
SDKs) and on the management API. A violation is a 403 naming the rule."""

from __future__ import annotations

import ipaddress
import time
from decimal import Decimal

import anthropic
import openai
import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from accounts.models import ApiKey
from accounts.restrictions import client_address, ips_clean, referrers_clean, scopes_clean
from billing.models import CreditAccount

pytestmark = pytest.mark.smoke

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"),)


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a trusted proxy: header ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1", "198.51.100.1"),  # the client's own claim: left
        ("10.0.0.2", "198.51.100.1, 10.0.0.3", "198.51.100.1"),  # two proxies of ours
        ("10.0.0.2", "not-an-ip, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, junk", "10.0.0.2"),  # garbage from our own proxy: stop
        ("10.0.0.2", None, "10.0.0.2"),
        ("::1", "2001:db8::1", "::1"),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(peer, forwarded, client):
    assert str(client_address(peer, forwarded, TRUSTED)) == client


def test_restrictions_are_checked_and_normalised_when_set():
    assert ips_clean(["10.1.2.3/8", "2001:db8::1", "192.0.2.1"]) == [
        "10.0.0.0/8",
        "2001:db8::1/128",
        "192.0.2.1/32",
    ]
    assert referrers_clean(["Example.COM", ".app.example.org"]) == [
        "example.com",
        "app.example.org",
    ]
    assert scopes_clean(["keys:manage", "inference", "inference"]) == ["inference", "keys:manage"]
    for clean, bad in (
        (ips_clean, ["10.0.0.300"]),
        (ips_clean, "10.0.0.1"),
        (referrers_clean, ["https://example.com/path"]),
        (scopes_clean, ["admin"]),
    ):
        with pytest.raises(ValidationError):
            clean(bad)


def _restricted(make_account, **fields):
    account = make_account()
    # Set before the key's first use, so no gateway process has cached it yet.
    ApiKey.objects.filter(pk=account.key_id).update(**fields)
    return account


def _chat(gateway: str, key: str, model: str = "test/echo", headers: dict | None = None):
    client = openai.OpenAI(
        base_url=f"{gateway}/v1", api_key=key, max_retries=0, default_headers=headers or {}
    )
    return client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}])


def _refused(call) -> openai.PermissionDeniedError:
    with pytest.raises(openai.PermissionDeniedError) as caught:
        call()
    return caught.value


def test_an_ip_allowlist_admits_only_its_addresses(gateway, make_account):
    local = _restricted(make_account, allowed_ips=["127.0.0.0/8", "::1/128"])
    elsewhere = _restricted(make_account, allowed_ips=["203.0.113.0/24"])

    assert _chat(gateway, local.key).choices[0].message.content == "You said: hi"
    refused = _refused(lambda: _chat(gateway, elsewhere.key))
    assert refused.body["code"] == "ip_not_allowed"
    assert "127.0.0.1" in refused.body["message"]
    # Claiming an allowed address in X-Forwarded-For changes nothing: no proxy is trusted.
    spoofed = _refused(
        lambda: _chat(
            gateway,
            elsewhere.key,
            headers={
                "x-forwarded-for": "203.0.113.7",
                "x-real-ip": "203.0.113.7",
                "forwarded": "for=203.0.113.7",
            },
        )
    )
    assert spoofed.body["code"] == "ip_not_allowed"
    row = CreditAccount.objects.get(user=elsewhere.user)
    assert (row.balance, row.held) == (Decimal(10), 0)


def test_behind_a_trusted_proxy_the_forwarded_address_is_the_clients(own_gateway, make_account):
    gateway = own_gateway(GATEWAYZ_TRUSTED_PROXIES="127.0.0.1/32,::1/128")
    account = _restricted(make_account, allowed_ips=["203.0.113.0/24"])

    via_proxy = {"x-forwarded-for": "203.0.113.7"}
    assert _chat(gateway, account.key, headers=via_proxy).choices
    # The client put an allowed address first; our proxy appended the real one.
    forged = {"x-forwarded-for": "203.0.113.7, 198.51.100.1"}
    assert _refused(lambda: _chat(gateway, account.key, headers=forged)).body["code"] == (
        "ip_not_allowed"
    )


def test_a_referrer_rule_admits_the_domain_and_its_subdomains_only(gateway, make_account):
    account = _restricted(make_account, allowed_referrers=["example.com"])

    for page in ("https://example.com/", "https://app.example.com/chat"):
        assert _chat(gateway, account.key, headers={"referer": page}).choices
    assert _chat(gateway, account.key, headers={"origin": "https://example.com"}).choices
    for headers in (
        {"referer": "https://evil-example.com/"},
        {"referer": "https://example.com.evil.io/"},
        {},
    ):
        assert (
            _refused(lambda h=headers: _chat(gateway, account.key, headers=h)).body["code"]
            == "referrer_not_allowed"
        )


def test_model_patterns_admit_matching_models_by_name_or_canonical_id(gateway, make_account):
    account = _restricted(make_account, allowed_models=["test/echo", "test/claude*"])

    assert _chat(gateway, account.key, "test/echo").choices
    assert _chat(gateway, account.key, "echo-alias").choices  # an alias of test/echo
    refused = _refused(lambda: _chat(gateway, account.key, "test/multi"))
    assert (refused.body["code"], refused.body["message"]) == (
        "model_not_allowed",
        "This API key may not use the model 'test/multi'.",
    )
    # A fallback model is held to the same rule.
    assert (
        _refused(
            lambda: openai.OpenAI(
                base_url=f"{gateway}/v1", api_key=account.key, max_retries=0
            ).chat.completions.create(
                model="test/echo",
                messages=[{"role": "user", "content": "x"}],
                extra_body={"models": ["test/multi"]},
            )
        ).body["code"]
        == "model_not_allowed"
    )
    # On the Anthropic route, in Anthropic's shape.
    client = anthropic.Anthropic(base_url=gateway, api_key=account.key, max_retries=0)
    with pytest.raises(anthropic.PermissionDeniedError) as caught:
        client.messages.create(
            model="test/multi", max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert caught.value.body["error"]["type"] == "permission_error"
    assert client.messages.count_tokens(
        model="test/claude", messages=[{"role": "user", "content": "hi"}]
    ).input_tokens


def test_scopes_gate_inference_and_the_management_api(gateway, make_account):
    reader = _restricted(make_account, scopes=["usage:read"])
    caller = _restricted(make_account, scopes=["inference"])

    refused = _refused(lambda: _chat(gateway, reader.key))
    assert refused.body["code"] == "scope_missing" and "'inference'" in refused.body["message"]
    assert _chat(gateway, caller.key).choices

    def api(key: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        return client

    assert api(reader.key).get("/user/balance").status_code == 200
    assert api(reader.key).get("/user/api-keys").status_code == 403
    assert api(caller.key).get("/user/balance").status_code == 403
    assert api(caller.key).post("/user/api-keys", {"name": "x"}, format="json").status_code == 403


def test_restrictions_hold_on_the_management_api_too(make_account):
    account = _restricted(make_account, allowed_ips=["203.0.113.0/24"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {account.key}")
    response = client.get("/user/balance", REMOTE_ADDR="198.51.100.1")
    assert response.status_code == 403
    assert "198.51.100.1" in response.json()["detail"]
    assert client.get("/user/balance", REMOTE_ADDR="203.0.113.5").status_code == 200


def test_customers_set_restrictions_on_their_keys_and_the_gateway_follows(gateway, make_account):
    account = make_account()
    client = APIClient()
    client.force_login(account.user)

    created = client.post(
        "/user/api-keys",
        {"name": "ci", "allowed_models": ["test/echo"], "scopes": ["inference"]},
        format="json",
    )
    assert created.status_code == 201
    assert (created.json()["allowed_models"], created.json()["scopes"]) == (
        ["test/echo"],
        ["inference"],
    )
    key, key_id = created.json()["key"], created.json()["id"]
    assert _refused(lambda: _chat(gateway, key, "test/multi")).body["code"] == ("model_not_allowed")

    bad = client.patch(
        f"/user/api-keys/{key_id}",
        {"allowed_ips": ["10.0.0.999"], "scopes": ["root"]},
        format="json",
    )
    assert bad.status_code == 400
    assert set(bad.json()) == {"allowed_ips", "scopes"}

    changed = client.patch(f"/user/api-keys/{key_id}", {"allowed_models": []}, format="json")
    assert changed.status_code == 200 and changed.json()["allowed_models"] == []
    served = False
    for _ in range(40):  # the key's save reaches every process within a second
        try:
            served = bool(_chat(gateway, key, "test/multi").choices)
            break
        except openai.PermissionDeniedError:
            time.sleep(0.05)
    assert served

    other = make_account()
    stranger = APIClient()
    stranger.force_login(other.user)
    assert (
        stranger.patch(f"/user/api-keys/{key_id}", {"name": "mine"}, format="json").status_code
        == 404
    )
