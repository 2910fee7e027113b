"""API sessions: JWT with refresh-token rotation (an old refresh token is refused once it
has been used), and logins throttled per client address."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings
from django.test import override_settings
from rest_framework.test import APIClient

from accounts.services import user_create
from tests.support.servers import free_port

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def dana():
    return user_create(email=f"dana-{uuid.uuid4().hex[:6]}@example.com", password="s3cret-enough")


def _login(email: str, password: str, address: str):
    return APIClient().post(
        "/auth/token", {"email": email, "password": password}, format="json", REMOTE_ADDR=address
    )


def test_a_refresh_token_rotates_and_the_old_one_is_then_refused(dana):
    tokens = _login(dana.email, "s3cret-enough", "198.51.100.10").json()

    first = APIClient().post("/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert first.status_code == 200
    assert {"access", "refresh"} <= set(first.json())
    assert first.json()["refresh"] != tokens["refresh"]

    replay = APIClient().post("/auth/token/refresh", {"refresh": tokens["refresh"]}, format="json")
    assert replay.status_code == 401
    rotated = APIClient().post(
        "/auth/token/refresh", {"refresh": first.json()["refresh"]}, format="json"
    )
    assert rotated.status_code == 200

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {rotated.json()['access']}")
    assert client.get("/user/profile").json()["email"] == dana.email


@override_settings(GATEWAYZ_LOGIN_RATE="3/min")
def test_logins_are_throttled_per_address_and_forged_forwarding_does_not_help(dana):
    address = _address()
    for _ in range(3):
        assert _login(dana.email, "wrong password", address).status_code == 401
    refused = _login(dana.email, "s3cret-enough", address)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    # A fresh X-Forwarded-For per attempt is not a fresh identity (no trusted proxy).
    forged = APIClient().post(
        "/auth/token",
        {"email": dana.email, "password": "x"},
        format="json",
        REMOTE_ADDR=address,
        HTTP_X_FORWARDED_FOR="203.0.113.99",
    )
    assert forged.status_code == 429
    # Another address is not held back.
    assert _login(dana.email, "s3cret-enough", "203.0.113.200").status_code == 200


@pytest.mark.skipif(not settings.REDIS_URL, reason="the embedded lane's cache is in-process")
def test_logins_stay_throttled_while_the_shared_cache_is_unreachable(dana):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    away = {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": nowhere,
        "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1, "SOCKET_TIMEOUT": 1},
    }
    local = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    address = _address()
    with override_settings(GATEWAYZ_LOGIN_RATE="3/min", CACHES={"default": away, "local": local}):
        answers = [_login(dana.email, "wrong password", address).status_code for _ in range(4)]
    assert answers == [401, 401, 401, 429]


def _address() -> str:
    """A client address of a test's own (the throttles count per address): one of 2^32,
    not of 200, so two tests of a run never share one."""
    return f"2001:db8::{uuid.uuid4().hex[:4]}:{uuid.uuid4().hex[:4]}"


def _signup(email: str, password: str, address: str):
    return APIClient().post(
        "/auth/signup", {"email": email, "password": password}, format="json", REMOTE_ADDR=address
    )


def test_a_customer_signs_up_and_is_signed_in():
    address = _address()
    email = f"New-{uuid.uuid4().hex[:6]}@Example.com"

    answer = _signup(email, "a long enough passphrase", address)

    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["email"] == email.lower()
    profile = APIClient().get("/user/profile", HTTP_AUTHORIZATION=f"Bearer {body['access']}")
    assert profile.status_code == 200 and profile.json()["role"] == "user"
    again = _signup(email.upper(), "another long passphrase", address)
    assert again.status_code == 400 and "email" in again.json()
    weak = _signup(f"weak-{uuid.uuid4().hex[:6]}@example.com", "password", address)
    assert weak.status_code == 400 and "password" in weak.json()


@override_settings(GATEWAYZ_SIGNUP_RATE="2/hour")
def test_signups_are_throttled_per_address():
    address = _address()
    answers = [
        _signup(f"s{i}-{uuid.uuid4().hex[:6]}@example.com", "a long enough passphrase", address)
        for i in range(3)
    ]
    assert [a.status_code for a in answers] == [201, 201, 429]
    elsewhere = _signup(
        f"e-{uuid.uuid4().hex[:6]}@example.com", "a long enough passphrase", "203.0.113.201"
    )
    assert elsewhere.status_code == 201
