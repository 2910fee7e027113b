"""The public pages' queries are bounded and their figures cached: a visit, once the cache
holds them, costs a handful of queries however big the log is."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

from tests.support.catalogs import catalog_loaded


@pytest.mark.django_db
@pytest.mark.smoke
@pytest.mark.parametrize("path", ["/", "/models", "/models/test/echo", "/pricing", "/status"])
def test_public_pages_are_a_few_queries(django_assert_max_num_queries, path, tmp_path, monkeypatch):
    import providers.catalog

    catalog_loaded(tmp_path, monkeypatch)
    monkeypatch.setattr(providers.catalog, "_page_catalog", None)  # this test's catalog
    cache.clear()
    client = Client()
    with django_assert_max_num_queries(15):  # cold: the catalog and the figures computed
        assert client.get(path).status_code == 200
    with django_assert_max_num_queries(4):  # then from the caches
        assert client.get(path).status_code == 200
