"""What a key may do beyond being valid: from which addresses and web pages, with which
models, for which scopes. A key with none of these set is unrestricted and costs nothing
per request (its identity carries no restrictions object at all).

A violation is a 403 that names the rule the request broke, and nothing about any other key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

SCOPES = {
    "inference": "call models (/v1/...)",
    "usage:read": "read balance, usage and transactions",
    "keys:manage": "create, change and revoke API keys",
    "billing": "buy credits and see payments",
}
ALL_SCOPES = tuple(SCOPES)
MAX_ENTRIES = 100


class KeyRestricted(Exception):
    """A request outside what its key allows; `code` names the rule."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class KeyRestrictions:
    networks: tuple[Network, ...] = ()
    referrers: tuple[str, ...] = ()  # domains; each allows its subdomains too
    models: tuple[str, ...] = ()  # glob patterns on model ids
    scopes: frozenset[str] = frozenset(ALL_SCOPES)

    def require_scope(self, scope: str) -> None:
        if scope not in self.scopes:
            raise KeyRestricted(
                "scope_missing",
                f"This API key does not have the '{scope}' scope ({SCOPES[scope]}).",
            )

    def check_address(self, address: Address | None) -> None:
        if not self.networks:
            return
        if address is None or not any(address in network for network in self.networks):
            raise KeyRestricted(
                "ip_not_allowed",
                f"This API key may not be used from {address or 'an unknown address'}.",
            )

    def check_referrer(self, referrer: str | None) -> None:
        if not self.referrers:
            return
        host = (urlsplit(referrer).hostname or "") if referrer else ""
        if not any(host == d or host.endswith("." + d) for d in self.referrers):
            shown = host or "a request without a Referer or Origin"
            raise KeyRestricted(
                "referrer_not_allowed", f"This API key may not be used from {shown}."
            )

    def check_model(self, *names: str) -> None:
        """Allowed if the requested name or the model's canonical id matches a pattern."""
        if self.models and not any(fnmatchcase(n, p) for n in names for p in self.models):
            raise KeyRestricted(
                "model_not_allowed", f"This API key may not use the model '{names[0]}'."
            )


def restrictions_of(
    ips: Iterable[str], referrers: Iterable[str], models: Iterable[str], scopes: Iterable[str]
) -> KeyRestrictions | None:
    """The restrictions of a key's stored fields; None when it has none."""
    restrictions = KeyRestrictions(
        networks=tuple(ipaddress.ip_network(ip, strict=False) for ip in ips),
        referrers=tuple(referrers),
        models=tuple(models),
        scopes=frozenset(scopes),
    )
    return None if restrictions == KeyRestrictions() else restrictions


def _list(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValidationError(f"{what} must be a list of non-empty strings.")
    if len(value) > MAX_ENTRIES:
        raise ValidationError(f"{what} may hold at most {MAX_ENTRIES} entries.")
    return [v.strip() for v in value]


def ips_clean(value: Any) -> list[str]:
    """Addresses and networks, IPv4 or IPv6, normalised (`10.0.0.7/8` → `10.0.0.0/8`)."""
    cleaned = []
    for entry in _list(value, "Allowed IPs"):
        try:
            cleaned.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise ValidationError(f"'{entry}' is not an IP address or network.") from None
    return cleaned


def referrers_clean(value: Any) -> list[str]:
    cleaned = []
    for entry in _list(value, "Allowed referrers"):
        domain = entry.lower().rstrip(".")
        if "/" in domain or ":" in domain or " " in domain or "." not in domain.strip("."):
            raise ValidationError(f"'{entry}' is not a domain (e.g. example.com).")
        cleaned.append(domain.lstrip("."))
    return cleaned


def models_clean(value: Any) -> list[str]:
    return _list(value, "Allowed models")


def scopes_clean(value: Any) -> list[str]:
    scopes = _list(value, "Scopes")
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise ValidationError(f"Unknown scope '{unknown[0]}': one of {', '.join(SCOPES)}.")
    return sorted(set(scopes), key=ALL_SCOPES.index)


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


def client_address(
    peer: str | None, forwarded_for: str | None, trusted: tuple[Network, ...]
) -> Address | None:
    """The client's address: the connection's peer, unless the peer is one of our trusted
    proxies; then the nearest address in X-Forwarded-For that is not a trusted proxy (each
    proxy appends the address it got the request from, so only the right end can be
    believed: whatever the client itself put in the header stands to the left of it)."""
    address = _address(peer) if peer else None
    if address is None or not forwarded_for or not any(address in n for n in trusted):
        return address
    for hop in reversed(forwarded_for.split(",")):
        forwarded = _address(hop)
        if forwarded is None:
            return address  # garbage: trust nothing further left
        address = forwarded
        if not any(address in n for n in trusted):
            return address
    return address
