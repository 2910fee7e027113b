"""Provider credentials at rest: encrypted with Fernet (AES-128-CBC + HMAC-SHA256) under a
key ring, `GATEWAYZ_CREDENTIAL_KEYS` (comma-separated Fernet keys, the first the current
one). Every key of the ring decrypts; only the first encrypts. To rotate: put a new key
first, run `manage.py credentials_rotate` (re-encrypts every stored credential under it),
then drop the old key. A credential is decrypted when the catalog is built (platform keys)
or a Gatewayz key is loaded (users' own keys), never per request, and never leaves the
process but in the upstream request's auth header.

Without the setting, a DEBUG run (`make run`) uses a key generated once per checkout in
var/, as for the other secrets; any other run refuses to store or read one.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

if TYPE_CHECKING:
    from cryptography.fernet import MultiFernet


class CredentialUnreadable(Exception):
    """No key of the ring opens the stored credential."""


# cryptography (OpenSSL's bindings, ~8 MB per process) is imported on first use: an
# inference worker with no stored credential never loads it.


def _keys() -> list[str]:
    configured = [k.strip() for k in settings.GATEWAYZ_CREDENTIAL_KEYS if k.strip()]
    if configured:
        return configured
    if not settings.DEBUG:
        raise ImproperlyConfigured(
            "GATEWAYZ_CREDENTIAL_KEYS must be set to store provider credentials "
            "(generate one with: python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
    path = settings.VAR_DIR / "gatewayz_credential_key.txt"
    if not path.exists():
        from cryptography.fernet import Fernet

        settings.VAR_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode(), encoding="utf-8")
    return [path.read_text(encoding="utf-8").strip()]


@cache
def key_ring() -> MultiFernet:
    from cryptography.fernet import Fernet, MultiFernet

    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as exc:  # not a Fernet key: say which setting, never the value
        raise ImproperlyConfigured(
            f"GATEWAYZ_CREDENTIAL_KEYS holds an invalid key: {exc}"
        ) from None


def credential_encrypt(raw: str) -> str:
    return key_ring().encrypt(raw.encode()).decode()


def credential_decrypt(token: str) -> str:
    """Raises CredentialUnreadable when no key of the ring opens it."""
    from cryptography.fernet import InvalidToken

    try:
        return key_ring().decrypt(token.encode()).decode()
    except InvalidToken:
        raise CredentialUnreadable from None


def credential_rotate(token: str) -> str:
    """The same credential under the ring's current key (CredentialUnreadable if none
    opens it)."""
    from cryptography.fernet import InvalidToken

    try:
        return key_ring().rotate(token.encode()).decode()
    except InvalidToken:
        raise CredentialUnreadable from None


def credential_hint(raw: str) -> str:
    """What may be shown of a credential: its last four characters, if it is long enough
    for them to give nothing useful away."""
    return f"…{raw[-4:]}" if len(raw) >= 16 else "…"
