"""Customers' own provider keys (BYOK): stored, replaced, removed, and how a request uses
them. A change is announced like a change of the user, so every gateway process reloads
the user's keys within a poll (gateway.invalidation)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404

from core.models import CacheInvalidation, invalidation_announce
from providers.catalog import Deployment
from providers.credentials import CredentialUnreadable, credential_decrypt
from providers.models import Provider, ProviderKey


def provider_keys_of(*, user_id: int) -> QuerySet[ProviderKey]:
    keys = ProviderKey.objects.filter(user_id=user_id)
    return keys.select_related("provider").order_by("id")


def provider_key_get_for_user(*, user_id: int, key_id: int) -> ProviderKey:
    """A key the user owns; another user's is indistinguishable from a missing one."""
    key = provider_keys_of(user_id=user_id).filter(pk=key_id).first()
    if key is None:
        raise Http404("No such provider key.")
    return key


@transaction.atomic
def provider_key_put(*, user_id: int, provider: Provider, raw: str) -> tuple[ProviderKey, bool]:
    """Stores the user's key for `provider`, replacing the one they had; True if new."""
    mine = ProviderKey.objects.select_for_update().filter(user_id=user_id, provider=provider)
    key = mine.first()
    created = key is None
    if key is None:
        key = ProviderKey(user_id=user_id, provider=provider)
    key.key_set(raw)
    key.save()
    invalidation_announce(CacheInvalidation.Kind.USER, str(user_id))
    return key, created


@transaction.atomic
def provider_key_delete(*, key: ProviderKey) -> None:
    user_id = key.user_id
    key.delete()
    invalidation_announce(CacheInvalidation.Kind.USER, str(user_id))


def provider_keys_sealed(user_id: int) -> dict[str, str]:
    """Provider slug -> the user's key as stored, encrypted: what a copy of a loaded Gatewayz
    key may hold outside the database (gateway.keycache_shared)."""
    return dict(
        ProviderKey.objects.filter(user_id=user_id).values_list("provider__slug", "ciphertext")
    )


def provider_keys_open(sealed: dict[str, str]) -> dict[str, str]:
    """Provider slug -> the user's key, decrypted (when a Gatewayz key is loaded). A key no
    key of the ring opens any more is left out: the platform's serves instead."""
    keys = {}
    for slug, ciphertext in sealed.items():
        try:
            keys[slug] = credential_decrypt(ciphertext)
        except CredentialUnreadable:
            continue
    return keys


def byok_deployment(deployment: Deployment, raw_key: str) -> Deployment:
    """The deployment as the user's own key serves it: their key, and the platform's fee
    (a share of the list price) in place of the price."""
    fee: Decimal = settings.GATEWAYZ_BYOK_FEE
    return replace(
        deployment,
        api_key=raw_key,
        byok=True,
        input_price=deployment.input_price * fee,
        output_price=deployment.output_price * fee,
        cached_input_price=deployment.cached_input_price * fee,
        cache_write_price=deployment.cache_write_price * fee,
        cache_write_1h_price=deployment.cache_write_1h_price * fee,
        per_image_price=deployment.per_image_price * fee,
        markup=Decimal(1),  # the fee is the price: the provider bills the customer
    )


def with_own_keys(
    deployments: tuple[Deployment, ...], own: dict[str, str], *, keep_order: bool
) -> tuple[Deployment, ...]:
    """The request's deployments with the user's own keys where they hold one. Those go
    first, unless the request ordered or sorted the providers itself (`keep_order`)."""
    mine = tuple(byok_deployment(d, own[d.provider]) for d in deployments if d.provider in own)
    if not mine:
        return deployments
    if keep_order:
        return tuple(
            byok_deployment(d, own[d.provider]) if d.provider in own else d for d in deployments
        )
    return mine + tuple(d for d in deployments if d.provider not in own)
