"""The production static files: collectstatic with the production storage (hashed names,
compressed copies) finds every file the pages and the vendored packages refer to."""

from __future__ import annotations

import pytest
from django.core.management import call_command


@pytest.mark.smoke
def test_collectstatic_builds_the_production_manifest(settings, tmp_path):
    settings.STATIC_ROOT = tmp_path
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    call_command("collectstatic", "--noinput", verbosity=0)
    manifest = (tmp_path / "staticfiles.json").read_text()
    for name in (
        "vendor/tabler/tabler.min.css",
        "vendor/htmx/htmx.min.js",
        "css/site.css",
        "admin/css/base.css",
    ):
        assert f'"{name}"' in manifest
    assert list(tmp_path.glob("vendor/tabler/tabler.min.*.css.gz"))
