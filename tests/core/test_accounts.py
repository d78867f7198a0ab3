"""People's accounts as pure rules: names, passwords, roles, the lockout, where a login lands."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hotline.auth.accounts import (
    AccountRole,
    normalise_username,
    password_problem,
    role_problem,
    safe_next,
    username_problem,
)
from hotline.auth.lockout import LOGIN_LOCKOUT, locked_until

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DEPARTMENTS = ("tax-bureau", "customs")


def minutes(*offsets: float) -> list[datetime]:
    return [T0 + timedelta(minutes=m) for m in offsets]


@pytest.mark.parametrize("name", ["zhang", "li.wei", "wang_fang-2", "ab", "a" * 32])
def test_good_usernames(name: str) -> None:
    assert username_problem(name) is None


@pytest.mark.parametrize(
    "name", ["", "a", "a" * 33, "1zhang", "zhang wei", "张伟", "Zhang", "zhang@gov", "u13812345678"]
)
def test_refused_usernames(name: str) -> None:
    assert username_problem(name) is not None


def test_a_username_is_compared_as_typed_without_case_or_spaces() -> None:
    assert normalise_username("  Zhang.Wei ") == "zhang.wei"


def test_passwords() -> None:
    assert password_problem("", "zhang") == "the password is empty"
    assert password_problem("123456789", "zhang") == "a password has at least 10 characters"
    assert password_problem("0123456789", "zhang") is None
    assert password_problem("x" * 129, "zhang") is not None
    assert password_problem("Zhang.Wei.", "zhang.wei.") is not None  # the name itself


def test_roles_and_their_department_or_agent() -> None:
    dept, agent, centre = AccountRole.DEPARTMENT, AccountRole.AGENT, AccountRole.CENTRE
    assert role_problem(dept, "tax-bureau", None, DEPARTMENTS) is None
    assert role_problem(dept, None, None, DEPARTMENTS) == "a department user needs --department"
    assert "unknown department 'mars'" in str(role_problem(dept, "mars", None, DEPARTMENTS))
    assert role_problem(agent, None, "1001", DEPARTMENTS) is None
    assert role_problem(agent, None, None, DEPARTMENTS) is not None
    assert role_problem(centre, "tax-bureau", None, DEPARTMENTS) is not None
    assert role_problem(centre, None, "1001", DEPARTMENTS) is not None
    assert role_problem(AccountRole.ADMIN, None, None, DEPARTMENTS) is None


def locked(failures: list[datetime], now: datetime) -> datetime | None:
    return locked_until(failures, now, LOGIN_LOCKOUT)


def test_four_failures_do_not_lock() -> None:
    assert locked(minutes(0, 1, 2, 3), T0 + timedelta(minutes=4)) is None


def test_the_fifth_failure_within_15_minutes_locks_for_15_minutes() -> None:
    failures = minutes(0, 1, 2, 3, 14)
    fifth = failures[-1]
    assert locked(failures, fifth) == fifth + LOGIN_LOCKOUT.lock_for
    assert (
        locked(failures, fifth + LOGIN_LOCKOUT.lock_for - timedelta(seconds=1))
        == fifth + LOGIN_LOCKOUT.lock_for
    )
    assert locked(failures, fifth + LOGIN_LOCKOUT.lock_for) is None  # over, to the second


def test_five_failures_spread_over_more_than_15_minutes_do_not_lock() -> None:
    """Within 15 minutes counts the 15th minute itself: one rule with the PINs'."""
    fifteen = minutes(0, 4, 8, 12, 15)
    assert locked(fifteen, T0 + timedelta(minutes=15)) is not None
    assert locked(minutes(0, 4, 8, 12, 16), T0 + timedelta(minutes=16)) is None


def test_a_window_later_in_the_failures_locks_too() -> None:
    failures = minutes(0, 20, 21, 22, 23, 24)
    assert locked(failures, T0 + timedelta(minutes=25)) == failures[-1] + LOGIN_LOCKOUT.lock_for


def test_failures_after_now_are_not_counted() -> None:
    # The clock is what it is: a failure recorded by a process whose clock runs ahead
    # does not lock an account before its time.
    assert locked(minutes(0, 1, 2, 3, 30), T0 + timedelta(minutes=4)) is None


def test_after_a_lock_the_same_failures_cannot_lock_again() -> None:
    failures = minutes(0, 1, 2, 3, 4)
    after = failures[-1] + LOGIN_LOCKOUT.lock_for
    assert locked([*failures, after], after) is None
    assert locked(failures, after) is None


@pytest.mark.parametrize("path", ["/cases", "/cases?status=open", "/desk#top", "/a/b%2Fc"])
def test_next_may_be_a_path_of_this_site(path: str) -> None:
    assert safe_next(path) == path


@pytest.mark.parametrize(
    "target",
    [
        None,
        "",
        "cases",
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/\\/evil.example",
        "javascript:alert(1)",
        "/cases\r\nSet-Cookie: x=1",
        "/ca\tses",
        "/\x7f",
    ],
)
def test_next_may_not_lead_elsewhere(target: str | None) -> None:
    assert safe_next(target) is None
