"""What the dashboards ask of Prometheus, and what the gateway answers it: metric names in
PromQL expressions and in a /metrics page."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

DASHBOARDS = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards"
PROMQL_WORDS = {
    "sum",
    "max",
    "min",
    "avg",
    "count",
    "rate",
    "increase",
    "histogram_quantile",
    "clamp_min",
    "vector",
    "or",
    "and",
    "unless",
}


def dashboard_targets() -> Iterator[tuple[str, str, dict]]:
    """(dashboard file, panel title, target) for every query of every dashboard."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                yield path.name, panel["title"], target


def metric_names(expr: str) -> set[str]:
    bare = re.sub(r'"[^"]*"', "", expr)  # label values
    bare = re.sub(r"\{[^}]*\}", "", bare)  # matchers
    bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)  # range windows
    bare = re.sub(r"(?<![\w:])\d+(\.\d+)?(e-?\d+)?", "", bare)  # numbers, 1e-9 included
    return set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", bare)) - PROMQL_WORDS


def exported_names(page: str) -> set[str]:
    names: set[str] = set()
    for family in text_string_to_metric_families(page):
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}_{part}" for part in ("bucket", "sum", "count"))
        else:
            names.add(family.name)
    return names
