"""A customer's first visit, end to end in Chromium: sign up, verify the address from the
mail, log in, create a key (shown once), buy credit on Stripe's (double's) hosted page and
see the balance rise, call the API with the key and see the request on the dashboard; staff
grant credit with a reason in the admin and the customer sees it. Screenshots of each page
at 1280 and 390 px go to var/screenshots/."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal

import openai
import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.services import user_create
from accounts.verification import user_email_verified
from tests.support.request_logs import rolled_up
from tests.web.conftest import Site, axe_violations, screenshot

PASSWORD = "a long and private passphrase"


def _sign_up_and_verify(page: Page, site: Site) -> str:
    email = f"web-{uuid.uuid4().hex[:10]}@example.com"
    page.goto(f"{site.url}/signup")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    expect(page.get_by_role("heading", name="Verify Your Email Address")).to_be_visible()
    # Not logged in before the address is proven.
    page.goto(f"{site.url}/dashboard")
    expect(page).to_have_url(f"{site.url}/login?next=/dashboard")
    page.goto(site.link_in(site.mail_to(email)))
    page.get_by_role("button", name="Confirm").click()
    return email


def _log_in(page: Page, site: Site, email: str, password: str = PASSWORD) -> None:
    page.goto(f"{site.url}/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{site.url}/dashboard")


def _reload_until(page: Page, test_id: str, text: str, timeout: float = 15.0) -> None:
    """The page reloaded until the element shows `text` (settlement and webhooks land a
    moment after the action that caused them)."""
    deadline = time.monotonic() + timeout
    while text not in page.get_by_test_id(test_id).inner_text():
        assert time.monotonic() < deadline, page.get_by_test_id(test_id).inner_text()
        page.wait_for_timeout(300)
        page.reload()


@pytest.mark.usefixtures("live_db", "stripe_webhook_to")
def test_sign_up_pay_call_and_see_it(page: Page, site: Site):
    page.goto(site.url)
    screenshot(page, "home")
    page.get_by_role("link", name="Create an account").click()
    email = _sign_up_and_verify(page, site)
    expect(page).to_have_url(f"{site.url}/dashboard")  # the link logged them in
    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(f"{site.url}/")
    _log_in(page, site, email)
    expect(page.get_by_test_id("available")).to_have_text("$0.00")
    expect(page.get_by_role("alert")).to_contain_text("out of credit")

    # A key, shown once.
    page.get_by_role("link", name="Keys").first.click()
    page.get_by_label("Name").fill("my laptop")
    page.get_by_role("button", name="Create key").click()
    key = page.get_by_test_id("new-key").input_value()
    assert key.startswith("gw") or len(key) > 20
    screenshot(page, "keys")
    page.goto(f"{site.url}/keys")
    assert key not in page.content()  # never again
    expect(page.get_by_test_id("keys")).to_contain_text("my laptop")

    # Credit from Stripe's hosted page; the signed event grants it, not the visit.
    page.goto(f"{site.url}/billing")
    page.get_by_label("Or an amount of your choice").fill("12.50")
    page.get_by_role("button", name="Continue to payment").click()
    expect(page.get_by_role("heading", name="Pay $12.50")).to_be_visible()
    page.get_by_role("button", name="Pay").click()
    expect(page.get_by_role("heading", name="Thank you")).to_be_visible(timeout=15000)
    page.goto(f"{site.url}/billing")
    expect(page.get_by_test_id("billing-available")).to_have_text("$12.50")
    expect(page.get_by_test_id("payments")).to_contain_text("Paid")
    screenshot(page, "billing")

    # The API with that key; the request shows on the dashboard.
    client = openai.OpenAI(base_url=f"{site.url}/v1", api_key=key, max_retries=0)
    client.chat.completions.create(
        model="test/echo", messages=[{"role": "user", "content": "hello from the web test"}]
    )
    page.goto(f"{site.url}/dashboard")
    _reload_until(page, "recent-requests", "test/echo")
    expect(page.get_by_test_id("recent-requests")).to_contain_text("200")
    rolled_up(days=1)  # what beat does every minute: the figures come from the rollups
    page.reload()
    expect(page.get_by_test_id("requests")).to_have_text("1")
    expect(page.locator("#usage-chart")).to_be_visible()
    screenshot(page, "dashboard")
    assert not axe_violations(page), axe_violations(page)


@pytest.mark.usefixtures("live_db")
def test_staff_grant_credit_with_a_reason_and_the_customer_sees_it(page: Page, site: Site):
    customer = user_create(email=f"c-{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD)
    user_email_verified(customer)
    staff = User.objects.create_superuser(
        email=f"staff-{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD
    )
    _log_in(page, site, staff.email)
    account = customer.credit_account
    page.goto(f"{site.url}/admin/billing/creditaccount/{account.pk}/adjust/")
    page.get_by_label("Operation").select_option("grant")
    page.get_by_label("Credits").fill("5")
    page.get_by_label("Reason").fill("Goodwill: the outage on Tuesday")
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Apply").click()
    expect(page.locator(".messagelist")).to_contain_text("the balance is now 5")
    page.context.clear_cookies()

    _log_in(page, site, customer.email)
    expect(page.get_by_test_id("available")).to_have_text("$5.00")
    entry = customer.ledger_entries.get()
    assert entry.amount == Decimal(5) and "Tuesday" in entry.memo
