"""Where people's sessions live, and what a session holds.

A session is kept on the server; its cookie carries only a random id. With
`HOTLINE_REDIS_URL` the sessions are in Redis (aiohttp-session's RedisStorage), so every
process of the line serves every person. Without it they are in this process's memory,
like the rest of the state a lone process keeps (rate limits, live notices): a restart
logs people out. They are not in the database because every page view writes the session
(its last-seen time), and on SQLite those writes would queue for the single writer with the
calls' ticket writes.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

import structlog
from aiohttp import web
from aiohttp_session import AbstractStorage, Session, get_session, new_session
from aiohttp_session.redis_storage import RedisStorage
from redis.asyncio import Redis

from hotline.auth.accounts import Account
from hotline.auth.tokens import new_token
from hotline.settings import Settings
from hotline.web.keys import CLOCK, SETTINGS, USERS, Clock

log = structlog.get_logger("hotline.people")

COOKIE = "hotline_session"
# A person waits this long for Redis before the page says sessions are unavailable; the
# webhooks never wait on it (they load no session).
REDIS_TIMEOUT_S = 1.0

# The session's fields.
_USER = "user"  # the account's id
_NAME = "name"  # its username, checked against the account's on every request
_SEEN = "seen"  # the time of the last request, on the app's clock (seconds since the epoch)
_CSRF = "csrf"  # the token every form of this session carries (see csrf.py)


def _cookie(settings: Settings) -> dict[str, Any]:
    """HttpOnly: no script reads it. SameSite=Lax: not sent with another site's POSTs.
    Secure when people reach the service over https."""
    return {
        "max_age": max(1, int(settings.session_idle_s)),
        "httponly": True,
        "samesite": "Lax",
        "secure": settings.secure_cookies or None,
        "path": "/",
    }


class LineRedisStorage(RedisStorage):
    """RedisStorage with its keys under the line's prefix (`hotline:session_<id>`).

    RedisStorage names its keys `cookie_name + "_" + id`, and reads and writes the cookie
    itself under the name given at construction. The keys are moved under the prefix so
    two lines sharing one Redis keep their sessions apart: a cookie of one is not a
    session on the other.
    """

    def __init__(self, redis: Redis, *, prefix: str, **cookie: Any) -> None:
        super().__init__(redis, cookie_name=COOKIE, key_factory=new_token, **cookie)
        self._keys = f"{prefix}session"

    @property
    def cookie_name(self) -> str:
        return self._keys


class MemorySessions(AbstractStorage):
    """Sessions of this process alone, by random id, expiring `max_age` after their last
    save on the app's clock. At most `most` people's sessions are kept, and apart from them
    at most `most` visitors' (the login page opens one for every visitor): past that,
    those saved longest ago go first."""

    def __init__(self, clock: Clock, *, most: int = 10_000, **cookie: Any) -> None:
        super().__init__(cookie_name=COOKIE, **cookie)
        self._clock = clock
        self._most = most
        # id: (until, data). Visitors' pre-sessions (a login form's token) apart from the
        # people's: a flood of login forms pushes out only other forms, never a login.
        self._people: OrderedDict[str, tuple[datetime, str]] = OrderedDict()
        self._visitors: OrderedDict[str, tuple[datetime, str]] = OrderedDict()

    async def load_session(self, request: web.Request) -> Session:
        key = self.load_cookie(request)
        kept = (self._people.get(key) or self._visitors.get(key)) if key else None
        if key is None or kept is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        until, data = kept
        if until <= self._clock():
            self._forget(key)
            return Session(None, data=None, new=True, max_age=self.max_age)
        return Session(key, data=self._decoder(data), new=False, max_age=self.max_age)

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        key = session.identity
        if session.empty:
            if key is not None:
                self._forget(str(key))
            self.save_cookie(response, "", max_age=session.max_age)
            return
        key = new_token() if key is None else str(key)
        until = self._clock() + timedelta(seconds=session.max_age or self.max_age or 0)
        self._forget(key)
        kept = self._people if session.get(_USER) is not None else self._visitors
        # Stored encoded, as Redis would: a later change to the dict is not a saved change.
        kept[key] = (until, self._encoder(self._get_session_data(session)))
        while len(kept) > self._most:
            kept.popitem(last=False)
        self.save_cookie(response, key, max_age=session.max_age)

    def _forget(self, key: str) -> None:
        self._people.pop(key, None)
        self._visitors.pop(key, None)


def open_storage(settings: Settings, clock: Clock) -> tuple[AbstractStorage, Redis | None]:
    """The session store for these settings, and its Redis client to close (if any)."""
    cookie = _cookie(settings)
    if not settings.redis_url:
        return MemorySessions(clock, **cookie), None
    redis = Redis.from_url(
        settings.redis_url,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )
    return LineRedisStorage(redis, prefix=settings.redis_prefix, **cookie), redis


async def csrf_token(request: web.Request) -> str:
    """This session's form token; a visitor without a session gets one (a pre-session, so
    that the login form too is bound to the browser that asked for it)."""
    session = await get_session(request)
    token = session.get(_CSRF)
    if not isinstance(token, str):
        token = session[_CSRF] = new_token()
    return token


async def expected_csrf(request: web.Request) -> str | None:
    """The token this session's forms carry, or None without a session."""
    token = (await get_session(request)).get(_CSRF)
    return token if isinstance(token, str) else None


async def start(request: web.Request, account: Account) -> None:
    """A new session (a new id and a new form token) for a person who just logged in:
    an id anyone knew before the login, such as a planted cookie, is worth nothing."""
    session = await new_session(request)
    session[_USER] = account.id
    session[_NAME] = account.username
    session[_SEEN] = _now(request).timestamp()
    session[_CSRF] = new_token()


async def current(request: web.Request) -> Account | None:
    """The person logged in with this request's session, or None.

    The session ends when it has been idle longer than the setting, and when its account
    is gone, disabled or renamed: the account is read on every request, so disabling
    someone logs them out at once. Each request moves the session's last-seen time on.
    """
    session = await get_session(request)
    user_id, name, seen = session.get(_USER), session.get(_NAME), session.get(_SEEN)
    if not isinstance(user_id, int) or not isinstance(seen, int | float):
        return None
    now = _now(request)
    if now.timestamp() - seen > request.config_dict[SETTINGS].session_idle_s:
        log.info("session_idle", username=name)
        session.invalidate()
        return None
    account = await request.config_dict[USERS].get(user_id)
    if account is None or account.disabled or account.username != name:
        log.info("session_ended", username=name, reason="account disabled or gone")
        session.invalidate()
        return None
    session[_SEEN] = now.timestamp()
    return account


async def end(request: web.Request) -> str | None:
    """Forget this request's session; the username it was logged in as, if any."""
    session = await get_session(request)
    name = session.get(_NAME)
    session.invalidate()
    return name if isinstance(name, str) else None


def _now(request: web.Request) -> datetime:
    return request.config_dict[CLOCK]()
