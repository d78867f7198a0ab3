"""The sessions of one process: a flood of login forms never pushes out a login."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web
from aiohttp.test_utils import make_mocked_request
from aiohttp_session import Session

from hotline.web.people.sessions import COOKIE, MemorySessions

NOW = datetime(2026, 12, 1, 4, 0, tzinfo=UTC)


async def saved(storage: MemorySessions, data: dict[str, object]) -> str:
    """A new session with `data`, saved; its id as the cookie carries it."""
    session = Session(None, data=None, new=True, max_age=storage.max_age)
    session.update(data)
    response = web.Response()
    await storage.save_session(make_mocked_request("GET", "/"), response, session)
    return response.cookies[COOKIE].value


async def loaded(storage: MemorySessions, key: str) -> Session:
    request = make_mocked_request("GET", "/", headers={"Cookie": f"{COOKIE}={key}"})
    return await storage.load_session(request)


async def test_visitors_forms_push_out_only_other_forms() -> None:
    storage = MemorySessions(lambda: NOW, most=3, max_age=1800)
    person = await saved(storage, {"user": 7, "name": "zhang", "csrf": "t"})
    forms = [await saved(storage, {"csrf": f"form-{i}"}) for i in range(10)]
    assert (await loaded(storage, person)).get("name") == "zhang"
    assert [(await loaded(storage, key)).new for key in forms] == [True] * 7 + [False] * 3
