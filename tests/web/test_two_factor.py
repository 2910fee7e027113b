"""Two-factor sign-in in Chromium: an authenticator app is set up from the secret the page
shows (its code computed here by RFC 6238, not by allauth's code), and from then on the
password alone does not log in: a recovery code does."""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
import uuid

import pytest
from playwright.sync_api import Page, expect

from accounts.services import user_create
from accounts.verification import user_email_verified
from tests.web.conftest import Site, axe_violations, screenshot
from tests.web.test_journey import PASSWORD, _log_in


def totp(secret: str, at: float | None = None) -> str:
    """RFC 6238 with the authenticator apps' defaults: SHA-1, 30 s, six digits."""
    counter = int((at or time.time()) // 30)
    key = base64.b32decode(secret + "=" * (-len(secret) % 8), casefold=True)
    digest = hmac.new(key, struct.pack(">Q", counter), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


@pytest.mark.usefixtures("live_db")
def test_an_authenticator_then_guards_the_login(page: Page, site: Site):
    user = user_create(email=f"2fa-{uuid.uuid4().hex[:8]}@example.com", password=PASSWORD)
    user_email_verified(user)
    _log_in(page, site, user.email)
    page.goto(f"{site.url}/settings")
    page.get_by_role("link", name="Set up an authenticator app").click()
    page.get_by_role("link", name="Activate").click()  # from the two-factor overview
    if page.get_by_role("heading", name="Confirm Access").is_visible():
        # Changing how one logs in may ask for the password again.
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Confirm").click()
    expect(page.get_by_role("heading", name="Activate Authenticator App")).to_be_visible()
    assert not axe_violations(page), axe_violations(page)
    screenshot(page, "two-factor")
    secret = page.locator("#authenticator_secret").input_value()
    page.get_by_label("Authenticator code").fill(totp(secret))
    page.get_by_role("button", name="Activate").click()
    page.goto(f"{site.url}/account/2fa/recovery-codes/")
    codes = page.locator("#recovery_codes").input_value().split()
    assert len(codes) >= 5

    page.get_by_role("button", name="Log out").click()
    page.goto(f"{site.url}/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{site.url}/account/2fa/authenticate/")  # not in yet
    page.goto(f"{site.url}/dashboard")  # the password alone does not let one in
    expect(page).not_to_have_url(f"{site.url}/dashboard")
    page.goto(f"{site.url}/account/2fa/authenticate/")
    page.get_by_label("Code").fill("000000")
    page.get_by_role("button", name="Sign In").click()
    expect(page.locator(".invalid-feedback")).to_be_visible()
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(f"{site.url}/dashboard")
