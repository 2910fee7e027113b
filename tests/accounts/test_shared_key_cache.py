"""The shared key cache (gateway.keycache_shared): what a gateway process puts in Redis when
it loads a key holds no secret, and a change that every process must hear of deletes the
copies it concerns as soon as it commits, before any process polls."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest
import redis
from django.conf import settings

from accounts.keys import key_digest
from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke
from gateway.keycache_shared import PREFIX
from providers.byok import provider_key_put
from providers.models import Provider, ProviderKey
from tests.conftest import UPSTREAM_KEY

pytestmark = pytest.mark.skipif(not settings.REDIS_URL, reason="the shared key cache is Redis")

BODY = {"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]}


def _served(gateway: str, key: str) -> None:
    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        json=BODY,
        headers={"authorization": f"Bearer {key}"},
        timeout=20,
    )
    assert response.status_code == 200, response.text


def _served_and_copied(gateway: str, key: str, timeout: float = 5.0) -> tuple[bytes, int]:
    """The key's copy and its TTL, read together once the process that served it has written
    it (in the background). Served again if a poll drops it first (the key's account changed
    a moment before: the poller deletes the changed keys' copies once more)."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    name = PREFIX + key_digest(key)
    deadline = time.monotonic() + timeout
    while True:
        _served(gateway, key)
        for _ in range(20):
            copy, ttl = client.pipeline(transaction=True).get(name).ttl(name).execute()
            if copy is not None:
                return bytes(copy), ttl
            time.sleep(0.05)
        if time.monotonic() > deadline:
            raise AssertionError("no copy of the key in the shared key cache")


def _copy_exists(key: str) -> bool:
    return bool(redis.Redis.from_url(settings.REDIS_URL).exists(PREFIX + key_digest(key)))


def test_a_loaded_keys_copy_holds_no_secret(gateway: str, make_account: Callable) -> None:
    account = make_account()
    provider_key_put(
        user_id=account.user.pk, provider=Provider.objects.get(slug="mock"), raw=UPSTREAM_KEY
    )

    copy, ttl = _served_and_copied(gateway, account.key)

    assert account.key.encode() not in copy and key_digest(account.key).encode() not in copy
    assert UPSTREAM_KEY.encode() not in copy  # the customer's own provider key...
    sealed = ProviderKey.objects.get(user=account.user).ciphertext
    assert sealed.encode() in copy  # ...only as the database stores it, encrypted
    assert 0 < ttl <= settings.GATEWAYZ_SHARED_KEY_CACHE_SECONDS


def test_a_revoked_keys_copy_goes_when_the_revocation_commits(
    gateway: str, make_account: Callable
) -> None:
    account = make_account()
    _served_and_copied(gateway, account.key)

    api_key_revoke(api_key=ApiKey.objects.get(pk=account.key_id))

    assert not _copy_exists(account.key)


def test_a_deactivated_users_copies_all_go(gateway: str, make_account: Callable) -> None:
    account = make_account()
    _, second = api_key_create(user=account.user, name="second")
    for key in (account.key, second):
        _served_and_copied(gateway, key)

    account.user.is_active = False
    account.user.save()

    assert not _copy_exists(account.key) and not _copy_exists(second)
