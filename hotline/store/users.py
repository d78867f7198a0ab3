"""People's accounts and their failed logins, shared by every server process."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, delete, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hotline.auth.accounts import Account, AccountRole
from hotline.auth.lockout import LOGIN_LOCKOUT
from hotline.store.engine import Transactions, in_transaction, reads
from hotline.store.tables import login_failures, users


class UsernameTaken(Exception):
    pass


@dataclass(frozen=True)
class Credentials:
    """What a login is checked against: the account, its hash, its recent failures."""

    account: Account
    password_hash: str
    failures: tuple[datetime, ...]


class UserStore:
    def __init__(self, engine: AsyncEngine, *, transactions: Transactions | None = None) -> None:
        self.engine = engine
        self.reads = reads(engine)
        self._tx = transactions  # for the writes of a login (see engine.in_transaction)

    async def add(
        self,
        username: str,
        role: AccountRole,
        password_hash: str,
        at: datetime,
        *,
        department: str | None = None,
        agent_id: str | None = None,
    ) -> Account:
        """A new account; `UsernameTaken` when the name is someone's already."""
        try:
            async with self.engine.begin() as conn:
                added = await conn.execute(
                    users.insert()
                    .values(
                        username=username,
                        role=role.value,
                        department=department,
                        agent_id=agent_id,
                        password_hash=password_hash,
                        disabled=False,
                        created_at=at,
                    )
                    .returning(users.c.id)
                )
                user_id = added.scalar_one()
        except IntegrityError:
            raise UsernameTaken(username) from None
        return Account(user_id, username, role, department, agent_id, False, at)

    async def get(self, user_id: int) -> Account | None:
        async with self.reads.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.id == user_id))).first()
        return None if row is None else _account(row)

    async def named(self, username: str) -> Account | None:
        async with self.reads.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
        return None if row is None else _account(row)

    async def everyone(self) -> list[Account]:
        async with self.reads.connect() as conn:
            rows = (await conn.execute(select(users).order_by(users.c.username))).all()
        return [_account(r) for r in rows]

    async def disable(self, username: str) -> bool:
        """False when there is no such account."""
        async with self.engine.begin() as conn:
            done = await conn.execute(
                update(users).where(users.c.username == username).values(disabled=True)
            )
        return bool(done.rowcount)

    async def credentials(self, username: str, now: datetime) -> Credentials | None:
        """The account named `username` with its hash and the failures that may still
        count at `now`; None when there is none."""
        async with self.reads.connect() as conn:
            row = (await conn.execute(select(users).where(users.c.username == username))).first()
            if row is None:
                return None
            failures = await _failures(conn, row.id, now)
        return Credentials(_account(row), row.password_hash, failures)

    async def record_failure(self, user_id: int, at: datetime) -> tuple[datetime, ...]:
        """Note a wrong password; the failures that count from `at` on, this one with them.
        Those too old to count any more are deleted on the way."""
        return await in_transaction(self._tx, self.engine, _record_failure, user_id, at)

    async def clear_failures(self, user_id: int) -> None:
        """After a good login the count starts again."""
        await in_transaction(self._tx, self.engine, _clear_failures, user_id)


def _record_failure(conn: Connection, user_id: int, at: datetime) -> tuple[datetime, ...]:
    conn.execute(login_failures.insert().values(user_id=user_id, at=at))
    conn.execute(
        delete(login_failures).where(
            login_failures.c.user_id == user_id,
            login_failures.c.at <= at - LOGIN_LOCKOUT.lookback,
        )
    )
    return tuple(conn.execute(_failures_query(user_id, at)).scalars())


def _clear_failures(conn: Connection, user_id: int) -> None:
    conn.execute(delete(login_failures).where(login_failures.c.user_id == user_id))


async def _failures(conn: AsyncConnection, user_id: int, now: datetime) -> tuple[datetime, ...]:
    return tuple((await conn.execute(_failures_query(user_id, now))).scalars())


def _failures_query(user_id: int, now: datetime) -> Select[Any]:
    """The failures of an account that may still count at `now`, oldest first."""
    return (
        select(login_failures.c.at)
        .where(
            login_failures.c.user_id == user_id, login_failures.c.at > now - LOGIN_LOCKOUT.lookback
        )
        .order_by(login_failures.c.at)
    )


def _account(row: Any) -> Account:
    return Account(
        id=row.id,
        username=row.username,
        role=AccountRole(row.role),
        department=row.department,
        agent_id=row.agent_id,
        disabled=bool(row.disabled),
        created_at=row.created_at,
    )
