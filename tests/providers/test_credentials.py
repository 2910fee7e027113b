"""Provider credentials at rest: the platform's keys and customers' own (BYOK) are stored
encrypted under the key ring, rotated by a command, never shown, logged or audited, and
used: a provider whose key is stored only in the database serves through the gateway, and
a customer's own key serves their requests at the BYOK fee."""

from __future__ import annotations

import io
import json
import uuid
from decimal import Decimal

import httpx
import openai
import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.test import override_settings

from accounts.models import AuditEntry
from billing.models import CreditAccount
from providers import credentials
from providers.catalog import catalog_build
from providers.catalog_file import catalog_changed
from providers.models import Model, Offering, Provider, ProviderKey
from tests.conftest import UPSTREAM_KEY
from tests.support.staff import failures_of, staff_key
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

SECRET = "sk-live-" + "x7" * 12 + "tail"


@pytest.fixture
def fresh_ring():
    """The key ring is built once per process: rebuilt for each test's settings."""
    credentials.key_ring.cache_clear()
    yield
    credentials.key_ring.cache_clear()


def _ring(*keys: bytes):
    return override_settings(GATEWAYZ_CREDENTIAL_KEYS=[k.decode() for k in keys])


@pytest.mark.django_db
def test_a_stored_credential_is_encrypted_and_shown_only_as_a_hint(
    fresh_ring, client, django_capture_on_commit_callbacks
):
    provider = Provider.objects.create(
        slug=f"p-{uuid.uuid4().hex[:6]}", name="P", base_url="https://api.example.com/v1"
    )
    admin = _admin(client)

    with django_capture_on_commit_callbacks(execute=True):  # the audit entry, on commit
        page = client.post(
            f"/admin/providers/provider/{provider.pk}/change/",
            {**_provider_form(provider), "credential": SECRET},
        )

    assert page.status_code == 302, page.content[:2000]
    provider.refresh_from_db()
    assert (
        SECRET not in provider.credential_ciphertext
        and "x7x7" not in provider.credential_ciphertext
    )
    assert provider.credential_plaintext() == SECRET
    assert provider.credential_hint == "…tail"
    shown = client.get(f"/admin/providers/provider/{provider.pk}/change/").content.decode()
    listed = client.get("/admin/providers/provider/").content.decode()
    assert SECRET not in shown and SECRET not in listed and "…tail" in shown
    entries = AuditEntry.objects.filter(target_id=str(provider.pk), actor=admin)
    assert entries.exists()
    assert all(SECRET not in json.dumps([e.before, e.after]) for e in entries)
    assert all("credential_ciphertext" not in json.dumps([e.before, e.after]) for e in entries)
    # Empty keeps it; "remove" removes it.
    client.post(f"/admin/providers/provider/{provider.pk}/change/", _provider_form(provider))
    provider.refresh_from_db()
    assert provider.credential_plaintext() == SECRET
    client.post(
        f"/admin/providers/provider/{provider.pk}/change/",
        {**_provider_form(provider), "credential_clear": "on"},
    )
    provider.refresh_from_db()
    assert (provider.credential_ciphertext, provider.credential_hint) == ("", "")


@pytest.mark.django_db
def test_staff_who_may_only_view_see_the_hint_not_the_key(fresh_ring, client):
    from accounts.services import user_create

    provider = Provider.objects.create(
        slug=f"v-{uuid.uuid4().hex[:6]}", name="V", base_url="https://api.example.com/v1"
    )
    provider.credential_set(SECRET)
    provider.save()
    developer = user_create(email=f"dev-{uuid.uuid4().hex[:6]}@example.com")
    developer.role = "developer"
    developer.save()
    client.force_login(developer)

    page = client.get(f"/admin/providers/provider/{provider.pk}/change/")

    assert page.status_code == 200
    assert SECRET not in page.content.decode() and "…tail" in page.content.decode()


def _admin(client):
    from accounts.services import user_create

    admin = user_create(email=f"admin-{uuid.uuid4().hex[:6]}@example.com", password="pw-admin-1")
    admin.role = "admin"
    admin.is_superuser = True
    admin.save()
    client.force_login(admin)
    return admin


def _provider_form(provider: Provider) -> dict:
    return {
        "slug": provider.slug,
        "name": provider.name,
        "protocol": provider.protocol,
        "base_url": provider.base_url,
        "auth": "",
        "extra_headers": "{}",
        "drop_params": "[]",
        "unsupported_params": "[]",
        "rename_params": "{}",
        "credential_env": "",
        "connect_timeout": "5",
        "read_timeout": "120",
        "enabled": "on",
        "offerings-TOTAL_FORMS": "0",
        "offerings-INITIAL_FORMS": "0",
    }


@pytest.mark.django_db
def test_rotation_re_encrypts_everything_under_the_new_key(fresh_ring):
    from accounts.services import user_create

    old, new = Fernet.generate_key(), Fernet.generate_key()
    with _ring(old):
        provider = Provider.objects.create(
            slug=f"r-{uuid.uuid4().hex[:6]}", name="R", base_url="https://api.example.com/v1"
        )
        provider.credential_set(SECRET)
        provider.save()
        user = user_create(email=f"byok-{uuid.uuid4().hex[:6]}@example.com")
        own = ProviderKey(user=user, provider=provider)
        own.key_set("sk-own-" + "k" * 20)
        own.save()
    credentials.key_ring.cache_clear()

    with _ring(new, old):
        out = io.StringIO()
        call_command("credentials_rotate", stdout=out)
        assert "re-encrypted, 0 unreadable" in out.getvalue()
    credentials.key_ring.cache_clear()

    with _ring(new):  # the old key is gone: everything still opens
        provider.refresh_from_db()
        own.refresh_from_db()
        assert provider.credential_plaintext() == SECRET
        assert own.key_plaintext() == "sk-own-" + "k" * 20
    credentials.key_ring.cache_clear()
    with _ring(old), pytest.raises(credentials.CredentialUnreadable):
        provider.credential_plaintext()


@pytest.mark.django_db
def test_a_credential_no_key_opens_switches_its_provider_off(fresh_ring, mock_upstream):
    ring = Fernet.generate_key()
    with _ring(ring):
        provider = Provider.objects.create(
            slug=f"lost-{uuid.uuid4().hex[:6]}", name="L", base_url="https://api.example.com/v1"
        )
        provider.credential_set(SECRET)
        provider.save()
        model = Model.objects.create(canonical_id=f"test/lost-{provider.slug}")
        Offering.objects.create(
            model=model, provider=provider, upstream_model_id="x", input_price=1, output_price=1
        )
        assert catalog_build().resolve(model.canonical_id) is not None  # the control
    credentials.key_ring.cache_clear()
    with _ring(Fernet.generate_key()):
        assert catalog_build().resolve(model.canonical_id) is None


def test_without_a_key_ring_nothing_is_stored_outside_debug(fresh_ring):
    with (
        override_settings(GATEWAYZ_CREDENTIAL_KEYS=[], DEBUG=False),
        pytest.raises(ImproperlyConfigured, match="GATEWAYZ_CREDENTIAL_KEYS"),
    ):
        credentials.credential_encrypt(SECRET)


def test_a_provider_whose_key_is_stored_only_in_the_database_serves(
    gateway, make_account, mock_upstream, live_db
):
    provider = Provider.objects.create(
        slug=f"stored-{uuid.uuid4().hex[:6]}", name="Stored", base_url=f"{mock_upstream.url}/v1"
    )
    provider.credential_set(UPSTREAM_KEY)
    provider.save()
    model = Model.objects.create(canonical_id=f"test/{provider.slug}")
    Offering.objects.create(
        model=model, provider=provider, upstream_model_id="echo", input_price=1, output_price=2
    )
    catalog_changed()
    account = make_account()
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=account.key, max_retries=0)

    answer = _eventually(
        lambda: client.chat.completions.with_raw_response.create(
            model=model.canonical_id, messages=[{"role": "user", "content": "stored"}]
        )
    )

    assert answer.headers["x-gatewayz-provider"] == provider.slug
    assert "stored" in answer.parse().choices[0].message.content


def _eventually(call, timeout: float = 5.0):  # type: ignore[no-untyped-def]
    """The catalog reaches the gateway process within a poll."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except openai.NotFoundError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


# Customers' own keys (BYOK).


def _own_key(gateway: str, key: str, provider: str, raw: str) -> httpx.Response:
    return httpx.post(
        f"{gateway}/user/provider-keys",
        json={"provider": provider, "key": raw},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def test_own_keys_are_taken_once_and_never_given_back(gateway, make_account):
    alice, bob = make_account(), make_account()
    raw = "sk-alice-" + "a" * 24 + "wxyz"

    added = _own_key(gateway, alice.key, "mock", raw)
    replaced = _own_key(gateway, alice.key, "mock", raw[:-4] + "0000")
    listed = httpx.get(
        f"{gateway}/user/provider-keys", headers={"authorization": f"Bearer {alice.key}"}
    )

    assert added.status_code == 201 and replaced.status_code == 200
    assert added.json()["hint"] == "…wxyz" and replaced.json()["hint"] == "…0000"
    assert [k["provider"] for k in listed.json()["data"]] == ["mock"]
    for response in (added, replaced, listed):
        assert raw[:-4] not in response.text
    stored = ProviderKey.objects.get(user=alice.user)
    assert raw[:-4] not in stored.ciphertext and stored.key_plaintext() == raw[:-4] + "0000"
    audit = AuditEntry.objects.filter(owner=alice.user, action__startswith="providerkey")
    assert audit.exists() and all(raw[:-4] not in json.dumps([e.before, e.after]) for e in audit)
    # Bob cannot see or remove it; an unknown provider and a key with spaces are refused.
    key_id = stored.pk
    removed_by_bob = httpx.delete(
        f"{gateway}/user/provider-keys/{key_id}", headers={"authorization": f"Bearer {bob.key}"}
    )
    assert removed_by_bob.status_code == 404
    assert _own_key(gateway, alice.key, "no-such-provider", raw).status_code == 400
    assert _own_key(gateway, alice.key, "mock", "sk has spaces in it").status_code == 400
    removed = httpx.delete(
        f"{gateway}/user/provider-keys/{key_id}", headers={"authorization": f"Bearer {alice.key}"}
    )
    assert removed.status_code == 204 and not ProviderKey.objects.filter(pk=key_id).exists()


def _chat(gateway: str, key: str, model: str, content: str):  # type: ignore[no-untyped-def]
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=key, max_retries=0, timeout=20)
    return client.chat.completions.with_raw_response.create(
        model=model, messages=[{"role": "user", "content": content}]
    )


def _served_after_reload(gateway: str, key: str, model: str, content: str, provider_is):  # type: ignore[no-untyped-def]
    """The user's keys reach the gateway process within a poll of the invalidations."""
    import time

    deadline = time.monotonic() + 5
    while True:
        answer = _chat(gateway, key, model, content)
        log = settled(answer.headers["x-request-id"])
        if provider_is(log) or time.monotonic() > deadline:
            return answer, log
        time.sleep(0.1)


def test_a_customers_own_key_serves_their_requests_at_the_byok_fee(gateway, make_account):
    byok, plain = make_account(), make_account()
    assert _own_key(gateway, byok.key, "mock", UPSTREAM_KEY).status_code == 201
    content = "the same words, twice"

    mine, log = _served_after_reload(
        gateway, byok.key, "test/echo", content, lambda log: log.attempts[0].get("byok")
    )
    theirs = _chat(gateway, plain.key, "test/echo", content)

    assert log.attempts == [{**log.attempts[0], "provider": "mock", "status": 200, "byok": True}]
    full = settled(theirs.headers["x-request-id"]).cost
    assert full > 0 and log.cost == full * Decimal("0.05")
    assert Decimal(mine.headers["x-gatewayz-cost"]) == log.cost
    assert CreditAccount.objects.get(user=byok.user).balance == Decimal(10) - log.cost


def test_a_refused_own_key_fails_over_and_does_not_trip_the_providers_breaker(
    gateway, make_account
):
    account, staff = make_account(), staff_key(make_account)
    assert _own_key(gateway, account.key, "mock-a", "sk-wrong-" + "w" * 20).status_code == 201
    before = failures_of(gateway, staff, "mock-a|test/multi")

    answer, log = _served_after_reload(
        gateway, account.key, "test/multi", "hello", lambda log: log.attempts[0].get("byok")
    )

    # Its own key was tried first (and refused), then the platform's next provider served.
    assert [(a["provider"], a["status"], a["error"], a.get("byok")) for a in log.attempts] == [
        ("mock-a", 401, "byok_key_refused", True),
        ("mock-b", 200, "", None),
    ]
    assert answer.headers["x-gatewayz-provider"] == "mock-b"
    assert failures_of(gateway, staff, "mock-a|test/multi") == before


def test_a_refused_own_key_with_nowhere_else_to_go_says_so(gateway, make_account):
    account = make_account()
    assert _own_key(gateway, account.key, "mock", "sk-wrong-" + "w" * 20).status_code == 201
    client = openai.OpenAI(base_url=f"{gateway}/v1", api_key=account.key, max_retries=0)

    def refused() -> openai.APIStatusError:
        try:
            client.chat.completions.create(
                model="test/echo", messages=[{"role": "user", "content": "hi"}]
            )
        except openai.APIStatusError as exc:
            return exc
        raise AssertionError("served with the platform's key")

    import time

    deadline = time.monotonic() + 5
    while (error := _try_refused(refused)) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    # The customer's own key is the customer's to fix: a 4xx naming the provider and the key.
    assert isinstance(error, openai.PermissionDeniedError) and error.status_code == 403
    assert error.body["code"] == "byok_key_refused"
    assert "mock refused your own mock key (401)" in error.body["message"]


def _try_refused(refused):  # type: ignore[no-untyped-def]
    try:
        return refused()
    except AssertionError:
        return None  # the gateway has not reloaded the user's keys yet


def test_an_own_keys_provider_failures_do_not_trip_the_providers_breaker(gateway, make_account):
    """Its quota, its timeouts: one customer's key says nothing of the provider's health."""
    account, staff = make_account(), staff_key(make_account)
    assert _own_key(gateway, account.key, "mock-a", UPSTREAM_KEY).status_code == 201
    before = failures_of(gateway, staff, "mock-a|test/multi")
    fault = "!mock " + json.dumps({"status": 503, "only_model": "echo-a"})

    _, log = _served_after_reload(
        gateway, account.key, "test/multi", fault, lambda log: log.attempts[0].get("byok")
    )

    assert [(a["provider"], a["status"], a.get("byok")) for a in log.attempts] == [
        ("mock-a", 503, True),
        ("mock-b", 200, None),
    ]
    assert failures_of(gateway, staff, "mock-a|test/multi") == before


@pytest.mark.django_db
def test_a_key_removed_in_the_admin_is_dropped_by_every_gateway_process(client):
    from accounts.services import user_create
    from core.models import CacheInvalidation

    owner = user_create(email=f"owner-{uuid.uuid4().hex[:6]}@example.com")
    provider = Provider.objects.create(
        slug=f"d-{uuid.uuid4().hex[:6]}", name="D", base_url="https://api.example.com/v1"
    )
    key = ProviderKey(user=owner, provider=provider)
    key.key_set("sk-owner-" + "o" * 20)
    key.save()
    _admin(client)

    answer = client.post(f"/admin/providers/providerkey/{key.pk}/delete/", {"post": "yes"})

    assert answer.status_code == 302 and not ProviderKey.objects.filter(pk=key.pk).exists()
    assert CacheInvalidation.objects.filter(kind="user", value=str(owner.pk)).exists()
