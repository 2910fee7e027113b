"""The documented production variables (deploy/production.env.example), filled in."""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "deploy" / "production.env.example"


def production_env() -> dict[str, str]:
    """The example file's variables, every <placeholder> filled with a generated value."""
    env: dict[str, str] = {}
    for line in EXAMPLE.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition("=")
        if value == "<fernet-key>":
            value = Fernet.generate_key().decode()
        elif re.fullmatch(r"<[^>]+>", value):
            value = secrets.token_urlsafe(50)
        env[name.strip()] = value
    return env
