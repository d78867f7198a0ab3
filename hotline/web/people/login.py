"""`GET /login`, `POST /login`, `POST /logout`.

A refused login answers the same whatever the reason (no such user, a wrong password, an
account locked or disabled): the same status, the same page, and one Argon2 check each,
so neither the answer nor its time tells whether an account exists or is locked.
"""

from __future__ import annotations

import structlog
from aiohttp import web

from hotline.auth.accounts import (
    HOMES,
    Account,
    normalise_username,
    safe_next,
    username_problem,
)
from hotline.auth.lockout import LOGIN_LOCKOUT, locked_until
from hotline.web.keys import CLOCK, PASSWORDS, USERS
from hotline.web.people import sessions
from hotline.web.people.csrf import FIELD
from hotline.web.people.guard import LOGIN
from hotline.web.people.render import render

log = structlog.get_logger("hotline.people")


async def form(request: web.Request) -> web.StreamResponse:
    """The login form; someone already logged in goes on to their page."""
    wanted = safe_next(request.query.get("next"))
    account = await sessions.current(request)
    if account is not None:
        raise web.HTTPSeeOther(wanted or HOMES[account.role])
    return await _form(request, wanted, username="", failed=False)


async def log_in(request: web.Request) -> web.StreamResponse:
    posted = await request.post()
    username = normalise_username(str(posted.get("username", "")))
    password = str(posted.get("password", ""))
    wanted = safe_next(str(posted.get("next", "")))
    account = await _check(request, username, password)
    if account is None:
        return await _form(request, wanted, username=username, failed=True)
    await sessions.start(request, account)
    log.info("login", username=account.username, role=account.role.value)
    raise web.HTTPSeeOther(wanted or HOMES[account.role])


async def log_out(request: web.Request) -> web.StreamResponse:
    username = await sessions.end(request)
    if username is not None:
        log.info("logout", username=username)
    raise web.HTTPSeeOther(LOGIN)


async def _form(
    request: web.Request, wanted: str | None, *, username: str, failed: bool
) -> web.Response:
    context = {
        "csrf_field": FIELD,
        "csrf_token": await sessions.csrf_token(request),
        "next": wanted,
        "username": username,
        "failed": failed,
        "max_failures": LOGIN_LOCKOUT.failures,
        "locked_minutes": int(LOGIN_LOCKOUT.lock_for.total_seconds() // 60),
    }
    return render(request, "login.html", context)


async def _check(request: web.Request, username: str, password: str) -> Account | None:
    """The account these credentials open, or None.

    The password is checked (Argon2, on a worker thread) before anything else is looked
    at, and for every attempt: a name that is no one's is checked against a stand-in hash.
    A name that is no one's is not logged: people type their password into the name field.
    """
    users = request.config_dict[USERS]
    now = request.config_dict[CLOCK]()
    found = await users.credentials(username, now) if username_problem(username) is None else None
    matches = await request.config_dict[PASSWORDS].check(
        found.password_hash if found is not None else None, password
    )
    if found is None:
        log.info("login_failed", reason="unknown-user")
        return None
    account = found.account
    if account.disabled:
        log.info("login_failed", username=account.username, reason="disabled")
        return None
    if locked_until(found.failures, now, LOGIN_LOCKOUT) is not None:
        # Not a failure: guessing on during a lock does not make it longer.
        log.info("login_failed", username=account.username, reason="locked")
        return None
    if not matches:
        failures = await users.record_failure(account.id, now)
        if locked_until(failures, now, LOGIN_LOCKOUT) is not None:
            log.warning("account_locked", username=account.username)
        else:
            log.info("login_failed", username=account.username, reason="wrong-password")
        return None
    if found.failures:
        await users.clear_failures(account.id)
    return account
