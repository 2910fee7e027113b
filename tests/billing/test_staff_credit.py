"""Staff change a customer's credit from the admin, for a reason (billing.staff_credit): a
grant, a refund or a deduction is one ledger entry with the reason as its memo, audited
with who made it; a form sent twice changes the balance once; a deduction never takes the
balance below zero, even racing another; staff without the permission cannot."""

from __future__ import annotations

import threading
import uuid
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from accounts.models import AuditEntry, User
from accounts.services import user_create
from billing.models import CreditAccount, LedgerEntry
from billing.services import credit_grant
from billing.staff_credit import CreditRefused, credit_staff_adjust

pytestmark = [pytest.mark.smoke]


def _person(role: str = "user", credit: str = "0") -> User:
    user = user_create(email=f"{uuid.uuid4().hex[:10]}@example.com", password="long pass!")
    user.role = role
    user.save()  # an admin's group holds every billing permission (accounts.roles)
    if Decimal(credit):
        credit_grant(user=user, amount=Decimal(credit), reference=f"seed:{user.pk}")
    return user


def _admin_client(role: str = "admin") -> tuple[Client, User]:
    staff = _person(role)
    client = Client()
    client.force_login(staff)
    return client, staff


def _url(user: User) -> str:
    return f"/admin/billing/creditaccount/{CreditAccount.objects.get(user=user).pk}/adjust/"


def _balance(user: User) -> Decimal:
    return CreditAccount.objects.get(user=user).balance


@pytest.mark.django_db
def test_an_admin_grants_refunds_and_deducts_with_a_reason_each_audited(
    django_capture_on_commit_callbacks,
):
    client, staff = _admin_client()
    customer = _person(credit="5")

    form = client.get(_url(customer))
    assert form.status_code == 200 and b"Grant, refund or deduct" not in form.content
    for operation, amount in (("grant", "2.5"), ("refund", "0.000000000001"), ("deduct", "1")):
        with django_capture_on_commit_callbacks(execute=True):  # the audit entry, on commit
            answer = client.post(
                _url(customer),
                {
                    "operation": operation,
                    "amount": amount,
                    "reason": f"ticket 7: {operation}",
                    "token": uuid.uuid4().hex,
                },
            )
        assert answer.status_code == 302, answer.content

    assert _balance(customer) == Decimal("6.500000000001")
    entries = LedgerEntry.objects.filter(user=customer, reference__startswith="staff:")
    assert sorted((e.kind, e.amount, e.memo) for e in entries) == [
        ("adjustment", Decimal(-1), "ticket 7: deduct"),
        ("grant", Decimal("2.5"), "ticket 7: grant"),
        ("refund", Decimal("0.000000000001"), "ticket 7: refund"),
    ]
    audit = AuditEntry.objects.filter(owner=customer, action__startswith="credit.")
    staff_audit = audit.exclude(after__reference__startswith="seed:")
    assert staff_audit.count() == 3 and {a.actor_id for a in staff_audit} == {staff.pk}
    changelist = client.get("/admin/billing/creditaccount/")
    assert b"Grant, refund or deduct" in changelist.content


@pytest.mark.django_db
def test_a_form_sent_twice_changes_the_balance_once():
    client, _ = _admin_client()
    customer = _person(credit="1")
    sent = {"operation": "grant", "amount": "3", "reason": "goodwill", "token": uuid.uuid4().hex}

    assert client.post(_url(customer), sent).status_code == 302
    assert client.post(_url(customer), sent).status_code == 302

    assert _balance(customer) == Decimal(4)


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("amount", "reason", "said"),
    [
        ("2", "too much", b"below zero"),
        ("-1", "negative", b"Ensure this value"),
        ("0.0000000000001", "too fine", b"decimal places"),
        ("1", "", b"This field is required"),
    ],
)
def test_what_cannot_be_done_is_said_and_changes_nothing(amount, reason, said):
    client, _ = _admin_client()
    customer = _person(credit="1")

    answer = client.post(
        _url(customer),
        {"operation": "deduct", "amount": amount, "reason": reason, "token": uuid.uuid4().hex},
    )

    assert answer.status_code == 200 and said in answer.content
    assert _balance(customer) == Decimal(1)
    assert not LedgerEntry.objects.filter(user=customer, reference__startswith="staff:").exists()


@pytest.mark.django_db
def test_staff_without_the_permission_cannot():
    client, _ = _admin_client(role="developer")  # sees providers and health, not money
    customer = _person(credit="1")

    assert client.get(_url(customer)).status_code == 403
    sent = {"operation": "grant", "amount": "9", "reason": "x", "token": uuid.uuid4().hex}
    assert client.post(_url(customer), sent).status_code == 403
    assert _balance(customer) == Decimal(1)


@pytest.mark.django_db(transaction=True)
def test_two_deductions_racing_never_take_the_balance_below_zero():
    if connection.vendor != "postgresql":
        pytest.skip("row locks are Postgres'; SQLite writes one at a time anyway")
    customer = _person(credit="1")
    start = threading.Barrier(8)
    outcomes: list[str] = []

    def deduct() -> None:
        start.wait()
        try:
            credit_staff_adjust(
                user_id=customer.pk,
                operation="deduct",
                amount=Decimal("0.3"),
                reason="race",
                token=uuid.uuid4().hex,
            )
            outcomes.append("done")
        except CreditRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=deduct) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(outcomes) == ["done"] * 3 + ["refused"] * 5
    assert _balance(customer) == Decimal("0.1")


@pytest.mark.django_db
def test_support_changes_credit_up_to_its_limit_and_an_admin_beyond(settings):
    settings.GATEWAYZ_SUPPORT_CREDIT_LIMIT = Decimal(20)
    support, _ = _admin_client(role="support")
    admin_client, _ = _admin_client(role="admin")
    customer = _person(credit="1")

    def grant(client: Client, amount: str) -> bytes:
        sent = {
            "operation": "grant",
            "amount": amount,
            "reason": "ticket 9",
            "token": uuid.uuid4().hex,
        }
        answer = client.post(_url(customer), sent)
        return answer.content if answer.status_code == 200 else b"applied"

    assert b"Grant, refund or deduct" in support.get("/admin/billing/creditaccount/").content
    assert grant(support, "20") == b"applied"
    assert b"ask an admin" in grant(support, "20.000000000001")
    assert grant(admin_client, "500") == b"applied"
    assert _balance(customer) == Decimal(521)
