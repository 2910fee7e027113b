"""/metrics holds revenue and cost totals: only the internal network, or a scraper with the
metrics token, may read it (gateway.metrics_access), on both kinds of worker."""

from __future__ import annotations

import httpx
import pytest
from django.test import override_settings

from gateway.metrics_access import scrape_allowed

pytestmark = pytest.mark.smoke

INFERENCE_APP = "config.asgi_inference:application"


def test_a_request_through_the_proxy_is_refused_on_both_workers(gateway, own_gateway):
    inference = own_gateway(app=INFERENCE_APP)
    for url in (gateway, inference):
        assert httpx.get(f"{url}/metrics", timeout=10).status_code == 200  # from inside
        outside = httpx.get(f"{url}/metrics", headers={"x-forwarded-for": "198.51.100.7"})
        assert outside.status_code == 403
        assert "gatewayz_" not in outside.text and "metrics token" in outside.text
        forwarded = httpx.get(f"{url}/metrics", headers={"forwarded": "for=198.51.100.7"})
        assert forwarded.status_code == 403


def test_outside_the_networks_only_the_token_opens_it(own_gateway):
    worker = own_gateway(
        app=INFERENCE_APP,
        GATEWAYZ_METRICS_TOKEN="scrape-secret",
        GATEWAYZ_METRICS_NETWORKS="203.0.113.0/24",  # not loopback: the test is outside
    )
    assert httpx.get(f"{worker}/metrics").status_code == 403
    wrong = httpx.get(f"{worker}/metrics", headers={"authorization": "Bearer nope"})
    assert wrong.status_code == 403
    right = httpx.get(
        f"{worker}/metrics",
        headers={"authorization": "Bearer scrape-secret", "x-forwarded-for": "198.51.100.7"},
    )
    assert right.status_code == 200 and "gatewayz_requests_in_flight" in right.text


@pytest.mark.parametrize(
    ("peer", "authorization", "forwarded", "allowed"),
    [
        ("10.1.2.3", "", False, True),
        ("::1", "", False, True),
        ("8.8.8.8", "", False, False),
        ("10.1.2.3", "", True, False),  # the proxy's own address, carrying an outsider
        (None, "", False, False),
        ("8.8.8.8", "Bearer t", True, True),
        ("8.8.8.8", "bearer t", False, True),
        ("8.8.8.8", "Basic t", False, False),
        ("8.8.8.8", "Bearer tt", False, False),
    ],
)
def test_the_rule(peer, authorization, forwarded, allowed):
    with override_settings(GATEWAYZ_METRICS_TOKEN="t"):
        assert scrape_allowed(peer, authorization=authorization, forwarded=forwarded) is allowed


def test_no_token_set_opens_nothing_to_an_empty_bearer():
    with override_settings(GATEWAYZ_METRICS_TOKEN=""):
        assert not scrape_allowed("8.8.8.8", authorization="Bearer ", forwarded=False)
