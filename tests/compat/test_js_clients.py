"""The JavaScript clients (tests/js: `openai`, `@anthropic-ai/sdk`, the Vercel AI SDK with its
OpenAI, Anthropic and OpenAI-compatible providers), run by `node --test` against a gateway
started here, with a funded key of their own. Installed by `make install` (`npm ci`, from
the lockfile); skipped only on a machine without Node."""

from __future__ import annotations

import os
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest

JS = Path(__file__).resolve().parent.parent / "js"
NODE = shutil.which("node")

pytestmark = [
    pytest.mark.smoke,
    pytest.mark.skipif(NODE is None, reason="Node is not installed on this machine"),
]


def test_the_javascript_clients_pass_their_tests(gateway, make_account):
    assert (JS / "node_modules").is_dir(), "run `make install` (npm ci in tests/js)"
    account = make_account(credit=Decimal("5"))
    env = {**os.environ, "GATEWAY_URL": gateway, "GATEWAY_KEY": account.key}

    run = subprocess.run(
        [
            str(NODE),
            "--test",
            "--test-reporter=spec",
            *sorted(p.name for p in JS.glob("*.test.js")),
        ],
        cwd=JS,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert run.returncode == 0, run.stdout[-20000:] + run.stderr[-5000:]
