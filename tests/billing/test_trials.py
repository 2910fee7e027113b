"""Free trials (billing.trials): a customer who signs up gets the trial's credit as a spent-
first allowance; one per person (case, dots and +tags of providers that ignore them) and a
few per address a day; with a daily cap it comes in daily slices, what a day left unspent
going back to the trial; it ends when its time is up (what is left taken back); the first
payment is recorded as its conversion; staff end or extend one."""

from __future__ import annotations

import random
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from billing.models import CreditAccount, LedgerEntry, Trial
from billing.trials import email_key, trial_end_now, trial_extend, trials_advance
from tests.support.usage import usage_charge

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def trials_on(settings):
    settings.GATEWAYZ_TRIAL_CREDIT = Decimal("5")
    settings.GATEWAYZ_TRIAL_DAYS = 3
    settings.GATEWAYZ_TRIAL_DAILY_CAP = Decimal("0")
    settings.GATEWAYZ_TRIAL_PER_IP_DAY = 100
    return settings


def _signup(email: str, ip: str | None = None) -> int:
    # Each from an address of its own unless said (signups are throttled per address).
    ip = ip or f"203.0.{random.randrange(256)}.{random.randrange(1, 255)}"
    answer = Client(REMOTE_ADDR=ip).post(
        "/auth/signup",
        {"email": email, "password": "a long passphrase"},
        content_type="application/json",
    )
    assert answer.status_code == 201, answer.content
    return int(answer.json()["id"])


def _account(user_id: int) -> CreditAccount:
    return CreditAccount.objects.get(user_id=user_id)


def test_one_email_key_per_person():
    assert email_key("B.o.B+promo@GoogleMail.com") == "bob@gmail.com"
    assert email_key("Ann+x@outlook.com") == "ann@outlook.com"
    assert email_key("a.b+x@example.org") == "a.b+x@example.org"  # unknown: kept as is


def test_a_signup_gets_the_trial_once_per_person(trials_on):
    first = _signup("carol@gmail.com")
    account = _account(first)
    assert (account.balance, account.allowance) == (5, 5)
    assert account.allowance_expires_at > timezone.now() + timedelta(days=2)
    again = _signup("C.arol+2@gmail.com")  # the same person
    assert _account(again).balance == 0 and not Trial.objects.filter(user_id=again).exists()


def test_an_address_starts_only_so_many_trials_a_day(trials_on):
    trials_on.GATEWAYZ_TRIAL_PER_IP_DAY = 2
    trials_on.GATEWAYZ_SIGNUP_RATE = "100/hour"  # the signup throttle is per address too
    address = f"198.51.100.{random.randrange(1, 255)}"
    users = [_signup(f"p{i}@example.com", ip=address) for i in range(3)]
    assert [_account(u).balance for u in users] == [5, 5, 0]
    assert _account(_signup("other@example.com")).balance == 5


def test_trials_are_off_by_default():
    assert _account(_signup("nobody@example.com")).balance == 0


def test_a_daily_cap_gives_the_credit_in_slices_and_returns_what_a_day_left(trials_on):
    trials_on.GATEWAYZ_TRIAL_DAILY_CAP = Decimal("2")
    user_id = _signup("dan@example.com")
    assert (_account(user_id).balance, _account(user_id).allowance) == (2, 2)
    usage_charge(user_id, "1.5")
    tomorrow = timezone.now() + timedelta(days=1, minutes=1)
    assert trials_advance(now=tomorrow) == 1
    trial = Trial.objects.get(user_id=user_id)
    assert trial.granted == Decimal("3.5")  # 1.5 spent + today's 2
    assert (_account(user_id).balance, _account(user_id).allowance) == (2, 2)
    assert trials_advance(now=tomorrow) == 0  # today's slice is running
    usage_charge(user_id, "2")
    day_after = tomorrow + timedelta(days=1)
    trials_advance(now=day_after)
    assert _account(user_id).balance == Decimal("1.5")  # what is left of 5: 1.5
    trials_advance(now=day_after + timedelta(days=2))  # the trial is over
    trial.refresh_from_db()
    assert trial.ended_at is not None
    assert (_account(user_id).balance, _account(user_id).allowance) == (0, 0)
    assert sum(e.amount for e in LedgerEntry.objects.filter(user_id=user_id)) == 0


def test_the_trial_ends_with_its_time_and_keeps_purchased_credit(trials_on):
    user_id = _signup("erin@example.com")
    from accounts.models import User
    from billing.services import credit_grant

    credit_grant(user=User.objects.get(pk=user_id), amount=Decimal("3"), reference="bought")
    usage_charge(user_id, "1")
    trials_advance(now=timezone.now() + timedelta(days=4))
    account = _account(user_id)
    assert (account.balance, account.allowance, account.purchased) == (3, 0, 3)


def test_staff_end_or_extend_a_trial(trials_on):
    first, second = _signup("f@example.com"), _signup("g@example.com")
    trial = Trial.objects.get(user_id=second)
    trial_extend(trial=trial, days=7)
    trial.refresh_from_db()
    assert trial.ends_at > timezone.now() + timedelta(days=9)
    assert _account(second).allowance_expires_at == trial.ends_at
    trial_end_now(trial=Trial.objects.get(user_id=first))
    assert _account(first).balance == 0
    assert Trial.objects.get(user_id=first).ended_at is not None


def test_a_day_before_the_end_the_user_is_told_once(
    trials_on, django_capture_on_commit_callbacks, mailoutbox
):
    user_id = _signup("hana@example.com")
    usage_charge(user_id, "1.25")
    almost = Trial.objects.get(user_id=user_id).ends_at - timedelta(hours=20)
    with django_capture_on_commit_callbacks(execute=True):
        trials_advance(now=almost - timedelta(days=1))  # too early
        trials_advance(now=almost)
        trials_advance(now=almost + timedelta(hours=1))
    ending = [m for m in mailoutbox if m.subject == "Your Gatewayz trial ends soon"]
    assert len(ending) == 1 and "3.75 credits of it are left" in ending[0].body
