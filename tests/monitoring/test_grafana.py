"""The Grafana dashboards (deploy/grafana): the files are their generator's output, every
PromQL query names only metrics the gateway exports, and every SQL query runs on the
rollups' tables."""

from __future__ import annotations

import importlib.util
import re

import httpx
import pytest
from django.db import connection

from tests.support.promql import DASHBOARDS, dashboard_targets, exported_names, metric_names


def _generator():
    spec = importlib.util.spec_from_file_location(
        "build_dashboards", DASHBOARDS.parent / "build_dashboards.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_six_dashboards_as_their_generator_writes_them():
    rendered = _generator().rendered()
    assert len(rendered) == 6
    for name, text in rendered.items():
        assert (DASHBOARDS / name).read_text() == text, (
            f"run deploy/grafana/build_dashboards.py: {name}"
        )


def test_every_query_names_only_exported_metrics(own_gateway, make_account):
    gateway = own_gateway()  # the production stack's (Redis: the queue and stream gauges)
    httpx.post(  # a served request: every labelled family has a series to show
        f"{gateway}/v1/chat/completions",
        json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {make_account().key}"},
    ).raise_for_status()
    exported = exported_names(httpx.get(f"{gateway}/metrics").text)
    asked = {
        (board, title, name)
        for board, title, target in dashboard_targets()
        if "expr" in target
        for name in metric_names(target["expr"])
    }
    assert asked, "no PromQL found"
    unknown = sorted(item for item in asked if item[2] not in exported)
    assert not unknown, f"queries name metrics the gateway does not export: {unknown}"


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'postgresql'", reason="Grafana reads Postgres")
def test_every_sql_query_runs():
    queries = [t["rawSql"] for _, _, t in dashboard_targets() if "rawSql" in t]
    assert queries
    for sql in queries:
        window = re.sub(r"\$__timeFilter\((\w+)\)", r"\1 > now() - interval '7 days'", sql)
        with connection.cursor() as cursor:
            cursor.execute(window)
            cursor.fetchall()
