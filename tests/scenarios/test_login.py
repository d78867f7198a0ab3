"""Logging in and out of the people's pages through the running line: the form, the
session's cookie, the landing page of each role, form tokens, the lockout, the idle timeout,
and what the logs keep of it all."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

from hotline.auth.accounts import AccountRole
from hotline.auth.passwords import Passwords
from hotline.web.keys import ACCOUNT, USERS
from hotline.web.people.guard import requires
from hotline.web.people.pages import add_page
from tests.support.line import Line, running_line
from tests.support.logs import leaks
from tests.support.people import PASSWORD, Page, add_account, browser

WRONG = "not the password 13812345678"  # a phone-like run: a log that kept it would show


@pytest.fixture
async def line(tmp_path: Path) -> AsyncIterator[Line]:
    async with running_line(f"sqlite+aiosqlite:///{tmp_path / 'people.db'}") as line:
        yield line


def events(line: Line, name: str) -> list[dict[str, Any]]:
    found = (json.loads(text) for text in line.log.getvalue().splitlines())
    return [event for event in found if event.get("event") == name]


def sent_to_login(page: Page) -> str | None:
    """The page the login form returns to, when `page` sends there."""
    location = URL(page.location)
    return location.query.get("next") if page.status == 303 and location.path == "/login" else None


def refused_login(page: Page, username: str) -> str:
    """The refusal's page, the name typed (shown back in the form) taken out."""
    assert page.status == 200 and "用户名或密码错误" in page.text, page.text
    return page.text.replace(f'value="{username}"', 'value=""')


async def test_the_login_form_needs_no_script_and_names_its_fields(line: Line) -> None:
    async with browser(line) as person:
        page = await person.get("/login")
        assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
        text = page.text
        assert '<html lang="zh-CN">' in text and "登录" in text and "Log in" in text
        assert '<label for="username">' in text and 'id="username" name="username"' in text
        assert '<label for="password">' in text and 'id="password" name="password"' in text
        assert 'type="password"' in text and 'autocomplete="current-password"' in text
        assert "<script" not in text and "http://" not in text and "https://" not in text
        assert page.headers["Cache-Control"] == "no-store"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
        css = await person.get("/static/people.css")
        assert css.status == 200 and css.headers["Content-Type"].startswith("text/css")
        assert ":focus-visible" in css.text


async def test_a_department_user_logs_in_lands_on_cases_and_logs_out(line: Line) -> None:
    await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
    async with browser(line) as person:
        await person.get("/login")
        before = person.cookie()
        done = await person.login("Zhang ")  # as typed: capitals and a space
        assert done.status == 303 and done.location == "/cases"
        cookie = done.headers["Set-Cookie"]
        for attribute in ("HttpOnly", "SameSite=Lax", "Secure", "Max-Age=1800", "Path=/"):
            assert attribute in cookie, cookie
        assert person.cookie() not in (None, before)  # a new session id at login

        home = await person.get("/cases")
        assert home.status == 200
        assert "zhang" in home.text and "税务局" in home.text and "Tax Bureau" in home.text
        assert 'action="/logout"' in home.text

        out = await person.post("/logout", {"csrf_token": home.token})
        assert out.status == 303 and out.location == "/login"
        assert sent_to_login(await person.get("/cases")) == "/cases"
    assert [e["username"] for e in events(line, "login")] == ["zhang"]
    assert [e["username"] for e in events(line, "logout")] == ["zhang"]


@pytest.mark.parametrize(
    ("role", "extra", "home"),
    [
        (AccountRole.AGENT, {"agent_id": "1001"}, "/desk"),
        (AccountRole.CENTRE, {}, "/centre"),
        (AccountRole.ADMIN, {}, "/centre"),
    ],
)
async def test_each_role_lands_on_its_page_and_opens_no_other(
    line: Line, role: AccountRole, extra: dict[str, str], home: str
) -> None:
    await add_account(line, "li", role, **extra)
    async with browser(line) as person:
        done = await person.login("li")
        assert done.status == 303 and done.location == home
        assert (await person.get(home)).status == 200
        for other in {"/desk", "/cases", "/centre"} - {home}:
            page = await person.get(other)
            assert page.status == 403 and 'data-error="forbidden"' in page.text
        assert (await person.get("/login")).location == home  # logged in: on to the page


async def test_a_page_asked_for_before_logging_in_is_returned_to_after(line: Line) -> None:
    await add_account(line, "zhou", AccountRole.CENTRE)
    async with browser(line) as person:
        sent = await person.get("/centre?tab=queues")
        assert sent_to_login(sent) == "/centre?tab=queues"
        form = await person.get(sent.location)
        assert 'name="next" value="/centre?tab=queues"' in form.text
        fields = {"csrf_token": form.token, "username": "zhou", "password": PASSWORD}
        done = await person.post("/login", fields | {"next": "/centre?tab=queues"})
        assert done.status == 303 and done.location == "/centre?tab=queues"


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/", "/\\evil.example"])
async def test_next_never_leads_off_the_site(line: Line, target: str) -> None:
    await add_account(line, "zhou", AccountRole.CENTRE)
    async with browser(line) as person:
        form = await person.get("/login?next=" + target)
        assert "evil" not in form.text
        done = await person.login("zhou", next=target)
        assert done.status == 303 and done.location == "/centre"


async def test_forms_without_their_sessions_token_are_refused(line: Line) -> None:
    await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
    async with browser(line) as person, browser(line) as other:
        form = await person.get("/login")
        fields = {"username": "zhang", "password": PASSWORD}
        for token in ({}, {"csrf_token": ""}, {"csrf_token": form.token + "x"}):
            page = await person.post("/login", fields | token)
            assert page.status == 403 and 'data-error="csrf-failed"' in page.text
            assert "表单已过期" in page.text and "The form has expired" in page.text
        # Another browser's token (a page of this site that another site fetched) is not it.
        stolen = (await other.get("/login")).token
        assert (await person.post("/login", fields | {"csrf_token": stolen})).status == 403
        # Without a session at all (a cross-site post from a browser that never came here).
        async with browser(line) as stranger:
            assert (await stranger.post("/login", fields | {"csrf_token": stolen})).status == 403

        assert (await person.login("zhang")).status == 303
        assert (await person.post("/logout", {})).status == 403
        assert (await person.get("/cases")).status == 200  # still logged in
        # A script of a page asks for JSON; the refusal's id is stable.
        page = await person.post("/logout", {}, headers={"Accept": "application/json"})
        assert page.status == 403 and json.loads(page.text)["error"] == "csrf-failed"
    assert len(events(line, "csrf_refused")) == 7


async def test_a_token_of_odd_bytes_is_refused_not_a_server_error(line: Line) -> None:
    """Bytes that are no UTF-8, in a header or in the form, decode to text that cannot be
    encoded again: the comparison refuses it (403) instead of raising (500)."""
    await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
    async with browser(line) as person:
        assert (await person.login("zhang")).status == 303
        cookie = person.cookie()
        assert cookie is not None
        for header, body in (
            (("X-CSRF-Token", b"\xff\xfe"), b"csrf_token=x"),
            (("X-Unused", b"x"), b"csrf_token=%FF%FE%ED%A0%80"),
        ):
            answer = await line.raw(
                "POST",
                "/logout",
                [
                    ("Cookie", f"hotline_session={cookie}"),
                    ("Content-Type", "application/x-www-form-urlencoded"),
                    header,
                ],
                body,
            )
            assert answer.status == 403, answer.body
        assert (await person.get("/cases")).status == 200  # still logged in


async def test_a_request_that_is_not_a_page_needs_a_login_and_the_role(tmp_path: Path) -> None:
    """A page to come that takes a POST (here a stand-in added to the app) answers 401
    without a login and 403 for another role; its handler sees the account."""

    @requires(AccountRole.DEPARTMENT)
    async def accept(request: web.Request) -> web.StreamResponse:
        return web.json_response({"by": request[ACCOUNT].username})

    def prepare(app: web.Application) -> None:
        add_page(app, "POST", "/cases/accept", accept)

    database = f"sqlite+aiosqlite:///{tmp_path / 'people.db'}"
    async with running_line(database, prepare=prepare) as line:
        await add_account(line, "zhang", AccountRole.DEPARTMENT, department="customs")
        await add_account(line, "zhou", AccountRole.CENTRE)
        async with browser(line) as person:
            token = (await person.get("/login")).token
            page = await person.post("/cases/accept", {"csrf_token": token})
            assert page.status == 401 and 'data-error="login-required"' in page.text
            await person.login("zhou")
            token = (await person.get("/centre")).token
            assert (await person.post("/cases/accept", {"csrf_token": token})).status == 403
        async with browser(line) as person:
            await person.login("zhang")
            token = (await person.get("/cases")).token
            page = await person.post("/cases/accept", {"csrf_token": token})
            assert page.status == 200 and json.loads(page.text) == {"by": "zhang"}


async def test_five_wrong_passwords_lock_the_account_for_15_minutes(line: Line) -> None:
    await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
    async with browser(line) as person:
        for _ in range(5):
            line.clock.now += timedelta(minutes=2)
            refused_login(await person.login("zhang", WRONG), "zhang")
        assert [e["username"] for e in events(line, "account_locked")] == ["zhang"]
        locked_at = line.clock.now
        # The right password, locked: answered as a wrong one.
        refused_login(await person.login("zhang"), "zhang")
        line.clock.now = locked_at + timedelta(minutes=14, seconds=59)
        refused_login(await person.login("zhang"), "zhang")
        line.clock.now = locked_at + timedelta(minutes=15)
        done = await person.login("zhang")
        assert done.status == 303 and done.location == "/cases"
    found = await line.app[USERS].credentials("zhang", line.clock.now)
    assert found is not None and found.failures == ()  # a good login starts the count again
    locked = events(line, "account_locked")[0]
    assert set(locked) == {"event", "username", "level", "timestamp"}


async def test_wrong_passwords_spread_out_do_not_lock(line: Line) -> None:
    await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
    async with browser(line) as person:
        for _ in range(6):
            line.clock.now += timedelta(minutes=4)  # never five within 15 minutes
            refused_login(await person.login("zhang", WRONG), "zhang")
        assert (await person.login("zhang")).status == 303
    assert events(line, "account_locked") == []


async def test_unknown_locked_and_disabled_answer_exactly_as_a_wrong_password(line: Line) -> None:
    await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
    locked = await add_account(line, "zhou", AccountRole.CENTRE)
    await add_account(line, "chen", AccountRole.CENTRE)
    await line.app[USERS].disable("chen")
    for _ in range(5):
        await line.app[USERS].record_failure(locked.id, line.clock.now)
    # What one Argon2 check costs here at best: every refusal includes one.
    hasher = Passwords()
    stored = hasher.hash("something else entirely")
    check_s = min(_timed(lambda: hasher.matches(stored, WRONG)) for _ in range(3))

    cases = [
        ("wrong password", "zhang", WRONG),
        ("unknown user", "nobody", PASSWORD),
        ("a name no account may have", "13812345678", PASSWORD),
        ("locked, the right password", "zhou", PASSWORD),
        ("disabled, the right password", "chen", PASSWORD),
    ]
    async with browser(line) as person:
        answers = [
            (case, name, await person.login(name, password)) for case, name, password in cases
        ]
    expected = refused_login(answers[0][2], "zhang")
    for case, name, page in answers:
        assert refused_login(page, name) == expected, case
        assert page.headers.get("Set-Cookie") is None, case  # the same session throughout
        assert page.seconds >= 0.5 * check_s, f"{case}: {page.seconds:.3f} s, no Argon2 check"
    reasons = [e["reason"] for e in events(line, "login_failed")]
    assert reasons == ["wrong-password", "unknown-user", "unknown-user", "locked", "disabled"]
    assert all("username" not in e for e in events(line, "login_failed")[1:3])  # never logged


def _timed(work: Any) -> float:
    started = time.perf_counter()
    work()
    return time.perf_counter() - started


async def test_an_idle_session_ends(tmp_path: Path) -> None:
    database = f"sqlite+aiosqlite:///{tmp_path / 'people.db'}"
    async with running_line(database, session_idle_s=10 * 60) as line:
        await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
        async with browser(line) as person:
            done = await person.login("zhang")
            assert "Max-Age=600" in done.headers["Set-Cookie"]
            for _ in range(3):  # each request moves the idle time's start on
                line.clock.now += timedelta(minutes=9, seconds=59)
                assert (await person.get("/cases")).status == 200
            line.clock.now += timedelta(minutes=10, seconds=1)
            page = await person.get("/cases")
            assert sent_to_login(page) == "/cases"
            line.clock.now += timedelta(seconds=1)
            assert (await person.get("/cases")).status == 303  # over for good


async def test_a_disabled_account_is_logged_out_at_once(line: Line) -> None:
    await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
    async with browser(line) as person:
        await person.login("zhang")
        assert (await person.get("/cases")).status == 200
        await line.app[USERS].disable("zhang")
        assert (await person.get("/cases")).status == 303
        refused_login(await person.login("zhang"), "zhang")


async def test_the_log_keeps_no_password(line: Line) -> None:
    await add_account(line, "zhang", AccountRole.DEPARTMENT, department="tax-bureau")
    async with browser(line) as person:
        await person.login("zhang", WRONG)
        await person.login(WRONG, WRONG)  # a password typed into the name field
        await person.login("zhang")
        await person.logout()
    log = line.log.getvalue()
    assert PASSWORD not in log and WRONG not in log
    assert leaks(log, ()) == []
