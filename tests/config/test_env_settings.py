"""Settings fail loudly on bad values."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_decimal, env_int, env_list, env_str

pytestmark = pytest.mark.smoke


@pytest.mark.parametrize(
    ("helper", "raw"), [(env_bool, "maybe"), (env_int, "ten"), (env_decimal, "x1")]
)
def test_it_refuses_bad_values(monkeypatch, helper, raw):
    monkeypatch.setenv("GWZ_TEST_SETTING", raw)
    with pytest.raises(ImproperlyConfigured, match="GWZ_TEST_SETTING"):
        helper("GWZ_TEST_SETTING", "1") if helper is env_decimal else helper("GWZ_TEST_SETTING", 1)


def test_it_enforces_minimums(monkeypatch):
    monkeypatch.setenv("GWZ_TEST_SETTING", "5")
    with pytest.raises(ImproperlyConfigured, match="below its minimum"):
        env_int("GWZ_TEST_SETTING", 10, minimum=10)


def test_it_reads_secrets_from_files(monkeypatch, tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    monkeypatch.setenv("GWZ_TEST_SETTING_FILE", str(secret))
    assert env_str("GWZ_TEST_SETTING") == "s3cret"
    monkeypatch.setenv("GWZ_TEST_SETTING_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured, match="cannot be read"):
        env_str("GWZ_TEST_SETTING")


def test_a_key_ring_is_read_from_a_file_too(monkeypatch, tmp_path):
    """GATEWAYZ_CREDENTIAL_KEYS is a list of secrets: `_FILE` applies to lists as to strings,
    one key a line or comma-separated."""
    ring = tmp_path / "keys"
    ring.write_text("new-key\nold-key, older-key\n")
    monkeypatch.setenv("GWZ_TEST_SETTING", "from-the-environment")
    monkeypatch.setenv("GWZ_TEST_SETTING_FILE", str(ring))
    assert env_list("GWZ_TEST_SETTING") == ["new-key", "old-key", "older-key"]


def test_production_refuses_to_start_without_secrets(tmp_path):
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; from django.conf import settings; settings.SECRET_KEY",
        ],
        env={
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PATH": "",
            "GATEWAYZ_VAR_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr
