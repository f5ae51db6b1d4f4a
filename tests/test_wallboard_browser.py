"""The wallboard in a real browser: headless Chromium (Debian's, ``/usr/bin/chromium``)
driven by Playwright, over `switchboard run` carrying calls through the Asterisk
simulator.  Skipped, saying why, where no Chromium is installed (``.ci/run``
installs it).

Each test waits on the page (Playwright's ``expect`` with a timeout), never for a
time; and no page may log a console error or run a script out of the data.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

pytest.importorskip("playwright", reason="playwright is a dev dependency: pip install -e '.[dev]'")

from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from tests.wallboard_office import CALLED, EVIL, office

CHROMIUM = os.environ.get("SWITCHBOARD_TEST_CHROMIUM") or shutil.which("chromium") or ""
pytestmark = [
    pytest.mark.asyncio,
    pytest.mark.skipif(
        not CHROMIUM,
        reason="no chromium to drive: apt-get install chromium (or set SWITCHBOARD_TEST_CHROMIUM)",
    ),
]
SOON = 1_000  # ms: a change in the runtime is on the page within a second
LOAD = 10_000  # ms: the first load of a page (the browser starting up)


@asynccontextmanager
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            await launched.close()


@asynccontextmanager
async def wallboard(browser: Browser, url: str) -> AsyncIterator[tuple[Page, list[str]]]:
    """The page at ``url``, drawn once; the console errors it logged."""
    page = await browser.new_page()
    errors: list[str] = []

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await page.goto(url)
    await expect(page.locator("#status")).to_have_attribute("data-state", "live", timeout=LOAD)
    try:
        yield page, errors
    finally:
        await page.close()


async def test_a_call_an_agents_pause_and_the_funnel_show_on_the_page_as_they_happen() -> None:
    async with office() as (stack, server), browser() as chromium:
        async with wallboard(chromium, server.url + "/wallboard?lang=en") as (page, errors):
            support = page.locator('#queues tr[data-department="support"]')
            await expect(support.locator(".waiting")).to_have_text("0")
            anna = page.locator('#agents tr[data-agent="anna"] .state')
            await expect(anna).to_have_attribute("data-state", "available")
            await expect(page.locator("#no-calls")).to_be_visible()

            runtime = stack.app.runtime
            runtime.acd.pause("anna", runtime.clock.now(), "lunch")
            await expect(anna).to_have_attribute("data-state", "paused", timeout=SOON)
            await expect(anna).to_have_text("paused")
            await expect(page.locator('#agents tr[data-agent="anna"] .reason')).to_have_text(
                "lunch"
            )

            caller = await stack.place(caller="79035550001", called=CALLED)
            await expect(support.locator(".waiting")).to_have_text("1", timeout=SOON)
            row = page.locator("#calls tbody tr")
            await expect(row).to_have_count(1, timeout=SOON)
            await expect(row.locator(".caller")).to_have_text("79035550001")
            await expect(row.locator("td").nth(1)).to_have_text("main")
            await expect(row.locator("td").nth(2)).to_have_text("wait", timeout=SOON)
            await expect(page.locator("#no-calls")).to_be_hidden()

            await stack.sim.hangup(caller)
            await expect(row).to_have_count(0, timeout=SOON)
            await expect(support.locator(".waiting")).to_have_text("0")
            chart = page.locator('#funnel svg[data-scenario="main"]')
            await expect(chart.locator("g")).to_have_count(2, timeout=SOON)
            hello, wait = (
                chart.locator('g[data-node="hello"]'),
                chart.locator('g[data-node="wait"]'),
            )
            await expect(hello).to_have_attribute("data-calls", "1")
            await expect(hello).to_have_attribute("data-abandoned", "0")
            await expect(hello.locator("rect.entered")).to_have_count(1)
            await expect(hello.locator("rect.abandoned")).to_have_count(0)
            await expect(wait).to_have_attribute("data-abandoned", "1")
            await expect(wait.locator("rect.abandoned")).to_have_count(1)
            await expect(wait.locator("text.count")).to_have_text("1 / 1")
            await expect(support.locator(".service-level")).to_have_text("0%")

            assert errors == []
        await stack.settled()


async def test_the_page_speaks_russian_by_the_companys_language_and_english_when_asked() -> None:
    async with office() as (_, server), browser() as chromium:
        async with wallboard(chromium, server.url + "/wallboard") as (page, errors):
            await expect(page.locator("html")).to_have_attribute("lang", "ru")
            await expect(page.locator("h1")).to_have_text("Табло Switchboard")
            await expect(page.locator('[data-label="queues"]')).to_have_text("Очереди")
            await expect(page.locator('[data-label="no_calls"]')).to_have_text("Звонков нет.")
            await expect(page.locator('#agents tr[data-agent="boris"] .state')).to_have_text(
                "свободен"
            )
            await expect(page.locator("#status")).to_have_text("в эфире")
            assert errors == []
        async with wallboard(chromium, server.url + "/wallboard?lang=en") as (page, errors):
            await expect(page.locator("html")).to_have_attribute("lang", "en")
            await expect(page.locator("h1")).to_have_text("Switchboard wallboard")
            await expect(page.locator('[data-label="queues"]')).to_have_text("Queues")
            await expect(page.locator('#agents tr[data-agent="boris"] .state')).to_have_text(
                "available"
            )
            assert errors == []
        async with wallboard(chromium, server.url + "/wallboard?lang=ru") as (page, errors):
            await expect(page.locator('[data-label="agents"]')).to_have_text("Операторы")
            assert errors == []


async def test_names_full_of_html_show_as_text_and_run_nothing() -> None:
    async with (
        office() as (_, server),
        browser() as chromium,
        wallboard(chromium, server.url + "/wallboard?lang=en") as (page, errors),
    ):
        support = page.locator('#queues tr[data-department="support"] td').first
        await expect(support).to_have_text(f"Support {EVIL}")
        anna = page.locator('#agents tr[data-agent="anna"] td').first
        await expect(anna).to_have_text(f"Anna {EVIL}")
        assert await page.locator("main img").count() == 0
        assert await page.evaluate("window.pwned") is None
        assert errors == []
