"""Turns a benchmark run into the Markdown table the README shows: medians over rounds, and
ratios against the floor and LiteLLM measured in the same rounds."""

from __future__ import annotations

import re
import statistics
from pathlib import Path
from typing import Any

MARK_START, MARK_END = "<!-- results:start -->", "<!-- results:end -->"


def _median(rounds: list[dict[str, Any]], target: str, scenario: str, metric: str) -> float | None:
    values = [
        r[target][scenario][metric]
        for r in rounds
        if target in r and metric in r[target].get(scenario, {})
    ]
    return statistics.median(values) if values else None


def _ratio(
    rounds: list[dict[str, Any]], scenario: str, metric: str, a: str, b: str
) -> float | None:
    """Median over rounds of a/b, each round's pair measured minutes apart."""
    values = [
        r[a][scenario][metric] / r[b][scenario][metric]
        for r in rounds
        if a in r and b in r and r[b][scenario].get(metric)
    ]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str = ".0f", suffix: str = "") -> str:
    return "–" if value is None else f"{value:{spec}}{suffix}"


def render(results: dict[str, Any]) -> str:
    rounds = results["rounds"]
    targets = list(rounds[0])
    scenarios = list(rounds[0][targets[0]])
    lines = [
        f"Run {results['when']}: {len(rounds)} rounds of {results['duration_s']:g} s per cell, "
        "medians. Load generator and upstream on core 0, server on core 1.",
        "",
        "| scenario | target | RPS | p50 ms | p99 ms | +p50 over direct ms | server CPU µs/req "
        "| × floor CPU | PG+Redis CPU µs/req | TTFB p50 ms at 200 streams/s |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in scenarios:
        direct_p50 = _median(rounds, "direct", s, "p50_us")
        for t in targets:
            p50 = _median(rounds, t, s, "p50_us")
            added = (
                None
                if t == "direct" or p50 is None or direct_p50 is None
                else (p50 - direct_p50) / 1000
            )
            vs_floor = (
                "–" if t == "direct" else _fmt(_ratio(rounds, s, "cpu_us", t, "floor"), ".2f", "×")
            )
            lines.append(
                f"| {s} | {t} | {_fmt(_median(rounds, t, s, 'rps'))} "
                f"| {_fmt(p50 and p50 / 1000, '.2f')} "
                f"| {_fmt((_median(rounds, t, s, 'p99_us') or 0) / 1000, '.2f')} "
                f"| {_fmt(added, '.2f')} | {_fmt(_median(rounds, t, s, 'cpu_us'))} "
                f"| {vs_floor} "
                f"| {_fmt(_median(rounds, t, s, 'db_cpu_us'))} "
                f"| {_fmt((v := _median(rounds, t, s, 'ttfb_p50_us')) and v / 1000, '.2f')} |"
            )
    for baseline in (t for t in targets if t.startswith("gatewayz@")):
        lines += ["", f"Gatewayz against {baseline}, same rounds (CPU per request, RPS):", ""]
        for s in scenarios:
            cpu = _ratio(rounds, s, "cpu_us", "gatewayz", baseline)
            rps = _ratio(rounds, s, "rps", "gatewayz", baseline)
            lines.append(f"- {s}: {_fmt(cpu, '.3f', '×')} the CPU, {_fmt(rps, '.3f', '×')} the RPS")
    if "litellm" in targets:
        lines += ["", "Gatewayz against LiteLLM, same rounds (RPS ×, CPU per request ÷):", ""]
        for s in scenarios:
            rps = _ratio(rounds, s, "rps", "gatewayz", "litellm")
            cpu = _ratio(rounds, s, "cpu_us", "litellm", "gatewayz")
            lines.append(
                f"- {s}: {_fmt(rps, '.1f', '×')} the RPS, {_fmt(cpu, '.1f', '×')} less CPU"
            )
    lines += [
        "",
        "| memory (RSS, MB) | start | peak | before soak | after soak |",
        "|---|--:|--:|--:|--:|",
    ]
    for t, m in results["memory"].items():
        lines.append(
            f"| {t} | {_fmt(m.get('rss_start_mb'))} | {_fmt(m.get('rss_peak_mb'))} "
            f"| {_fmt(m.get('rss_before_soak_mb'))} | {_fmt(m.get('rss_after_soak_mb'))} |"
        )
    gw = results["memory"].get("gatewayz", {})
    if gw.get("rss_before_soak_mb"):
        growth = (gw["rss_after_soak_mb"] / gw["rss_before_soak_mb"] - 1) * 100
        lines.append(
            f"\nGatewayz RSS growth over {gw['soak_requests']:,} requests: {growth:+.1f}%."
        )
    held = ", ".join(f"{t} {h['ok']}/{h['streams']} ok" for t, h in results["held_streams"].items())
    lines.append(f"Streams held open at once (20 chunks 50 ms apart): {held}.")
    return "\n".join(lines) + "\n"


def update_readme(readme: Path, table: str, source: str) -> None:
    text = readme.read_text()
    block = f"{MARK_START}\n{table}\nRaw figures: [{source}]({source})\n{MARK_END}"
    pattern = re.compile(re.escape(MARK_START) + ".*?" + re.escape(MARK_END), re.S)
    readme.write_text(
        pattern.sub(lambda _: block, text) if pattern.search(text) else text + "\n" + block + "\n"
    )
