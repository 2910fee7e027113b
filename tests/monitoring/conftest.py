"""What the monitoring tests share: the suite's catalog in the test's own transaction, and
a log holding only the test's own rows."""

from __future__ import annotations

import pytest

from tests.support.catalogs import catalog_loaded
from tests.support.request_logs import log_emptied


@pytest.fixture
def catalog(tmp_path, monkeypatch):
    return catalog_loaded(tmp_path, monkeypatch)


@pytest.fixture
def only_this_tests_rows(db):
    log_emptied()
