"""A real Prometheus (Debian's `prometheus`; .ci/run installs it) scrapes a gateway: PromQL
counts the requests made, and every dashboard query is accepted by its engine."""

from __future__ import annotations

import shutil
import subprocess
import time

import httpx
import pytest

from tests.support.promql import dashboard_targets
from tests.support.servers import free_port

PROMETHEUS = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(PROMETHEUS is None, reason="needs Debian's prometheus")


@pytest.fixture
def prometheus(tmp_path):
    def start(target: str) -> str:
        config = tmp_path / "prometheus.yml"
        config.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: gatewayz\n"
            f"    static_configs: [{{targets: ['{target}']}}]\n"
        )
        port = free_port()
        proc = subprocess.Popen(
            [
                PROMETHEUS,
                f"--config.file={config}",
                f"--storage.tsdb.path={tmp_path / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError("prometheus did not start")

    started: list[subprocess.Popen] = []
    yield start
    for proc in started:
        proc.terminate()
        proc.wait(10)


def _query(prometheus: str, promql: str) -> dict:
    answer = httpx.get(f"{prometheus}/api/v1/query", params={"query": promql}, timeout=10)
    body = answer.json()
    assert body["status"] == "success", (promql, body)
    return body["data"]


def test_promql_counts_what_the_gateway_served(own_gateway, make_account, prometheus):
    gateway = own_gateway()  # its own counters, from zero
    server = prometheus(gateway.removeprefix("http://"))
    key = make_account().key
    for _ in range(3):
        httpx.post(
            f"{gateway}/v1/chat/completions",
            json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        ).raise_for_status()
    served = 'sum(gatewayz_requests_total{model="test/echo",provider="mock",status="200"})'
    deadline = time.monotonic() + 30
    while True:
        result = _query(server, served)["result"]
        if result and float(result[0]["value"][1]) == 3:
            break
        assert time.monotonic() < deadline, f"Prometheus read {result}"
        time.sleep(0.5)
    up = _query(server, 'up{job="gatewayz"}')["result"]
    assert up[0]["value"][1] == "1"
    for _, _, target in dashboard_targets():
        if "expr" in target:  # parsed and evaluated by the real engine
            _query(server, target["expr"])
