"""People's accounts and their failed logins on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from hotline.auth.accounts import AccountRole
from hotline.auth.lockout import LOGIN_LOCKOUT, locked_until
from hotline.store.engine import make_engine, upgrade
from hotline.store.tables import login_failures
from hotline.store.users import UsernameTaken, UserStore

T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"  # stands for one; never checked


@pytest.fixture
async def users(db_url: str) -> AsyncIterator[UserStore]:
    engine = make_engine(db_url)
    await upgrade(engine)
    yield UserStore(engine)
    await engine.dispose()


async def test_an_account_is_added_found_and_listed(users: UserStore) -> None:
    added = await users.add("zhang", AccountRole.DEPARTMENT, HASH, T0, department="tax-bureau")
    agent = await users.add("wang", AccountRole.AGENT, HASH, T0, agent_id="1001")
    assert await users.get(added.id) == added
    assert await users.named("zhang") == added
    assert added.department == "tax-bureau" and not added.disabled and added.created_at == T0
    assert [a.username for a in await users.everyone()] == ["wang", "zhang"]
    found = await users.credentials("wang", T0)
    assert found is not None and found.account == agent
    assert found.password_hash == HASH and found.failures == ()
    assert await users.credentials("nobody", T0) is None
    assert await users.get(999) is None


async def test_a_name_is_one_account(users: UserStore) -> None:
    await users.add("zhang", AccountRole.CENTRE, HASH, T0)
    with pytest.raises(UsernameTaken):
        await users.add("zhang", AccountRole.ADMIN, HASH, T0)
    assert len(await users.everyone()) == 1


async def test_disable(users: UserStore) -> None:
    added = await users.add("zhang", AccountRole.CENTRE, HASH, T0)
    assert await users.disable("zhang")
    assert not await users.disable("nobody")
    again = await users.get(added.id)
    assert again is not None and again.disabled


async def test_failures_are_counted_cleared_and_forgotten_when_too_old(users: UserStore) -> None:
    account = await users.add("zhang", AccountRole.CENTRE, HASH, T0)
    at = [T0 + timedelta(minutes=m) for m in range(5)]
    for when in at[:4]:
        assert (
            locked_until(await users.record_failure(account.id, when), when, LOGIN_LOCKOUT) is None
        )
    failures = await users.record_failure(account.id, at[4])
    assert failures == tuple(at) and locked_until(failures, at[4], LOGIN_LOCKOUT) is not None
    found = await users.credentials("zhang", at[4])
    assert found is not None and found.failures == tuple(at)

    later = at[4] + LOGIN_LOCKOUT.lookback  # the first ones can no longer count
    assert await users.record_failure(account.id, later) == (later,)
    async with users.engine.connect() as conn:  # and they are gone from the table
        kept = await conn.scalar(
            select(func.count())
            .select_from(login_failures)
            .where(login_failures.c.user_id == account.id)
        )
    assert kept == 1
    await users.clear_failures(account.id)
    found = await users.credentials("zhang", later)
    assert found is not None and found.failures == ()


async def test_failures_of_one_account_are_its_own(users: UserStore) -> None:
    one = await users.add("zhang", AccountRole.CENTRE, HASH, T0)
    other = await users.add("li", AccountRole.CENTRE, HASH, T0)
    await users.record_failure(one.id, T0)
    assert await users.record_failure(other.id, T0) == (T0,)
    await users.clear_failures(other.id)
    found = await users.credentials("zhang", T0)
    assert found is not None and found.failures == (T0,)
