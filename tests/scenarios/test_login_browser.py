"""Logging in with the keyboard alone, in a real browser (Debian's headless Chromium): a
department user asks for their page, is sent to the form, types, Tabs and presses Enter,
lands on the page (a screenshot is left in artifacts/login.png), and logs out."""

from __future__ import annotations

from pathlib import Path

from hotline.auth.accounts import AccountRole
from tests.support.browser import ARTIFACTS, FLAGS
from tests.support.line import running_line
from tests.support.people import PASSWORD, add_account


async def test_a_department_user_logs_in_and_out_by_keyboard(chromium: str, tmp_path: Path) -> None:
    from playwright.async_api import async_playwright, expect

    async with (
        running_line(f"sqlite+aiosqlite:///{tmp_path / 'people.db'}") as line,
        async_playwright() as playwright,
    ):
        await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
        browser = await playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        page = await browser.new_page(viewport={"width": 1000, "height": 700})
        await page.goto(f"{line.base_url}/cases")
        assert page.url.startswith(f"{line.base_url}/login?next=")
        await expect(page.get_by_label("用户名")).to_be_focused()  # by its label, as read aloud

        await page.keyboard.type("zhang")
        await page.keyboard.press("Tab")
        await expect(page.get_by_label("密码")).to_be_focused()
        await page.keyboard.type(PASSWORD)
        await page.keyboard.press("Enter")

        await page.wait_for_url(f"{line.base_url}/cases")
        await expect(page.locator(".who")).to_contain_text("zhang")
        await expect(page.locator(".who")).to_contain_text("税务局")
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)

        await page.keyboard.press("Tab")  # the page's one control: log out
        await expect(page.get_by_role("button", name="退出登录 Log out")).to_be_focused()
        await page.keyboard.press("Enter")
        await page.wait_for_url(f"{line.base_url}/login")
        await page.goto(f"{line.base_url}/cases")
        assert page.url.startswith(f"{line.base_url}/login?next=")
        await browser.close()
