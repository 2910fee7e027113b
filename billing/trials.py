"""Free trials: a new customer gets GATEWAYZ_TRIAL_CREDIT credits (0: no trials) to spend
within GATEWAYZ_TRIAL_DAYS, at most GATEWAYZ_TRIAL_DAILY_CAP a day (0: no cap).

One trial per person: the signup's email is normalised (case; and for providers that
ignore them, dots and +tags: b.o.b+x@gmail.com is bob@gmail.com), and one address may start
at most GATEWAYZ_TRIAL_PER_IP_DAY trials a day. A signup refused a trial still gets its
account.

The credit is the account's allowance (billing.allowance): spent before anything else and
taken back when it ends. With a daily cap it comes in daily slices, each the cap or what is
left of the trial, taken back at the day's end (UTC) with what was not spent; Celery beat
grants the next slice and ends trials (`trials_advance`). The first payment a trial user
makes is recorded as its conversion (`trial_converted`). A day before a trial ends its user
is told by mail, with what is left of it."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.emails import email_later
from accounts.models import User
from billing.allowance import allowance_end, allowance_grant
from billing.models import CreditAccount, Trial

ENDING_NOTICE = timedelta(days=1)
GMAIL = {"gmail.com", "googlemail.com"}
# Providers that deliver user+tag@ to user@ (subaddressing).
PLUS_TAGS = GMAIL | {
    "outlook.com",
    "hotmail.com",
    "live.com",
    "msn.com",
    "icloud.com",
    "me.com",
    "fastmail.com",
    "protonmail.com",
    "proton.me",
    "pm.me",
    "yandex.com",
    "zoho.com",
}


def email_key(email: str) -> str:
    local, _, domain = email.strip().lower().rpartition("@")
    if domain == "googlemail.com":
        domain = "gmail.com"
    if domain in PLUS_TAGS:
        local = local.split("+", 1)[0]
    if domain in GMAIL:
        local = local.replace(".", "")
    return f"{local}@{domain}"


def _slice_end(trial: Trial, now: datetime) -> datetime:
    if not trial.daily_cap:
        return trial.ends_at
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return min(midnight, trial.ends_at)


def _grant_slice(trial: Trial, now: datetime) -> None:
    """Grants the trial's next slice (all of it without a daily cap); call under its lock."""
    left = trial.credit - trial.granted
    amount = min(left, trial.daily_cap) if trial.daily_cap else left
    if amount <= 0:
        return
    allowance_grant(
        user_id=trial.user_id,
        amount=amount,
        expires_at=_slice_end(trial, now),
        reference=f"trial:{trial.pk}:{now:%Y%m%d}",
        memo="free trial credit",
    )
    trial.granted += amount
    trial.save(update_fields=["granted"])


def trial_start(*, user: User, ip: str, now: datetime | None = None) -> Trial | None:
    """The user's trial, if trials are on and this person and address may have one."""
    credit = settings.GATEWAYZ_TRIAL_CREDIT
    if credit <= 0:
        return None
    now = now or timezone.now()
    per_ip = settings.GATEWAYZ_TRIAL_PER_IP_DAY
    if (
        ip
        and Trial.objects.filter(ip=ip, started_at__gte=now - timedelta(days=1)).count() >= per_ip
    ):
        return None
    try:
        with transaction.atomic():
            trial = Trial.objects.create(
                user=user,
                email_key=email_key(user.email),
                ip=ip,
                credit=credit,
                daily_cap=settings.GATEWAYZ_TRIAL_DAILY_CAP,
                started_at=now,
                ends_at=now + timedelta(days=settings.GATEWAYZ_TRIAL_DAYS),
            )
            _grant_slice(trial, now)
    except IntegrityError:
        return None  # this person had one
    return trial


def trials_advance(*, now: datetime | None = None) -> int:
    """Ends the trials whose time is up (their credit taken back) and, for trials with a
    daily cap, grants the next day's slice once the last one has expired. Returns how many
    trials it changed."""
    now = now or timezone.now()
    changed = 0
    for pk in Trial.objects.filter(ended_at__isnull=True).values_list("pk", flat=True):
        with transaction.atomic():
            trial = Trial.objects.select_for_update().get(pk=pk)
            account = CreditAccount.objects.select_for_update().get(user_id=trial.user_id)
            expiring = (
                account.allowance_expires_at is not None and account.allowance_expires_at <= now
            )
            if expiring:
                # What was not spent of the slice comes back to the trial (and out of the
                # balance): the next slice may give it again, within the trial's credit.
                trial.granted -= min(account.allowance, trial.granted)
                allowance_end(account=account, reference=f"trial:{trial.pk}:end:{now:%Y%m%dT%H%M}")
            if now >= trial.ends_at:
                trial.ended_at = now
                trial.save(update_fields=["granted", "ended_at"])
                changed += 1
                continue
            if trial.daily_cap and (expiring or account.allowance_expires_at is None):
                trial.save(update_fields=["granted"])
                _grant_slice(trial, now)
                changed += 1
            if trial.ending_told_at is None and trial.ends_at - now <= ENDING_NOTICE:
                _tell_ending(trial, now)
    return changed


def _tell_ending(trial: Trial, now: datetime) -> None:
    """A day before the end: what is left of the trial (unspent now, and to come)."""
    trial.ending_told_at = now
    trial.save(update_fields=["ending_told_at"])
    allowance = CreditAccount.objects.values_list("allowance", flat=True).get(user_id=trial.user_id)
    left = trial.credit - trial.granted + allowance
    email_later(
        user_id=trial.user_id,
        kind="trial_ending",
        ends=f"{trial.ends_at:%Y-%m-%d %H:%M}",
        left=f"{left:.2f}",
    )


def trial_end_now(*, trial: Trial) -> None:
    """Staff end a trial: its unspent credit is taken back."""
    with transaction.atomic():
        locked = Trial.objects.select_for_update().get(pk=trial.pk)
        if locked.ended_at is not None:
            return
        now = timezone.now()
        locked.ends_at = now
        locked.save(update_fields=["ends_at"])
        account = CreditAccount.objects.select_for_update().get(user_id=locked.user_id)
        account.allowance_expires_at = now
        account.save(update_fields=["allowance_expires_at"])
    trials_advance(now=now)


def trial_extend(*, trial: Trial, days: int) -> None:
    """Staff extend a trial by `days` (a running slice keeps its own end)."""
    with transaction.atomic():
        locked = Trial.objects.select_for_update().get(pk=trial.pk)
        if locked.ended_at is not None:
            return
        locked.ends_at += timedelta(days=days)
        locked.save(update_fields=["ends_at"])
        if not locked.daily_cap:
            CreditAccount.objects.filter(user_id=locked.user_id).update(
                allowance_expires_at=locked.ends_at
            )


def trial_converted(*, user_id: int) -> None:
    """Records a trial's conversion: its user's first payment (payments calls this)."""
    Trial.objects.filter(user_id=user_id, converted_at__isnull=True).update(
        converted_at=timezone.now()
    )
