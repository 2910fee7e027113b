"""allauth's other flows as customers meet them: a forgotten password reset from the mail,
an address changed only once the new one is verified, and repeated wrong passwords
refused for a while even when the right one follows."""

from __future__ import annotations

import uuid

import pytest
from django.test import Client
from playwright.sync_api import Page, expect

from accounts.models import User
from accounts.services import user_create
from accounts.verification import user_email_verified
from tests.web.conftest import Site, axe_violations, screenshot
from tests.web.test_journey import PASSWORD, _log_in


def _customer() -> User:
    user = user_create(email=f"flow-{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD)
    user_email_verified(user)
    return user


@pytest.mark.usefixtures("live_db")
def test_a_forgotten_password_is_reset_from_the_mail(page: Page, site: Site):
    user = _customer()
    page.goto(f"{site.url}/login")
    page.get_by_role("link", name="Forgot your password?").click()
    page.get_by_label("Email").fill(user.email)
    page.get_by_role("button", name="Reset My Password").click()
    page.goto(site.link_in(site.mail_to(user.email)))
    new = "another long private passphrase"
    page.get_by_label("New Password", exact=True).fill(new)
    page.get_by_label("New Password (again)").fill(new)
    page.get_by_role("button", name="Change Password").click()
    expect(page.get_by_role("heading", name="Change Password")).to_be_visible()
    _log_in(page, site, user.email, new)


@pytest.mark.usefixtures("live_db")
def test_a_new_address_counts_once_verified(page: Page, site: Site):
    user = _customer()
    _log_in(page, site, user.email)
    page.goto(f"{site.url}/settings")
    page.get_by_role("link", name="Change").first.click()
    new = f"new-{uuid.uuid4().hex[:8]}@example.com"
    screenshot(page, "email")
    assert not axe_violations(page), axe_violations(page)
    page.locator("input[name=email]").fill(new)  # beside the current one, shown disabled
    page.get_by_role("button", name="Change Email").click()
    assert User.objects.get(pk=user.pk).email == user.email  # not before the link
    page.goto(site.link_in(site.mail_to(new)))
    page.get_by_role("button", name="Confirm").click()
    user.refresh_from_db()
    assert user.email == new


@pytest.mark.django_db
@pytest.mark.smoke
def test_wrong_passwords_lock_the_address_for_a_while():
    user = _customer()
    client = Client()
    for _ in range(5):
        wrong = client.post("/login", {"login": user.email, "password": "not it at all"})
        assert wrong.status_code == 200  # the form again, with its error
    locked = client.post("/login", {"login": user.email, "password": PASSWORD})
    assert locked.status_code == 200 and b"Too many failed login attempts" in locked.content
    assert "_auth_user_id" not in client.session
