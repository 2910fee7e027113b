"""Writes settled requests from the usage stream to Postgres, a batch per transaction:
usage ledger rows, account balances and request log rows. Idempotent on request id, so a
batch replayed after a crash changes nothing twice."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import ApiKey
from billing.models import CreditAccount, LedgerEntry
from monitoring.models import RequestLog

LOG_FIELDS = {f.name for f in RequestLog._meta.concrete_fields} - {"id", "user", "api_key"}


@transaction.atomic
def usage_batch_apply(*, events: list[dict[str, Any]]) -> int:
    """Returns how many requests were new."""
    by_id = {e["request_id"]: e for e in events}  # a replay within the batch counts once
    charged_users = sorted({e["user_id"] for e in by_id.values() if Decimal(e["cost"]) > 0})
    # Lock the charged accounts first, in one order: concurrent writers (and grants) queue
    # here, so the check below sees every batch that committed before ours.
    accounts = {
        a.user_id: a
        for a in CreditAccount.objects.select_for_update()
        .filter(user_id__in=charged_users)
        .order_by("pk")
    }
    done = set(RequestLog.objects.filter(request_id__in=by_id).values_list("request_id", flat=True))
    fresh = [e for rid, e in by_id.items() if rid not in done]
    now = timezone.now()

    entries = []
    for event in fresh:
        cost = Decimal(event["cost"])
        if cost > 0:
            account = accounts.get(event["user_id"]) or CreditAccount.objects.create(
                user_id=event["user_id"]
            )
            accounts[event["user_id"]] = account
            account.balance -= cost
            entries.append(
                LedgerEntry(
                    user_id=event["user_id"],
                    kind=LedgerEntry.Kind.USAGE,
                    amount=-cost,
                    balance_after=account.balance,
                    reference=event["request_id"],
                    created_at=now,
                )
            )
    for account in accounts.values():
        account.updated_at = now
    CreditAccount.objects.bulk_update(accounts.values(), ["balance", "updated_at"])
    LedgerEntry.objects.bulk_create(entries)
    RequestLog.objects.bulk_create(
        [
            RequestLog(
                user_id=e["user_id"],
                api_key_id=e["api_key_id"],
                created_at=now,
                **{k: v for k, v in e.items() if k in LOG_FIELDS and k != "created_at"},
            )
            for e in fresh
        ],
        ignore_conflicts=True,
    )
    keys = {e["api_key_id"] for e in fresh if e["api_key_id"]}
    if keys:
        ApiKey.objects.filter(pk__in=keys).exclude(
            last_used_at__gt=now - timedelta(minutes=1)
        ).update(last_used_at=now)
    return len(fresh)
