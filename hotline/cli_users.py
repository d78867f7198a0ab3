"""`hotline users add | list | disable`: people's accounts, kept in HOTLINE_DATABASE_URL.

Every refusal is one line on stderr and exit code 1. A password is never an argument (it
would stay in the shell's history and show in the process list): it is asked twice
without echo on a terminal, or read as one line from standard input otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO, TypeVar

from sqlalchemy.exc import SQLAlchemyError

from hotline.auth.accounts import (
    Account,
    AccountRole,
    normalise_username,
    password_problem,
    role_problem,
    username_problem,
)
from hotline.config import LoadedConfig
from hotline.settings import Settings
from hotline.store.agents import AgentStore
from hotline.store.engine import make_engine, upgrade
from hotline.store.users import UsernameTaken, UserStore

T = TypeVar("T")
Loader = Callable[[Path], LoadedConfig | None]


class Refused(Exception):
    """What to tell the operator, on stderr, before exiting with 1."""


def add_user(args: argparse.Namespace, load: Loader, stdin: TextIO = sys.stdin) -> int:
    try:
        account = _add(args, load, stdin)
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        return 1
    where = account.department or account.agent_id
    print(f"added {account.username} ({account.role.value}{f', {where}' if where else ''})")
    return 0


def list_users(args: argparse.Namespace) -> int:
    try:
        accounts = _with_store(lambda users, _: users.everyone())
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        return 1
    if not accounts:
        print("no accounts yet: add one with `hotline users add`")
        return 0
    rows = [("USERNAME", "ROLE", "DEPARTMENT/AGENT", "STATE", "CREATED (UTC)")]
    rows += [
        (
            a.username,
            a.role.value,
            a.department or a.agent_id or "-",
            "disabled" if a.disabled else "active",
            a.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M"),
        )
        for a in accounts
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    return 0


def disable_user(args: argparse.Namespace) -> int:
    username = normalise_username(args.name)
    try:
        done = _with_store(lambda users, _: users.disable(username))
    except Refused as refusal:
        print(refusal, file=sys.stderr)
        return 1
    if not done:
        print(f"no account named {username!r}", file=sys.stderr)
        return 1
    print(f"disabled {username}: they can no longer log in, and their sessions end")
    return 0


def _add(args: argparse.Namespace, load: Loader, stdin: TextIO) -> Account:
    username = normalise_username(args.name)
    problem = username_problem(username)
    if problem:
        raise Refused(problem)
    role = AccountRole(args.role)
    config = None
    if role in (AccountRole.DEPARTMENT, AccountRole.AGENT):
        config = load(args.config)  # prints its own errors
        if config is None:
            raise Refused(f"{args.config}: the config is needed to check the account")
    departments = config.departments if config is not None else {}
    problem = role_problem(role, args.department, args.agent, departments)
    if problem:
        raise Refused(problem)

    async def check_free(users: UserStore, agents: AgentStore) -> None:
        if await users.named(username) is not None:
            raise Refused(f"an account named {username!r} exists already")
        if role is AccountRole.AGENT:
            configured = config.staffing.agents if config is not None else {}
            if args.agent not in await agents.directory(configured):
                raise Refused(f"unknown agent {args.agent!r} (see agents.yaml or /api/agents)")

    _with_store(check_free)  # before the password is typed, not after
    password = _read_password(stdin)
    problem = password_problem(password, username)
    if problem:
        raise Refused(problem)
    from hotline.auth.passwords import Passwords

    password_hash = Passwords().hash(password)

    async def insert(users: UserStore, _: AgentStore) -> Account:
        try:
            return await users.add(
                username,
                role,
                password_hash,
                datetime.now(UTC),
                department=args.department,
                agent_id=args.agent,
            )
        except UsernameTaken:
            raise Refused(f"an account named {username!r} exists already") from None

    return _with_store(insert)


def _read_password(stdin: TextIO) -> str:
    if stdin.isatty():
        first = getpass.getpass("Password (at least 10 characters): ")
        if first != getpass.getpass("The same password again: "):
            raise Refused("the two passwords differ; nothing was added")
        return first
    return stdin.readline().rstrip("\r\n")


def _with_store(work: Callable[[UserStore, AgentStore], Awaitable[T]]) -> T:
    """`work` on the stores of HOTLINE_DATABASE_URL, its schema brought up to date first."""
    url = Settings.from_env(os.environ).database_url

    async def run() -> T:
        engine = make_engine(url)
        try:
            await upgrade(engine)
            return await work(UserStore(engine), AgentStore(engine))
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except (SQLAlchemyError, OSError) as error:
        raise Refused(f"cannot use the database: {type(error).__name__}: {error}") from None
