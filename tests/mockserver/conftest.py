"""The mock's own tests use the session's mock upstream process (tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.support.servers import Upstream


@pytest.fixture(scope="module")
def api_key(mock_upstream: Upstream) -> str:
    return mock_upstream.api_key


@pytest.fixture(scope="module")
def mock_url(mock_upstream: Upstream) -> str:
    return mock_upstream.url
