"""Keeping upstream calls on the public internet: a provider's base URL (admin-added, or
later a customer's own) must not point the gateway at our private network, its loopback
or a cloud metadata address (169.254.169.254).

Two checks, because a name can resolve differently later (DNS rebinding):
- when a base URL is saved or loaded into the catalog: a host that is an address, or
  `localhost`, must be an allowed one;
- on every connection: the resolver the upstream client uses drops the addresses that
  are not allowed (a name with none left cannot be reached). Resolutions are cached, so
  this costs nothing per request.

GATEWAYZ_UPSTREAM_NETWORKS: `public` (the default), `loopback` (also 127.0.0.0/8 and ::1:
the offline demo provider of `make run`, the tests' mock), or `private` (also private networks:
a self-hosted model on the same network, by an operator's choice). Link-local addresses,
where cloud metadata services answer, are never allowed.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from django.conf import settings
from django.core.exceptions import ValidationError

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def address_allowed(address: Address, networks: str | None = None) -> bool:
    networks = networks or settings.GATEWAYZ_UPSTREAM_NETWORKS
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_loopback:
        return networks in ("loopback", "private")
    if address.is_link_local or address.is_unspecified or address.is_multicast:
        return False  # cloud metadata services live at link-local addresses: never
    if address.is_global:
        return True
    return address.is_private and networks == "private"


def base_url_problem(url: str) -> str | None:
    """Why a base URL may not be used, or None."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"'{url}' is not an http(s) URL."
    host = parts.hostname
    if host == "localhost" or host.endswith(".localhost"):
        host = "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None  # a name: checked on every connection (GuardedResolver)
    if not address_allowed(address):
        return (
            f"'{parts.hostname}' is a {'loopback' if address.is_loopback else 'non-public'} "
            f"address; GATEWAYZ_UPSTREAM_NETWORKS={settings.GATEWAYZ_UPSTREAM_NETWORKS} "
            "does not allow it."
        )
    return None


def base_url_validate(url: str) -> None:
    """A model field validator. `{NAME}` placeholders are filled from the environment
    later, and checked again then (providers.catalog)."""
    problem = base_url_problem(url.replace("{", "").replace("}", ""))
    if problem:
        raise ValidationError(problem)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, minus the addresses upstream calls may not reach."""

    def __init__(self) -> None:
        self._resolver = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        allowed = [r for r in results if address_allowed(ipaddress.ip_address(r["host"]))]
        if not allowed:
            raise OSError(f"{host} resolves only to addresses upstream calls may not reach")
        return allowed

    async def close(self) -> None:
        await self._resolver.close()
