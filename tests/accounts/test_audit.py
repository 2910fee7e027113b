"""The audit log: who changed what, before and after, from where; for the account holder
(GET /user/api-keys/audit-logs) and for staff (the admin). alice owns things, bob is another
customer, charlie is staff."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx
import pytest
from django.db import transaction
from rest_framework.test import APIClient

from accounts.models import ApiKey, AuditEntry
from accounts.services import api_key_update, user_create
from billing.services import credit_grant

pytestmark = pytest.mark.smoke


@pytest.fixture
def people(live_db):
    tag = uuid.uuid4().hex[:8]
    alice = user_create(email=f"alice-{tag}@example.com", password="correct horse battery")
    bob = user_create(email=f"bob-{tag}@example.com", password="another good secret")
    charlie = user_create(email=f"charlie-{tag}@example.com", password="staff staff staff")
    charlie.is_staff = charlie.is_superuser = True
    charlie.save()
    return alice, bob, charlie


def _logged_in(user) -> APIClient:
    client = APIClient()
    client.force_login(user)
    return client


def _entries(user) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(owner=user).order_by("id"))


def test_a_customers_key_changes_are_recorded_with_before_after_and_address(people):
    alice, _, _ = people
    client = _logged_in(alice)

    created = client.post(
        "/user/api-keys", {"name": "ci"}, format="json", REMOTE_ADDR="203.0.113.4"
    )
    key_id = created.json()["id"]
    client.patch(
        f"/user/api-keys/{key_id}", {"name": "ci-2", "allowed_models": ["openai/*"]}, format="json"
    )
    client.delete(f"/user/api-keys/{key_id}")

    create, update, revoke = _entries(alice)[-3:]
    assert (create.action, create.actor, create.ip) == ("apikey.create", alice, "203.0.113.4")
    assert create.after["name"] == "ci" and "digest" not in create.after
    assert (update.before, update.after) == (
        {"allowed_models": [], "name": "ci"},
        {"allowed_models": ["openai/*"], "name": "ci-2"},
    )
    assert revoke.action == "apikey.update" and revoke.before == {"revoked_at": None}
    assert revoke.after["revoked_at"] is not None


def test_holders_read_their_own_log_and_nobody_elses(people):
    alice, bob, _ = people
    _logged_in(alice).post("/user/api-keys", {"name": "mine"}, format="json")

    shown = _logged_in(alice).get("/user/api-keys/audit-logs").json()["results"]
    assert shown[0]["action"] == "apikey.create" and shown[0]["actor"] == "you"
    assert all(e["target_repr"] != "" for e in shown)
    # bob sees his own account's creation, and nothing of alice's.
    seen_by_bob = _logged_in(bob).get("/user/api-keys/audit-logs").json()["results"]
    assert [(e["action"], e["target_repr"]) for e in seen_by_bob] == [("user.create", bob.email)]
    assert APIClient().get("/user/api-keys/audit-logs").status_code == 401


def test_staff_changes_are_recorded_as_staffs_and_shown_to_the_holder(people):
    alice, _, charlie = people
    _logged_in(alice).post("/user/api-keys", {"name": "k"}, format="json")
    key = ApiKey.objects.filter(user=alice).latest("id")

    staff = _logged_in(charlie)
    response = staff.post(
        "/admin/accounts/apikey/", {"action": "revoke", "_selected_action": [key.pk]}
    )
    assert response.status_code == 302

    entry = _entries(alice)[-1]
    assert (entry.action, entry.actor, entry.owner) == ("apikey.update", charlie, alice)
    shown = _logged_in(alice).get("/user/api-keys/audit-logs").json()["results"][0]
    assert shown["actor"] == "staff"


def test_credit_grants_outside_a_request_are_the_systems(people):
    alice, _, _ = people
    credit_grant(user=alice, amount=Decimal("3"), reference="promo:1")

    entry = _entries(alice)[-1]
    assert (entry.action, entry.actor, entry.after["amount"]) == ("credit.grant", None, "3")


def test_a_change_rolled_back_leaves_no_entry(people):
    alice, _, _ = people
    _logged_in(alice).post("/user/api-keys", {"name": "k"}, format="json")
    key = ApiKey.objects.filter(user=alice).latest("id")
    before = AuditEntry.objects.count()

    def change_then_fail() -> None:
        with transaction.atomic():
            api_key_update(api_key=key, name="never")
            raise RuntimeError

    with pytest.raises(RuntimeError):
        change_then_fail()

    assert AuditEntry.objects.count() == before


def test_serving_requests_writes_no_audit_entries(gateway, make_account):
    account = make_account()
    before = AuditEntry.objects.filter(owner=account.user).count()
    for _ in range(3):
        httpx.post(
            f"{gateway}/v1/chat/completions",
            json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {account.key}"},
        ).raise_for_status()
    assert AuditEntry.objects.filter(owner=account.user).count() == before
