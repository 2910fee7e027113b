"""The access log: one line per request, as JSON with LOG_FORMAT=json (request id, user and
key ids, model, provider, status, latency, tokens, cost), and never the key itself."""

from __future__ import annotations

import httpx
import orjson
import pytest

from tests.support.waits import settled_count

pytestmark = pytest.mark.smoke


def test_one_json_line_per_request(start_gateway, stop_gateway, make_account, tmp_path):
    log = tmp_path / "gateway.log"
    gateway = start_gateway(log=log, LOG_FORMAT="json", LOG_LEVEL="INFO")
    account = make_account()
    auth = {"authorization": f"Bearer {account.key}"}
    served = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers=auth,
    )
    refused = httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "nope/none", "messages": [{"role": "user", "content": "hi"}]},
        headers=auth,
    )
    settled_count(account.user.pk, 2)
    stop_gateway(gateway)
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines() if line.startswith(b"{")]
    access = {line["request_id"]: line for line in lines if line["logger"] == "gatewayz.access"}
    ok = access[served.headers["x-request-id"]]
    assert (ok["status"], ok["model"], ok["provider"], ok["user_id"], ok["key_id"]) == (
        200,
        "test/echo",
        "mock",
        account.user.pk,
        account.key_id,
    )
    assert ok["prompt_tokens"] > 0 and ok["latency_ms"] > 0 and ok["level"] == "INFO"
    missing = access[refused.headers["x-request-id"]]
    assert (missing["status"], missing["error_type"]) == (404, "model_not_found")
    assert account.key not in log.read_text()
