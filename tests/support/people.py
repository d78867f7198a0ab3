"""People on the service's pages, for tests: accounts added to a running line, and a
browser-like client with cookies of its own that fills in the forms it is given."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from multidict import CIMultiDictProxy

from hotline.auth.accounts import Account, AccountRole
from hotline.auth.passwords import Passwords
from hotline.web.keys import CLOCK, USERS
from tests.support.line import Line

PASSWORD = "Tax-bureau 2026 spring"  # of every account a test adds, unless it says otherwise
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def add_account(
    line: Line,
    username: str,
    role: AccountRole,
    *,
    password: str = PASSWORD,
    department: str | None = None,
    agent_id: str | None = None,
) -> Account:
    return await line.app[USERS].add(
        username,
        role,
        Passwords().hash(password),
        line.app[CLOCK](),
        department=department,
        agent_id=agent_id,
    )


@dataclass(frozen=True)
class Page:
    status: int
    headers: CIMultiDictProxy[str]
    text: str
    seconds: float  # from sending the request to the whole answer

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")

    @property
    def token(self) -> str:
        """The form token the page carries."""
        found = _TOKEN.search(self.text)
        assert found, f"no form token in the page:\n{self.text[:500]}"
        return found.group(1)


class Browser:
    """One person's browser: cookies of its own (those of 127.0.0.1 too, and the Secure ones
    over the test's plain http: the line's public URL is https), redirects not followed."""

    def __init__(self, base_url: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url
        self.session = session

    async def get(self, path: str, **kw: Any) -> Page:
        return await self._send("GET", path, **kw)

    async def post(self, path: str, form: dict[str, str], **kw: Any) -> Page:
        return await self._send("POST", path, data=form, **kw)

    async def login(self, username: str, password: str = PASSWORD, **extra: str) -> Page:
        """The login form fetched and sent, as a person would."""
        form = await self.get("/login")
        assert form.status == 200, form.text
        fields = {"csrf_token": form.token, "username": username, "password": password}
        return await self.post("/login", fields | extra)

    async def logout(self) -> Page:
        home = await self.get("/login", allow_redirects=True)  # where a person is sent
        return await self.post("/logout", {"csrf_token": home.token})

    def cookie(self, name: str = "hotline_session") -> str | None:
        for cookie in self.session.cookie_jar:
            if cookie.key == name:
                return cookie.value
        return None

    async def _send(self, method: str, path: str, **kw: Any) -> Page:
        kw.setdefault("allow_redirects", False)
        started = time.perf_counter()
        async with self.session.request(method, self.base_url + path, **kw) as response:
            text = await response.text()
            return Page(response.status, response.headers, text, time.perf_counter() - started)


@asynccontextmanager
async def browser(line: Line, *others: Line) -> AsyncIterator[Browser]:
    """A browser at `line`; `others`: more processes of the same line that it may be sent
    to (its `base_url` changed), as a load balancer would."""
    origins = [line.base_url, *(other.base_url for other in others)]
    jar = aiohttp.CookieJar(unsafe=True, treat_as_secure_origin=origins)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        yield Browser(line.base_url, session)
