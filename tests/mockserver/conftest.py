"""Runs the real mock server (``python -m mockserver``) in a subprocess.

Self-contained on purpose: no Django, no conftest from above is relied upon.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

API_KEY = "sk-mock-test"
REPO_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def api_key() -> str:
    return API_KEY


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "mockserver",
        "--port",
        str(port),
        "--api-key",
        API_KEY,
    ]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"mock server exited with {proc.returncode}")
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("mock server did not become healthy")
            time.sleep(0.05)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
