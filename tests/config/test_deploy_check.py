"""`manage.py check --deploy` is clean under the documented production variables
(deploy/production.env.example), and each HTTPS setting follows GATEWAYZ_HTTPS."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.production import ROOT, production_env

pytestmark = pytest.mark.smoke


def _check(extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG"}}
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **keep,
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
            "REDIS_URL": os.environ.get("REDIS_URL", ""),
            **extra,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_documented_production_variables_pass_check_deploy():
    done = _check(production_env())
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no issues" in done.stdout


def test_without_https_check_deploy_names_what_is_missing():
    env = production_env()
    env["GATEWAYZ_HTTPS"] = "0"
    done = _check(env)
    assert done.returncode != 0
    for warning in ("W004", "W008", "W012", "W016"):
        assert warning in done.stderr + done.stdout
