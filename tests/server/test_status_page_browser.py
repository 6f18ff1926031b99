"""The status page in a real headless browser: Debian's Chromium, driven by Playwright.

Screenshots at phone and desktop width, light and dark, land in test-artifacts/status-page/
for a person to look at. Without /usr/bin/chromium the tests fail and say ``make browser``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from statusdash.server.statuspage.page import LABELS
from tests.server.status_page_harness import (
    HOSTS,
    SECRET_CPU,
    StartPage,
    page_json,
    seed,
    status_page,
)

__all__ = ["status_page"]  # the fixture
CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "status-page"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run `make browser` (installs Debian's chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


def open_page(browser: Browser, url: str, **context: Any) -> tuple[Page, list[str]]:
    """The page at ``url`` and the console errors, page errors and failed loads it raised."""
    page = browser.new_context(**context).new_page()
    problems: list[str] = []
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    response = page.goto(url, wait_until="load")
    assert response is not None and response.status == 200
    return page, problems


def test_the_page_loads_cleanly_and_shows_the_state(
    browser: Browser, status_page: StartPage
) -> None:
    h = status_page()
    seed(h)
    url = f"{h.live.url}/status"
    page, problems = open_page(browser, url, viewport=DESKTOP)
    assert problems == []
    assert page.title().startswith("Example <Corp> & Co status")
    banner = page.locator("#overall")
    assert banner.get_attribute("data-status") == "down"
    assert banner.inner_text() == "Major outage"
    website = page.locator('[data-service="Website"]')
    assert website.get_attribute("data-status") == "up"
    assert website.locator(".state").first.inner_text() == "Operational"
    database = page.locator('[data-service="Database"]')
    assert database.locator(".state").first.inner_text() == "Down"
    assert page.locator('[data-group="Web"] .head .state').inner_text() == "Degraded"
    assert page.locator("[data-incident]").count() == 1
    assert "Database is failing" in page.locator("#incidents").inner_text()
    # Colours follow the state: a down service's label is drawn in the "down" red.
    red = database.locator(".state").first.evaluate("e => getComputedStyle(e).color")
    assert red == "rgb(208, 52, 58)"
    page.screenshot(path=str(ARTIFACTS / "desktop-light.png"), full_page=True)
    page.context.close()


def test_no_host_name_value_or_address_reaches_the_screen(
    browser: Browser, status_page: StartPage
) -> None:
    h = status_page()
    seed(h)
    page, problems = open_page(browser, f"{h.live.url}/status", viewport=PHONE)
    text = page.locator("body").inner_text()
    html = page.content()
    for secret in (*HOSTS, "10.20.30.40", "127.0.0.1", "connection refused", str(SECRET_CPU)):
        assert secret not in text and secret not in html, secret
    assert problems == []
    page.context.close()


def test_the_html_says_what_status_json_says(browser: Browser, status_page: StartPage) -> None:
    h = status_page(status_page_show_hosts=True)
    seed(h)
    body = page_json(h)
    # No JavaScript needed: the same content with scripts off.
    page, problems = open_page(browser, f"{h.live.url}/status", java_script_enabled=False)
    assert problems == []
    assert page.locator("#overall").get_attribute("data-status") == body["status"]
    assert page.locator("h1").inner_text() == body["title"]
    for kind, items in (("service", body["services"]), ("group", body["groups"])):
        assert page.locator(f"[data-{kind}]").count() == len(items)
        for item in items:
            row = page.locator(f'[data-{kind}="{item["name"]}"]')
            assert row.get_attribute("data-status") == item["status"]
            assert row.locator(".head .state").inner_text() == LABELS[item["status"]]
            spans = row.locator(".bar span")
            states = spans.evaluate_all("els => els.map(e => e.className)")
            assert states == [d["state"] for d in item["availability"]["days"]]
            titles = spans.evaluate_all("els => els.map(e => e.title)")
            for title, d in zip(titles, item["availability"]["days"], strict=True):
                shown = "no data" if d["percent"] is None else f"{d['percent']:.2f} %"
                assert title == f"{d['date']}: {shown}"
            for host in item.get("hosts", []):
                li = row.locator(f'[data-host="{host["name"]}"]')
                assert li.locator(".state").get_attribute("class") == f"state {host['status']}"
    incidents = page.locator("[data-incident] .name").all_inner_texts()
    assert incidents == [i["title"] for i in body["incidents"]]
    page.context.close()


def test_screenshots_at_phone_and_desktop_width_light_and_dark(
    browser: Browser, status_page: StartPage
) -> None:
    h = status_page(status_page_show_hosts=True)
    seed(h)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url = f"{h.live.url}/status"
    for name, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
        for scheme in ("light", "dark"):
            page, problems = open_page(browser, url, viewport=viewport, color_scheme=scheme)
            assert problems == []
            # Nothing wider than the screen: no sideways scrolling on a phone.
            width = page.evaluate("document.documentElement.scrollWidth")
            assert width <= viewport["width"], (name, width)
            shot = ARTIFACTS / f"{name}-{scheme}.png"
            page.screenshot(path=str(shot), full_page=True)
            assert shot.stat().st_size > 10_000
            page.context.close()
    assert httpx.get(url).headers["content-security-policy"].startswith("default-src 'none'")
