"""The public discovery and uptime paths on the running gateway: matched before
`/v1/models/{id}` (which once answered "model 'trending' does not exist"), refusals in the
OpenAI error shape, answers cacheable."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.smoke

PUBLIC = (
    "/v1/models/trending",
    "/v1/models/low-latency",
    "/v1/models/search?q=echo",
    "/v1/provider",
    "/v1/provider/mock/stats",
    "/v1/provider/mock/top-models",
    "/v1/gateways/summary",
    "/health/providers/uptime?period=7d",
    "/health/models/uptime?period=90d",
)


@pytest.mark.parametrize("path", PUBLIC)
def test_public_paths_answer_without_a_key(gateway, path):
    answer = httpx.get(f"{gateway}{path}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "public, max-age=30"
    assert "error" not in answer.json()


def test_models_by_id_still_answer_beside_them(gateway, make_account):
    account = make_account()
    auth = {"authorization": f"Bearer {account.key}"}
    assert httpx.get(f"{gateway}/v1/models/test/echo", headers=auth).json()["id"] == "test/echo"
    trending = httpx.get(f"{gateway}/v1/models/trending").json()
    assert trending["sort_by"] == "requests" and isinstance(trending["data"], list)
    missing = httpx.get(f"{gateway}/v1/models/nope/none", headers=auth)
    assert missing.json()["error"]["code"] == "model_not_found"


def test_refusals_in_the_openai_shape(gateway):
    bad = httpx.get(f"{gateway}/v1/models/trending", params={"sort_by": "price"})
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "sort_by"
    assert bad.headers["x-request-id"]
    unknown = httpx.get(f"{gateway}/v1/provider/nobody/stats")
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (404, "provider_not_found")
    posted = httpx.post(f"{gateway}/v1/models/search")
    assert (posted.status_code, posted.headers["allow"]) == (405, "GET")
    other = httpx.get(f"{gateway}/v1/provider/mock/everything")
    assert other.json()["error"]["code"] == "unknown_url"  # not ours: the gateway's 404
