"""The staff console's analytics page: figures per day from the rollups (revenue, provider
cost, margin), top models and customers, error rates; the live panel fed by the websocket;
refused to customers and to staff without the monitoring permission."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.services import user_create
from accounts.verification import user_email_verified
from tests.support.request_logs import log_emptied, request_logged, rolled_up
from tests.web.conftest import Site, screenshot
from tests.web.test_journey import PASSWORD, _log_in


def _staff(role: str) -> User:
    # Its group and staff flag follow from the role (accounts.signals).
    user = user_create(
        email=f"{role}-{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD, role=role
    )
    user_email_verified(user)  # staff accounts are made by operators
    return user


@pytest.mark.django_db
@pytest.mark.smoke
def test_analytics_figures_come_from_the_rollups(django_assert_max_num_queries):
    log_emptied()
    customer = user_create(email=f"buyer-{uuid.uuid4().hex[:8]}@example.com")
    for status in (200, 200, 502):
        request_logged(
            model="test/echo",
            provider="mock",
            user=customer,
            status=status,
            cost="0.5",
            provider_cost="0.4",
        )
    rolled_up(days=2)
    client = Client()
    client.force_login(_staff("support"))
    with django_assert_max_num_queries(15):
        page = client.get("/admin/analytics/")
    assert page.status_code == 200
    body = page.content.decode()
    assert customer.email in body and "test/echo" in body
    assert page.context["totals"]["revenue"] == Decimal("1.5")
    assert page.context["totals"]["margin"] == Decimal("0.3")
    assert "33.3%" in body  # mock's error rate


@pytest.mark.django_db
@pytest.mark.smoke
def test_analytics_is_refused_to_customers():
    customer = Client()
    customer.force_login(user_create(email=f"c-{uuid.uuid4().hex[:8]}@example.com"))
    assert customer.get("/admin/analytics/").status_code == 302  # to the admin's login
    assert Client().get("/admin/analytics/").status_code == 302


@pytest.mark.usefixtures("live_db")
def test_the_live_panel_updates_over_the_websocket(page: Page, site: Site):
    staff = _staff("admin")
    _log_in(page, site, staff.email)
    page.goto(f"{site.url}/admin/")
    page.get_by_role("link", name="Analytics").click()
    expect(page.locator("#gz-live-state")).to_have_text("(live, every second)", timeout=10000)
    expect(page.locator('[data-figure="error_rate"]')).to_contain_text("%")
    screenshot(page, "admin-analytics")


@pytest.mark.usefixtures("live_db")
def test_staff_suspend_with_a_reason_and_the_keys_stop(page: Page, site: Site, make_account):
    import time

    import httpx

    customer = make_account()
    staff = _staff("admin")

    def status() -> int:
        return httpx.post(
            f"{site.url}/v1/chat/completions",
            json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {customer.key}"},
        ).status_code

    def until(expected: int) -> float:
        started = time.monotonic()
        while (got := status()) != expected:
            assert time.monotonic() - started < 5, got
            time.sleep(0.05)
        return time.monotonic() - started

    assert status() == 200
    _log_in(page, site, staff.email)

    def act(action: str, reason: str, button: str) -> None:
        """The users list, the customer selected, the action run with its reason."""
        page.goto(f"{site.url}/admin/accounts/user/?q={customer.user.email}")
        page.locator("input[name=_selected_action]").first.check()
        page.locator("select[name=action]").select_option(action)
        page.get_by_role("button", name="Go", exact=True).click()
        page.get_by_label("Reason").fill(reason)
        page.get_by_role("button", name=button).click()

    act("suspend", "Card testing from this account", "Suspend")
    expect(page.locator(".messagelist")).to_contain_text("Suspended 1 account(s)")
    until(403)
    user = User.objects.get(pk=customer.user.pk)
    assert user.suspension_reason == "Card testing from this account"

    act("unsuspend", "Cleared by the bank", "Lift the suspension")
    until(200)


@pytest.mark.django_db
@pytest.mark.smoke
def test_a_customers_usage_and_balance_for_staff():
    from billing.services import credit_grant

    customer = user_create(email=f"u-{uuid.uuid4().hex[:8]}@example.com")
    other = user_create(email=f"o-{uuid.uuid4().hex[:8]}@example.com")
    credit_grant(user=customer, amount=Decimal("7.5"), reference=f"seed:{customer.pk}")
    request_logged(model="test/echo", provider="mock", user=customer, cost="0.25")
    request_logged(model="test/other", provider="mock", user=other, cost="9")
    rolled_up(days=2)
    staff = Client()
    staff.force_login(_staff("support"))
    listed = staff.get("/admin/accounts/user/", {"q": customer.email}).content.decode()
    assert "$7.50" in listed
    page = staff.get(f"/admin/analytics/?user={customer.pk}")
    assert page.status_code == 200
    assert page.context["totals"]["revenue"] == Decimal("0.25")  # theirs, not everyone's
    assert "test/other" not in page.content.decode()
    assert staff.get("/admin/analytics/?user=999999999").status_code == 404
    change = staff.get(f"/admin/accounts/user/{customer.pk}/change/").content.decode()
    assert f"/admin/analytics/?user={customer.pk}" in change
