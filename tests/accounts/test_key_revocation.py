"""A revoked key is refused by every gateway process within a second, although each process
serves keys from its own in-memory cache."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from accounts.models import ApiKey
from accounts.services import api_key_revoke
from tests.support.waits import settled_count

pytestmark = pytest.mark.smoke

BODY = {"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]}


def _status(gateway: str, key: str) -> int:
    response = httpx.post(
        f"{gateway}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}
    )
    return response.status_code


@pytest.fixture(scope="module")
def second_gateway(start_gateway, stop_gateway) -> Iterator[str]:
    url = start_gateway()
    yield url
    stop_gateway(url)


def test_it_refuses_a_revoked_key_in_every_process_within_a_second(
    gateway, second_gateway, make_account
):
    account = make_account()
    processes = [gateway, second_gateway]
    assert [_status(g, account.key) for g in processes] == [200, 200]  # both have it cached

    api_key_revoke(api_key=ApiKey.objects.get(pk=account.key_id))
    revoked_at = time.monotonic()
    refused: dict[str, float] = {}
    while len(refused) < len(processes) and time.monotonic() - revoked_at < 1.0:
        for g in processes:
            if g not in refused and _status(g, account.key) == 401:
                refused[g] = time.monotonic() - revoked_at
        time.sleep(0.02)

    assert set(refused) == set(processes), (
        f"still accepted after 1 s by {set(processes) - set(refused)}"
    )


def test_it_keeps_other_keys_of_the_user_working(gateway, make_account):
    from accounts.services import api_key_create

    account = make_account()
    _, other_raw = api_key_create(user=account.user, name="second")
    api_key_revoke(api_key=ApiKey.objects.get(pk=account.key_id))

    assert _status(gateway, other_raw) == 200


def test_it_refuses_expired_keys_and_deactivated_users(gateway, make_account):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.services import api_key_create

    account = make_account()
    _, expired = api_key_create(
        user=account.user, name="old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert _status(gateway, expired) == 401
    assert _status(gateway, account.key) == 200
    # The expired key's refusal is in its owner's request log, at no cost.
    rows = {row.status: row for row in settled_count(account.user.pk, 2)}
    assert set(rows) == {200, 401} and rows[401].cost == 0
    assert ApiKey.objects.get(pk=account.key_id).last_used_at is not None

    account.user.is_active = False
    account.user.save()
    deadline = time.monotonic() + 1.0
    while _status(gateway, account.key) != 401:
        assert time.monotonic() < deadline, "a deactivated user's key still works after 1 s"
        time.sleep(0.05)
