"""The public pages in Chromium (landing, models, a model, pricing, status, 404) at both
widths, checked by axe-core; the customer pages send anonymous visitors to /login."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.web.conftest import Site, axe_violations, screenshot


@pytest.mark.parametrize("path", ["/dashboard", "/keys", "/billing", "/settings"])
def test_customer_pages_send_strangers_to_log_in(page: Page, site: Site, path: str):
    page.goto(f"{site.url}{path}")
    expect(page).to_have_url(f"{site.url}/login?next={path}")
    expect(page.get_by_role("heading", name="Sign In")).to_be_visible()


def test_models_are_searched_and_filtered_by_the_address(page: Page, site: Site):
    page.goto(f"{site.url}/models")
    table = page.get_by_test_id("models")
    expect(table).to_contain_text("test/echo")
    page.get_by_label("Search").fill("echo")
    page.get_by_role("button", name="Filter").click()
    expect(page).to_have_url(
        f"{site.url}/models?q=echo&provider=&modality=&min_context=&max_price=&sort_by=name&order="
    )
    expect(table).to_contain_text("test/echo")
    assert "test/output-only" not in table.inner_text()
    screenshot(page, "models")
    assert not axe_violations(page), axe_violations(page)
    page.goto(f"{site.url}/models?min_context=lots")  # a hand-made address: said, not a 500
    expect(page.get_by_role("alert")).to_contain_text("min_context")


def test_a_model_page_shows_its_providers_and_how_to_call_it(page: Page, site: Site):
    page.goto(f"{site.url}/models/test/echo")
    expect(page.get_by_role("heading", name="test/echo").or_(page.locator("h1"))).to_be_visible()
    expect(page.get_by_test_id("offers")).to_contain_text("$")
    expect(page.locator("pre code")).to_contain_text('"model": "test/echo"')
    screenshot(page, "model")
    assert not axe_violations(page), axe_violations(page)
    page.goto(f"{site.url}/models/no/such-model")
    expect(page.get_by_role("heading", name="There is no page here.")).to_be_visible()


@pytest.mark.parametrize(
    ("path", "heading"),
    [
        ("/", None),
        ("/pricing", "Pricing"),
        ("/status", "Status"),
        ("/login", "Sign In"),
        ("/signup", "Sign Up"),
    ],
)
def test_public_pages_read_well_and_pass_axe(
    page: Page, site: Site, path: str, heading: str | None
):
    answer = page.goto(f"{site.url}{path}")
    assert answer is not None and answer.status == 200
    if heading:
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    name = path.strip("/") or "home"
    screenshot(page, name)
    assert not axe_violations(page), axe_violations(page)
