"""The supervisors' page in a real browser (Debian's headless Chromium): it shows a caller
the moment one is enqueued through the virtual carrier, and leaves a screenshot."""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from pathlib import Path

from hotline.carrier.callers import QueueChoice, QueuePlan, ScriptedCaller
from hotline.web.keys import SHARED
from tests.support.browser import ARTIFACTS, FLAGS
from tests.support.line import ADMIN_TOKEN, running_line


async def test_live_page_shows_a_caller_appear(chromium: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright

    async with (
        running_line(f"sqlite+aiosqlite:///{tmp_path / 'live.db'}") as line,
        async_playwright() as playwright,
    ):
        browser = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1400, "height": 900})
        await page.goto(f"{line.base_url}/live#token={ADMIN_TOKEN}")
        await page.wait_for_selector("text=等待 0 人")
        assert "token" not in page.url  # the token left the address bar
        caller = ScriptedCaller(
            keys=["2", "2"], queue=QueuePlan(then=QueueChoice.HANGUP, patience=8)
        )
        call = asyncio.create_task(line.call(caller))
        tile = page.locator('[data-desk="tax-invoice"]')
        await page.wait_for_selector("text=等待 1 人", timeout=10_000)
        assert await tile.locator(".waiting").inner_text() == "1"
        first = await page.locator(".desk").first.get_attribute("data-desk")
        assert first == "tax-invoice"  # busiest first
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "live.png"), full_page=True)
        await call
        await page.wait_for_selector("text=等待 0 人", timeout=10_000)
        await browser.close()


async def test_live_page_data_needs_the_token(tmp_path: Path) -> None:
    async with running_line(f"sqlite+aiosqlite:///{tmp_path / 'live.db'}") as line:
        async with line.session.get(line.base_url + "/live") as response:
            assert response.status == 200 and "实时监控" in await response.text()
        status, body = await line.api("/api/live/events", token=None)
        assert status == 401 and body["error"] == "unauthorized"


async def test_only_webhooks_that_change_the_line_wake_the_live_streams(tmp_path: Path) -> None:
    async with running_line(f"sqlite+aiosqlite:///{tmp_path / 'live.db'}") as line:
        changes = line.app[SHARED].changes
        params = {
            "CallSid": "CA" + "6" * 32,
            "From": "+8613912345678",
            "To": "+8610123450000",
            "AccountSid": "AC" + "0" * 32,
            "CallStatus": "in-progress",
        }
        token = changes.token()
        answered = await line.carrier.post("/twilio/voice", params)
        assert token.is_set()  # a new call: a new ticket
        menu = ET.fromstring(answered.content).find("Gather")
        assert menu is not None
        token = changes.token()
        moved = await line.carrier.post(menu.attrib["action"], {**params, "Digits": "2"})
        assert moved.status == 200 and ET.fromstring(moved.content).find("Gather") is not None
        assert not token.is_set()  # into a submenu: nothing the live view shows
