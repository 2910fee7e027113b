"""Staff and payments in the admin (payments.admin, payments.staff_refund): an admin refunds
a payment at Stripe for a reason (audited; the credit comes back with Stripe's event, once
however often the form is sent); support sees payments and events but refunds nothing;
staff process a failed or waiting event again."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from django.test import Client

from accounts.models import AuditEntry, User
from accounts.services import user_create
from payments.models import Payment, StripeEvent
from tests.payments.conftest import balance, checkout, control, deliver

pytestmark = pytest.mark.django_db


def _staff(role: str) -> Client:
    person = user_create(email=f"{uuid.uuid4().hex[:8]}@staff.example", password="long pass!")
    person.role = role
    person.save()
    client = Client()
    client.force_login(person)
    return client


def _paid(stripe_on: str, customer) -> tuple[User, Payment, dict]:
    user, client = customer()
    opened = checkout(client, amount="40").json()
    paid = control(stripe_on, f"checkout/sessions/{opened['session_id']}/pay")
    deliver(Client(), paid["delivery"])
    return user, Payment.objects.get(pk=opened["payment_id"]), paid


def test_an_admin_refunds_at_stripe_with_a_reason_once_and_the_event_takes_credit_back(
    stripe_on, customer, django_capture_on_commit_callbacks
):
    user, payment, _ = _paid(stripe_on, customer)
    admin = _staff("admin")
    url = f"/admin/payments/payment/{payment.pk}/refund/"
    form = admin.get(url)
    assert form.status_code == 200 and b"Refund at Stripe" in form.content
    assert b'value="40.00"' in form.content  # the rest of the payment, by default
    body = {"amount": "10.00", "reason": "model answered garbage", "token": "tok-1"}
    with django_capture_on_commit_callbacks(execute=True):
        assert admin.post(url, body).status_code == 302
    assert admin.post(url, body).status_code == 302  # sent twice: one refund at Stripe
    events = httpx.get(f"{stripe_on}/_double/events").json()["data"]
    refunds = [
        e
        for e in events
        if e["event"]["type"] == "charge.refunded"
        and e["event"]["data"]["object"]["payment_intent"] == payment.payment_intent_id
    ]
    assert [e["event"]["data"]["object"]["amount_refunded"] for e in refunds] == [1000]
    deliver(Client(), refunds[-1]["delivery"])
    assert balance(user) == Decimal("30")
    audit = AuditEntry.objects.get(action="payment.refund")
    assert audit.after["reason"] == "model answered garbage" and audit.owner_id == user.pk


def test_a_refund_larger_than_what_is_left_is_refused(stripe_on, customer):
    _, payment, _ = _paid(stripe_on, customer)
    answer = _staff("admin").post(
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "40.01", "reason": "too much", "token": "tok-2"},
    )
    assert answer.status_code == 200 and b"At most $40.00" in answer.content


def test_support_sees_payments_and_events_but_refunds_nothing(stripe_on, customer):
    _, payment, _ = _paid(stripe_on, customer)
    support = _staff("support")
    listing = support.get("/admin/payments/payment/")
    assert listing.status_code == 200 and "Refund…".encode() not in listing.content
    assert support.get("/admin/payments/stripeevent/").status_code == 200
    refused = support.post(
        f"/admin/payments/payment/{payment.pk}/refund/",
        {"amount": "1.00", "reason": "x", "token": "t"},
    )
    assert refused.status_code == 403
    assert _staff("developer").get("/admin/payments/payment/").status_code == 403


def test_staff_process_a_waiting_event_again(stripe_on, customer):
    user, client = customer()
    opened = checkout(client, amount="20").json()
    paid = control(stripe_on, f"checkout/sessions/{opened['session_id']}/pay")
    intent = paid["event"]["data"]["object"]["payment_intent"]
    refund_event = {
        **paid["event"],
        "id": "evt_test_waiting",
        "type": "charge.refunded",
        "data": {
            "object": {
                "id": "ch_x",
                "object": "charge",
                "payment_intent": intent,
                "amount": 2000,
                "amount_refunded": 2000,
            }
        },
    }
    from tests.payments.conftest import signed

    assert deliver(Client(), signed(refund_event)).json()["status"] == "deferred"
    deliver(Client(), paid["delivery"])  # (its resuming of waiting events runs on commit)
    admin = _staff("admin")
    answer = admin.post(
        "/admin/payments/stripeevent/",
        {"action": "process_again", "_selected_action": ["evt_test_waiting"]},
    )
    assert answer.status_code == 302
    assert StripeEvent.objects.get(pk="evt_test_waiting").status == StripeEvent.Status.PROCESSED
    assert balance(user) == 0  # granted, then refunded in full


def test_a_users_page_links_to_their_payments_ledger_and_subscriptions(stripe_on, customer):
    user, _, _ = _paid(stripe_on, customer)
    admin = _staff("admin")
    page = admin.get(f"/admin/accounts/user/{user.pk}/change/")
    assert page.status_code == 200
    link = f"/admin/payments/payment/?user__id__exact={user.pk}"
    assert link.encode() in page.content
    listing = admin.get(link)
    assert listing.status_code == 200 and b"1 payment" in listing.content
    assert admin.get(f"/admin/billing/ledgerentry/?user__id__exact={user.pk}").status_code == 200
    assert admin.get(f"/admin/billing/trial/?user__id__exact={user.pk}").status_code == 200
    events = admin.get(f"/admin/payments/stripeevent/?user__id__exact={user.pk}")
    assert b"checkout.session.completed" in events.content  # the purchase's event is theirs
