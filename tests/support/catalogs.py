"""The suite's catalog (tests/data/catalog.toml) loaded inside a test's own transaction, for
tests that read it without serving through it (the session's `test_catalog` is committed
for the gateway processes, and a transactional test's flush would take it away)."""

from __future__ import annotations

from pathlib import Path

import pytest

from providers.catalog import Catalog, catalog_build
from providers.catalog_file import catalog_file_load

CATALOG = Path(__file__).parent.parent / "data" / "catalog.toml"


def catalog_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Catalog:
    text = (
        CATALOG.read_text()
        .replace("{mock}", "http://127.0.0.1:9")
        .replace("{dead}", "http://127.0.0.1:9")
    )
    path = tmp_path / "catalog.toml"
    path.write_text(text)
    catalog_file_load(path=path)
    monkeypatch.setenv("GATEWAYZ_TEST_UPSTREAM_KEY", "sk-test")  # as the gateway runs
    return catalog_build()
