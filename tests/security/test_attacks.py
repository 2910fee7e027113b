"""The classes of holes that hit peer gateways, tried against ours: SQL injection through
the key header and query parameters, authorization decided by Host or X-Forwarded-*
headers, privilege escalation through what a customer may change, key comparison, and
secrets in logs and error bodies. (SSRF through base URLs: tests/providers/test_ssrf.py.)"""

from __future__ import annotations

import json

import httpx
import pytest
from rest_framework.test import APIClient

from accounts.keys import key_digest
from accounts.models import ApiKey, AuditEntry
from billing.models import RequestLog
from tests.conftest import UPSTREAM_KEY
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

INJECTIONS = [
    "' OR '1'='1",
    "gw_live_' OR 1=1 --",
    "gw_live_" + "A" * 20 + "'; DROP TABLE accounts_apikey; --",
    "gw_live_%' UNION SELECT digest FROM accounts_apikey --",
    '"; SELECT pg_sleep(5); --',
]


def _chat(gateway: str, headers: dict, model: str = "test/echo") -> httpx.Response:
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        headers=headers,
        timeout=10,
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
    )


@pytest.mark.parametrize("token", INJECTIONS)
def test_sql_in_the_key_headers_is_just_a_wrong_key(gateway, live_db, token):
    keys_before = ApiKey.objects.count()
    for headers in ({"authorization": f"Bearer {token}"}, {"x-api-key": token}):
        response = _chat(gateway, headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"
        anthropic_route = httpx.post(
            f"{gateway}/v1/messages",
            headers=headers | {"anthropic-version": "2023-06-01"},
            json={
                "model": "test/claude",
                "max_tokens": 5,
                "messages": [{"role": "user", "content": "hi"}],
            },
        )
        assert anthropic_route.status_code == 401
        assert anthropic_route.json()["error"]["type"] == "authentication_error"
    assert ApiKey.objects.count() == keys_before


@pytest.mark.parametrize(
    "query",
    [
        "limit=1;DROP TABLE billing_ledgerentry&offset=0",
        "limit=' OR 1=1 --",
        "offset=-1 UNION SELECT 1",
        "limit=99999999999999999999999",
        "ordering=password",
    ],
)
def test_sql_in_query_parameters_is_refused_or_ignored_never_run(make_account, query):
    account = make_account()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {account.key}")
    for path in ("/user/credit-transactions", "/user/api-keys/audit-logs", "/user/api-keys"):
        response = client.get(f"{path}?{query}")
        assert response.status_code in (200, 400, 404), (path, query)
    assert client.get("/user/balance").json()["balance"] == "10"


def test_models_and_their_ids_are_not_an_injection_point(gateway, make_account):
    account = make_account()
    headers = {"authorization": f"Bearer {account.key}"}
    for model_id in ("test/echo' OR '1'='1", "../../etc/passwd", "test/echo%00", "x" * 5000):
        assert _chat(gateway, headers, model_id).status_code in (400, 404)
        got = httpx.get(f"{gateway}/v1/models/{model_id}", headers=headers)
        assert got.status_code in (400, 404)


@pytest.mark.parametrize(
    "forged",
    [
        {"host": "localhost"},
        {"host": "admin.internal"},
        {"x-forwarded-host": "localhost", "x-forwarded-for": "127.0.0.1"},
        {"x-forwarded-proto": "https", "x-forwarded-user": "admin", "x-remote-user": "admin"},
        {"x-real-ip": "127.0.0.1", "forwarded": "for=127.0.0.1;host=localhost"},
    ],
)
def test_authorization_is_never_decided_by_host_or_forwarding_headers(
    gateway, make_account, forged
):
    account = make_account()  # a customer, not staff
    assert _chat(gateway, forged).status_code == 401  # no key: no entry, whatever the headers
    staff_api = httpx.get(
        f"{gateway}/api/monitoring/circuit-breakers",
        headers={"authorization": f"Bearer {account.key}", **forged},
    )
    assert staff_api.status_code in (400, 403)  # 400: a Host Django does not serve
    admin = httpx.get(f"{gateway}/admin/", headers=forged, follow_redirects=False)
    assert admin.status_code in (302, 400)
    assert "login" in admin.headers.get("location", "/admin/login/")


def test_a_customer_cannot_raise_their_own_privileges_or_limits(make_account):
    account = make_account()
    other = make_account()
    client = APIClient()
    client.force_login(account.user)

    escalations = {"role": "admin", "is_staff": True, "is_superuser": True}
    assert client.patch("/user/profile", escalations, format="json").status_code == 405
    assert client.put("/user/profile", escalations, format="json").status_code == 405

    forged = {
        "name": "k",
        "user": other.user.pk,
        "priority": "critical",
        "limit_rpm": 10**9,
        "digest": "0" * 64,
        "revoked_at": None,
        "scopes": ["inference", "admin"],
    }
    assert client.post("/user/api-keys", forged, format="json").status_code == 400  # scope
    del forged["scopes"]
    created = client.post("/user/api-keys", forged, format="json").json()
    key = ApiKey.objects.get(pk=created["id"])
    assert (key.user_id, key.priority, key.limit_rpm) == (account.user.pk, "default", None)
    assert key.digest == key_digest(created["key"])
    changed = client.patch(
        f"/user/api-keys/{key.pk}",
        {"priority": "critical", "limit_concurrent": 10**6, "user": other.user.pk},
        format="json",
    )
    assert changed.status_code == 200
    key.refresh_from_db()
    assert (key.user_id, key.priority, key.limit_concurrent) == (account.user.pk, "default", None)
    account.user.refresh_from_db()
    assert (account.user.role, account.user.is_staff) == ("user", False)


def test_a_near_miss_key_is_refused_exactly_like_any_other(gateway, make_account):
    """Keys are looked up by their HMAC digest, never compared as strings: a key right but
    for its last character gets the same answer as one wrong from the first."""
    key = make_account().key
    near = key[:-1] + ("A" if key[-1] != "A" else "B")
    far = "gw_live_" + ("B" if key[8] != "B" else "C") + key[9:]
    answers = [_chat(gateway, {"authorization": f"Bearer {k}"}) for k in (near, far)]
    assert [a.status_code for a in answers] == [401, 401]
    assert answers[0].json() == answers[1].json()


def test_guessing_a_key_character_by_character_has_nothing_to_time():
    """What a timing attack needs is a comparison that stops at the first wrong character
    of the secret. Nothing compares the key: its HMAC digest is looked up (a hash table in
    each process, an index in the database), and changing one character of a guess changes
    its digest all over, so a guess closer to the key is no closer to its digest."""
    key = "gw_live_" + "k3Y" * 14 + "z"  # fixed: the test's pepper is too, so is its result
    target = key_digest(key)
    shared = []
    for position in range(8, len(key)):  # every character after the prefix, one at a time
        guess = key[:position] + ("A" if key[position] != "A" else "B") + key[position + 1 :]
        digest = key_digest(guess)
        shared.append(
            next(i for i, (a, b) in enumerate(zip(digest, target, strict=True)) if a != b)
        )
    # Chance alone: one hex digit in 16 shares the first; the guesses nearest the key
    # (all but their last character right) do no better than those wrong early.
    assert sum(shared) / len(shared) < 1
    assert max(shared[-8:]) <= max(shared[:8]) + 3


def test_secrets_never_reach_error_bodies_logs_or_records(own_gateway, make_account, tmp_path):
    log = tmp_path / "gateway.log"
    gateway = own_gateway(log=log, LOG_LEVEL="DEBUG")
    account = make_account()
    headers = {"authorization": f"Bearer {account.key}"}

    # A provider that refuses our credential quotes part of it back: the client never sees it.
    refused = _chat(gateway, headers, "test/failover")  # dead, then wrongkey (401), then mock
    assert refused.status_code == 200
    quoted = {"status": 401, "message": f"Incorrect API key provided: {UPSTREAM_KEY}"}
    wrong_key = httpx.post(
        f"{gateway}/v1/chat/completions",
        headers=headers,
        json={
            "model": "test/echo",
            "messages": [{"role": "user", "content": "!mock " + json.dumps(quoted)}],
        },
    )
    body = wrong_key.text
    assert wrong_key.status_code == 502
    masked = f"{UPSTREAM_KEY[:3]}***{UPSTREAM_KEY[-4:]}"  # as OpenAI quotes a key back
    assert UPSTREAM_KEY not in body and masked not in body and "sk-" not in body

    # Records: no raw key, no provider credential, anywhere in the request log or audit log
    # (once written: the usage consumer writes them a moment after the answers).
    for answer in (refused, wrong_key):
        settled(answer.headers["x-request-id"])
    logs = RequestLog.objects.filter(user=account.user)
    assert [row.attempts[-1]["status"] for row in logs.order_by("created_at")] == [200, 401]
    assert "[redacted]" in logs.get(status=502).attempts[-1]["detail"]  # kept for staff, cut
    dumped = json.dumps([list(logs.values()), list(AuditEntry.objects.values())], default=str)
    assert account.key not in dumped and UPSTREAM_KEY not in dumped
    assert key_digest(account.key) not in dumped

    # The gateway's own log, at DEBUG.
    text = log.read_text(errors="replace")
    assert text  # it did log (the provider failures at least)
    assert account.key not in text and UPSTREAM_KEY not in text
