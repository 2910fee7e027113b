"""The playground in Chromium: an answer streams in from the gateway's own
/v1/chat/completions with a key made for the tab, its cost and latency shown; the exchange
is kept, listed on /chats, shared read-only, rated, and deleted."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from playwright.sync_api import Page, expect

from accounts.models import ApiKey
from accounts.services import user_create
from accounts.verification import user_email_verified
from billing.services import credit_grant
from chats.models import ChatMessage, ChatSession
from tests.web.conftest import Site, axe_violations, screenshot
from tests.web.test_journey import PASSWORD, _log_in


@pytest.fixture
def customer(live_db):
    user = user_create(email=f"pg-{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD)
    user_email_verified(user)
    credit_grant(user=user, amount=Decimal(5), reference=f"test:{user.pk}")
    return user


def test_the_playground_streams_keeps_shares_and_rates(page: Page, site: Site, customer):
    _log_in(page, site, customer.email)
    page.goto(f"{site.url}/playground")
    page.get_by_label("Model").select_option("test/echo")
    page.get_by_label("System prompt").fill("Answer briefly.")
    page.get_by_label("Message").fill("hello from the playground")
    page.get_by_role("button", name="Send").click()
    answer = page.locator(".chat-assistant .chat-text").last
    expect(answer).to_contain_text("hello from the playground", timeout=15000)
    meta = page.locator(".chat-assistant .chat-meta").last
    expect(meta).to_contain_text("$0.")
    expect(meta).to_contain_text("ms")
    screenshot(page, "playground")
    assert not axe_violations(page), axe_violations(page)

    # The tab's key: inference only, an hour long, not among the customer's keys.
    [tab_key] = ApiKey.objects.filter(user=customer, purpose="playground")
    assert tab_key.scopes == ["inference"] and tab_key.expires_at is not None
    assert tab_key.prefix not in page.content()
    page.goto(f"{site.url}/keys")
    expect(page.get_by_test_id("keys")).not_to_contain_text("Playground")

    # Kept: the chat, its two messages with the answer's cost.
    session = ChatSession.objects.get(user=customer)
    question, reply = session.messages.all()
    assert (question.role, reply.role) == ("user", "assistant")
    assert reply.cost is not None and reply.cost > 0 and reply.latency_ms is not None
    assert session.system_prompt == "Answer briefly."

    page.goto(f"{site.url}/chats")
    expect(page.get_by_test_id("chats")).to_contain_text("hello from the playground")
    screenshot(page, "chats")
    page.get_by_role("link", name="Manage").click()
    page.get_by_role("button", name="Make a read-only link").click()
    link = page.get_by_test_id("share-url").input_value()

    stranger = page.context.browser.new_page()
    stranger.goto(link)
    expect(stranger.locator(".chat-text").first).to_contain_text("Answer briefly.")
    expect(stranger.get_by_role("button", name="Send")).to_have_count(0)
    page.get_by_role("button", name="Turn the link off").click()
    assert stranger.goto(link).status == 404
    stranger.close()

    # Feedback on the answer, kept (htmx swaps the buttons in place).
    page.goto(f"{site.url}/playground/{session.pk}")
    page.get_by_role("button", name="Good answer").click()
    expect(page.get_by_role("button", name="Good answer")).to_have_attribute("aria-pressed", "true")
    assert ChatMessage.objects.get(pk=reply.pk).feedback == 1

    page.goto(f"{site.url}/chats/{session.pk}/delete")
    page.get_by_role("button", name="Delete chat").click()
    expect(page.get_by_test_id("chats")).to_contain_text("No chats yet")
    assert not ChatSession.objects.filter(pk=session.pk).exists()


def test_a_second_tab_takes_over_the_playground_key(page: Page, site: Site, customer):
    """One playground key alive per customer: a new tab's revokes the last one, and the
    first tab, refused, asks for a new key and carries on."""
    _log_in(page, site, customer.email)
    page.goto(f"{site.url}/playground")
    page.get_by_label("Model").select_option("test/echo")
    page.get_by_label("Message").fill("first")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".chat-assistant .chat-meta").last).to_contain_text("ms", timeout=15000)
    other = page.context.new_page()
    other.goto(f"{site.url}/playground")
    other.get_by_label("Model").select_option("test/echo")
    other.get_by_label("Message").fill("second")
    other.get_by_role("button", name="Send").click()
    expect(other.locator(".chat-assistant .chat-meta").last).to_contain_text("ms", timeout=15000)
    page.get_by_label("Message").fill("third")
    page.get_by_role("button", name="Send").click()
    expect(page.locator(".chat-assistant .chat-text").last).to_contain_text("third", timeout=15000)
    alive = ApiKey.objects.filter(user=customer, purpose="playground", revoked_at__isnull=True)
    assert alive.count() == 1
