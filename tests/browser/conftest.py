"""Browser tests: Debian's Chromium driven by Playwright against a live ``sw serve`` (tests/live.py).

They skip, with the reason, only where /usr/bin/chromium is missing (`.ci/run` installs it). Screenshots of
every page go to var/screenshots/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from app.schemas import examples
from app.schemas.goods import EXAMPLE_GOODS
from tests.live import clean_env, live_sw

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
ADMIN_TOKEN = "browser-test-admin-token-0123456789"

if not CHROMIUM.exists():
    pytest.skip(
        "browser tests need Debian's chromium at /usr/bin/chromium (`apt-get install chromium`; .ci/run does)",
        allow_module_level=True,
    )

from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, sync_playwright  # noqa: E402


@dataclass
class Site:
    base: str
    official_key: str
    mismatched_record: str
    cleared_record: str


@dataclass
class Watch:
    """What a page did that a test must see: requests that left the machine, and JavaScript errors."""

    blocked: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class Service:
    """A live ``sw serve`` with the example enterprises and goods filed: an HTTP client, the admin's headers and
    each role's (waiting for the business result)."""

    base: str
    http: httpx.Client
    admin: dict[str, str]
    keys: dict[str, dict[str, str]]


@contextmanager
def filed_service(folder: Path) -> Iterator[Service]:
    """``sw serve`` on SQLite (embedded matcher, dispatcher and mock agencies; nothing inspected), filed as the
    README's tour does."""
    env = clean_env(
        SW_DATABASE_URL=f"sqlite+aiosqlite:///{folder / 'sw.db'}",
        SW_ADMIN_TOKEN=ADMIN_TOKEN,
        SW_SUPERVISION_RATE_REGULAR="0",
        SW_DISPATCH_POLL_S="0.1",
    )
    # Up to 120 s to start: in CI this runs beside the other database's suite on two cores.
    with (
        live_sw("serve", env, "/readyz", timeout_s=120) as server,
        httpx.Client(base_url=server.base, timeout=30) as http,
    ):
        admin = {"X-API-Key": ADMIN_TOKEN}
        keys = {}
        for enterprise in examples.ENTERPRISES:
            http.post("/api/v1/enterprises", json=enterprise, headers=admin).raise_for_status()
            issued = http.post(f"/api/v1/enterprises/{enterprise['code']}/keys", json={}, headers=admin)
            keys[enterprise["roles"][0]] = {"X-API-Key": issued.raise_for_status().json()["key"], "Prefer": "wait=10"}
        http.post("/api/v1/goods", json=EXAMPLE_GOODS, headers=admin).raise_for_status()
        yield Service(server.base, http, admin, keys)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A live service holding one mismatched and one cleared purchase, sent through the API as the README's tour
    does."""
    with filed_service(tmp_path_factory.mktemp("browser")) as service:
        http, keys = service.http, service.keys
        records = []
        for order, payment, waybill in (
            (examples.MISMATCHED_ORDER, examples.MISMATCHED_PAYMENT, examples.MISMATCHED_WAYBILL),
            (examples.ORDER, examples.PAYMENT, examples.WAYBILL),
        ):
            http.post("/api/v1/orders", json=order, headers=keys["platform"]).raise_for_status()
            http.post("/api/v1/payments", json=payment, headers=keys["payment"]).raise_for_status()
            receipt = http.post("/api/v1/waybills", json=waybill, headers=keys["logistics"]).raise_for_status()
            records.append(receipt.json()["recordId"])
        official = http.post("/api/v1/officials", json={"label": "张三 · 杭州海关"}, headers=service.admin)
        yield Site(service.base, official.raise_for_status().json()["key"], records[0], records[1])


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def context(browser: Browser, watch: Watch) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) that lets no request leave this machine: the pages must work
    on an intranet without internet."""
    ctx = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            watch.blocked.append(route.request.url)
            route.abort()

    ctx.route("**/*", only_local)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext, watch: Watch) -> Iterator[Page]:
    tab = context.new_page()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            watch.errors.append(f"console: {message.text}")

    tab.on("console", on_console)
    tab.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
    yield tab
    tab.close()


def screenshot(page: Page, name: str, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path
