"""Writes to the credit ledger. Every balance change is one ledger row plus one conditional
UPDATE of the account, in one transaction, so concurrent writers can never overspend."""

from __future__ import annotations

import logging
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import User
from billing.models import CreditAccount, CreditHold, LedgerEntry, PendingAvailChange
from billing.redis_credit import (
    credit_avail_seed,
    credit_pending_mirror,
)
from core.redis_link import redis_link
from core.redis_sync import UNREACHABLE

log = logging.getLogger(__name__)


class InsufficientCredit(Exception):
    pass


def credit_account_ensure(*, user: User) -> CreditAccount:
    account, _ = CreditAccount.objects.get_or_create(user=user)
    return account


@transaction.atomic
def ledger_entry_add(
    *, user_id: int, kind: str, amount: Decimal, reference: str, memo: str = ""
) -> LedgerEntry:
    """Applies `amount` (negative to spend) once per (kind, reference); a repeat returns the
    first entry and changes nothing."""
    existing = LedgerEntry.objects.filter(kind=kind, reference=reference).first()
    if existing is not None:
        return existing
    CreditAccount.objects.get_or_create(user_id=user_id)
    CreditAccount.objects.filter(user_id=user_id).update(balance=F("balance") + amount)
    # Still under the row lock taken by the UPDATE: see billing.redis_credit.
    request_id = reference if kind == LedgerEntry.Kind.USAGE else ""
    pending = _avail_mirror(user_id=user_id, amount=amount, request_id=request_id)
    balance = CreditAccount.objects.values_list("balance", flat=True).get(user_id=user_id)
    try:
        with transaction.atomic():
            return LedgerEntry.objects.create(
                user_id=user_id,
                kind=kind,
                amount=amount,
                balance_after=balance,
                reference=reference,
                memo=memo,
            )
    except IntegrityError:
        # A concurrent writer recorded the same reference first: undo ours.
        CreditAccount.objects.filter(user_id=user_id).update(balance=F("balance") - amount)
        if pending is not None:
            pending.delete()
        else:
            _avail_mirror(user_id=user_id, amount=-amount, request_id="")
        return LedgerEntry.objects.get(kind=kind, reference=reference)


def _avail_mirror(*, user_id: int, amount: Decimal, request_id: str) -> PendingAvailChange | None:
    """Mirrors one balance change into the user's Redis `avail` (call under the account
    row's lock); returns its record if it stays to be applied later."""
    changes = avail_changes_record([(user_id, amount, request_id)])
    return changes[0] if avail_changes_mirror(changes) else None


def avail_changes_record(changes: list[tuple[int, Decimal, str]]) -> list[PendingAvailChange]:
    """Records (user id, amount, request id or '') balance changes to be mirrored into the
    users' Redis `avail` (call under the account rows' locks, in the transaction making
    the changes). A usage change names its request: mirrored, it also releases the hold
    Redis keeps for it, and is not taken for a request Redis settled itself."""
    if not settings.REDIS_URL or not changes:
        return []
    return PendingAvailChange.objects.bulk_create(
        PendingAvailChange(user_id=user_id, amount=amount, request_id=request_id)
        for user_id, amount, request_id in changes
    )


def avail_changes_mirror(changes: list[PendingAvailChange]) -> list[PendingAvailChange]:
    """Applies recorded changes to Redis at once (call under the account rows' locks), each
    under its record's id, which Redis remembers (APPLY_PENDING): a reply lost on the way,
    or Redis unreachable, leaves the record to be applied later, and still once. Returns
    the records that stay."""
    if not changes or not redis_link.up:  # Redis away: no wait for a timeout
        return changes
    by_user: dict[int, list[PendingAvailChange]] = defaultdict(list)
    for change in changes:
        by_user[change.user_id].append(change)
    mirrored: set[int] = set()
    for user_id, own in by_user.items():
        try:
            credit_pending_mirror(
                user_id=user_id, changes=[(c.pk, c.amount, c.request_id) for c in own]
            )
        except UNREACHABLE as exc:
            log.warning("Redis unreachable (%s): balance changes wait to be mirrored", exc)
            return [c for c in changes if c.pk not in mirrored]
        mirrored.update(c.pk for c in own)
        PendingAvailChange.objects.filter(pk__in=[c.pk for c in own]).delete()
    return []


@transaction.atomic
def credit_pending_apply_user(*, user_id: int) -> int:
    """Mirrors one user's pending balance changes into Redis, under the account row's lock
    (so no seed or other change interleaves), and deletes them; returns how many."""
    CreditAccount.objects.select_for_update().filter(user_id=user_id).first()
    changes = list(
        PendingAvailChange.objects.filter(user_id=user_id)
        .order_by("id")
        .values_list("id", "amount", "request_id")[:1000]
    )
    if changes:
        credit_pending_mirror(user_id=user_id, changes=changes)
        PendingAvailChange.objects.filter(id__in=[c[0] for c in changes]).delete()
    return len(changes)


def credit_pending_apply() -> int:
    """Mirrors every balance change made while Redis was unreachable (when it is back:
    gateway.guards.credit's probe, and Celery beat every minute); returns how many."""
    applied = 0
    users = PendingAvailChange.objects.values_list("user_id", flat=True).distinct()
    for user_id in users:
        while count := credit_pending_apply_user(user_id=user_id):
            applied += count
    return applied


def credit_grant(*, user: User, amount: Decimal, reference: str, memo: str = "") -> LedgerEntry:
    if amount <= 0:
        raise ValueError("a grant must be positive")
    return ledger_entry_add(
        user_id=user.pk, kind=LedgerEntry.Kind.GRANT, amount=amount, reference=reference, memo=memo
    )


@transaction.atomic
def credit_avail_seed_from_ledger(*, user_id: int) -> None:
    """Creates the user's Redis `avail` from the Postgres balance (first admission). Under
    the row lock, so a grant committing meanwhile is either in the balance read here or
    added to Redis after the seed, never both nor neither."""
    account, _ = CreditAccount.objects.select_for_update().get_or_create(user_id=user_id)
    if credit_avail_seed(user_id=user_id, balance=account.balance):
        # The balance read here holds every change still waiting to be mirrored.
        PendingAvailChange.objects.filter(user_id=user_id).delete()


@transaction.atomic
def credit_hold_create(
    *, user_id: int, request_id: str, amount: Decimal, journal: str = ""
) -> CreditHold:
    """Reserves `amount` if the available balance covers it, atomically with the check;
    `journal` is the request's journal entry (billing.lost_requests)."""
    admitted = CreditAccount.objects.filter(
        user_id=user_id, balance__gte=F("held") + amount
    ).update(held=F("held") + amount)
    if not admitted:
        raise InsufficientCredit
    ttl = timedelta(seconds=settings.GATEWAYZ_HOLD_TTL_SECONDS)
    return CreditHold.objects.create(
        user_id=user_id,
        request_id=request_id,
        amount=amount,
        expires_at=timezone.now() + ttl,
        journal=journal,
    )


def credit_hold_delivered(*, request_id: str, delivered: str) -> None:
    """Records what a stream has delivered so far in its hold's journal, and moves the
    hold's expiry on: the request is alive. A settled request's hold is gone: no-op."""
    expires_at = timezone.now() + timedelta(seconds=settings.GATEWAYZ_HOLD_TTL_SECONDS)
    CreditHold.objects.filter(request_id=request_id).update(
        delivered=delivered, expires_at=expires_at
    )


def credit_hold_release(*, request_id: str) -> bool:
    """Gives a hold's credit back. Only the caller that deletes the row gives it back, so a
    settlement and the expiry task racing for one hold cannot both release it."""
    hold = CreditHold.objects.filter(request_id=request_id).first()
    if hold is None:
        return False
    deleted, _ = CreditHold.objects.filter(pk=hold.pk).delete()
    if deleted:
        CreditAccount.objects.filter(user_id=hold.user_id).update(held=F("held") - hold.amount)
    return bool(deleted)


def credit_holds_release_expired(*, now: object = None) -> int:
    now = now or timezone.now()
    released = 0
    for request_id in CreditHold.objects.filter(expires_at__lte=now).values_list(
        "request_id", flat=True
    ):
        with transaction.atomic():
            released += credit_hold_release(request_id=request_id)
    return released
