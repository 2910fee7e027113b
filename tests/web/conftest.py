"""The web pages in a real browser: Debian's Chromium (/usr/bin/chromium; .ci/run installs
it) driven by Playwright, against a gateway process serving the pages on the test
database, with Stripe's double for payments and Django's file mail backend as the inbox."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import STRIPE_KEY, WEBHOOK_SECRET
from tests.support.servers import REPO_ROOT

# Playwright's sync API runs an event loop in the test's thread, which Django's ORM takes for
# async code; the tests' own queries are plain sync code (test processes only).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = REPO_ROOT / "var" / "screenshots"
AXE = Path(__file__).parents[1] / "support" / "axe" / "axe.min.js"
WIDTHS = {"desktop": 1280, "phone": 390}


def _in_browser(item: pytest.Item) -> bool:
    return "page" in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browser tests last, whatever else is collected: Playwright's sync API keeps an
    event loop running in the main thread from the first of them to the session's end, and
    a later test's asyncio.run() would meet it."""
    items.sort(key=_in_browser)  # stable: each part keeps its order
    if not Path(CHROMIUM).exists():
        skip = pytest.mark.skip(reason="needs Debian's chromium (apt-get install chromium)")
        for item in items:
            if _in_browser(item):
                item.add_marker(skip)


@pytest.fixture(autouse=True)
def _connections_closed() -> Iterator[None]:
    """Closes the test's database connection when it ends: opened while Playwright's loop
    runs, it belongs to that context, and would outlive the session's teardown otherwise
    (which then cannot drop the test database)."""
    yield
    from django.db import connections

    connections.close_all()


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict[str, Any]) -> dict[str, Any]:
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@dataclass(frozen=True)
class Site:
    url: str
    inbox: Path
    stripe: str

    def mail_to(self, address: str, timeout: float = 10.0) -> str:
        """The latest message sent to `address` (Django's file backend: one file a
        connection, messages as they were sent)."""
        deadline = time.monotonic() + timeout
        while True:
            for path in sorted(self.inbox.glob("*.log"), key=lambda p: p.stat().st_mtime):
                text = path.read_text()
                if f"To: {address}" in text:
                    return text
            assert time.monotonic() < deadline, f"no mail to {address}"
            time.sleep(0.1)

    def link_in(self, mail: str) -> str:
        found = re.search(rf"{re.escape(self.url)}/\S+", mail)
        assert found, mail
        return found.group(0)


@pytest.fixture(scope="session")
def site(
    start_gateway: Callable[..., str],
    stripe_double: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Site:
    inbox = tmp_path_factory.mktemp("inbox")
    url = start_gateway(
        STRIPE_SECRET_KEY=STRIPE_KEY,
        STRIPE_API_BASE=stripe_double,
        STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET,
        EMAIL_BACKEND="django.core.mail.backends.filebased.EmailBackend",
        EMAIL_FILE_PATH=str(inbox),
    )
    return Site(url, inbox, stripe_double)


@pytest.fixture
def stripe_webhook_to(site: Site) -> Iterator[None]:
    """The double's events go to the site's webhook for this test (the double is shared)."""
    hook = {"url": f"{site.url}/api/stripe/webhook", "secret": WEBHOOK_SECRET}
    httpx.post(f"{site.stripe}/_double/webhook", data=hook).raise_for_status()
    yield
    httpx.post(f"{site.stripe}/_double/webhook", data={"url": "", "secret": WEBHOOK_SECRET})


def screenshot(page: Any, name: str) -> None:
    """The page at both widths, full length, under var/screenshots/ (the README shows some)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(150)  # charts redraw on resize
        page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
    page.set_viewport_size(size)


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical findings on the page as it stands."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:3]}
        for v in found
        if v["impact"] in ("serious", "critical")
    ]
