"""Bad input: the documented status, OpenAI's error shape, no charge, and a request-log row
for every authenticated request."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from billing.models import CreditAccount, CreditHold, LedgerEntry, RequestLog
from tests.support.waits import settled

pytestmark = pytest.mark.smoke

MESSAGES = [{"role": "user", "content": "hi"}]


def _post(
    gateway: str, key: str | None, body: bytes | dict, headers: dict | None = None
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    auth = {"authorization": f"Bearer {key}"} if key else {}
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        content=content,
        headers={"content-type": "application/json", **auth, **(headers or {})},
    )


def _assert_openai_error(
    response: httpx.Response, status: int, code: str | None = None, param: str | None = None
) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if code is not None:
        assert error["code"] == code
    if param is not None:
        assert error["param"] == param


BAD_BODIES = [
    (b"{not json", None),
    (b"[1, 2]", None),
    (b'"a string"', None),
    ({"messages": MESSAGES}, "model"),
    ({"model": 42, "messages": MESSAGES}, "model"),
    ({"model": "test/echo"}, "messages"),
    ({"model": "test/echo", "messages": []}, "messages"),
    ({"model": "test/echo", "messages": "hi"}, "messages"),
    ({"model": "test/echo", "messages": [{"content": "no role"}]}, "messages[0]"),
    ({"model": "test/echo", "messages": MESSAGES, "stream": "yes"}, "stream"),
    ({"model": "test/echo", "messages": MESSAGES, "max_tokens": -1}, "max_tokens"),
    ({"model": "test/echo", "messages": MESSAGES, "max_tokens": "10"}, "max_tokens"),
    ({"model": "test/echo", "messages": MESSAGES, "n": 0}, "n"),
    (
        {"model": "test/echo", "messages": MESSAGES, "stream_options": {"include_usage": True}},
        "stream_options",
    ),
]


@pytest.mark.parametrize(("body", "param"), BAD_BODIES)
def test_it_refuses_malformed_requests_without_charging(gateway, make_account, body, param):
    account = make_account()

    response = _post(gateway, account.key, body)

    _assert_openai_error(response, 400, param=param)
    log = settled(response.headers["x-request-id"])
    assert (log.status, log.cost, log.user_id) == (400, 0, account.user.pk)
    _assert_untouched(account)


def _assert_untouched(account, balance: Decimal = Decimal("10")) -> None:
    row = CreditAccount.objects.get(user=account.user)
    assert (row.balance, row.held) == (balance, 0)
    assert not LedgerEntry.objects.filter(user=account.user, kind="usage").exists()
    assert not CreditHold.objects.filter(user=account.user).exists()


def test_it_refuses_an_oversized_body_with_413(gateway, make_account):
    account = make_account()
    big = {"model": "test/echo", "messages": [{"role": "user", "content": "x" * 70_000}]}

    response = _post(gateway, account.key, big)

    _assert_openai_error(response, 413, code="request_too_large")
    assert settled(response.headers["x-request-id"]).status == 413
    _assert_untouched(account)


def test_it_answers_an_unknown_model_with_404(gateway, make_account):
    account = make_account()

    for model in ("no/such-model", "test/unserved"):
        response = _post(gateway, account.key, {"model": model, "messages": MESSAGES})
        _assert_openai_error(response, 404, code="model_not_found", param=None)
        assert settled(response.headers["x-request-id"]).requested_model == model
    _assert_untouched(account)


def test_a_model_name_with_nul_is_answered_and_logged(gateway, make_account):
    """Postgres text cannot hold NUL: the name is logged with U+FFFD in its place, and the
    settlement of this request (and of those written with it) still lands."""
    account = make_account()
    response = httpx.post(
        f"{gateway}/v1/chat/completions",
        content=b'{"model": "gpt\\u0000-4", "messages": [{"role": "user", "content": "hi"}]}',
        headers={"authorization": f"Bearer {account.key}", "content-type": "application/json"},
    )

    assert response.status_code == 404
    log = settled(response.headers["x-request-id"])
    assert (log.status, log.requested_model, log.cost) == (404, "gpt\ufffd-4", 0)


def test_it_refuses_with_402_when_credit_cannot_cover_the_hold(gateway, make_account):
    account = make_account(credit=Decimal("0.000001"))

    response = _post(gateway, account.key, {"model": "test/echo", "messages": MESSAGES})

    _assert_openai_error(response, 402, code="insufficient_credits")
    assert settled(response.headers["x-request-id"]).status == 402
    _assert_untouched(account, Decimal("0.000001"))


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Basic abc", "Bearer sk-not-ours", "Bearer gw_live_" + "x" * 43],
)
def test_it_refuses_missing_or_wrong_keys_with_401(gateway, live_db, authorization):
    headers = {"authorization": authorization} if authorization is not None else {}
    before = RequestLog.objects.count()

    response = _post(gateway, None, {"model": "test/echo", "messages": MESSAGES}, headers)

    _assert_openai_error(response, 401, code="invalid_api_key")
    assert response.headers["x-request-id"]
    assert RequestLog.objects.count() == before  # nobody to attribute a row to


def test_it_answers_unknown_routes_and_methods_in_openai_shape(gateway):
    _assert_openai_error(httpx.get(f"{gateway}/v1/chat/completions"), 405)
    _assert_openai_error(httpx.post(f"{gateway}/v1/models"), 405)
    _assert_openai_error(httpx.get(f"{gateway}/v1/nothing-here"), 404, code="unknown_url")
