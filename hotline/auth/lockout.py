"""When wrong secrets lock a login: the rule, over the times of the failures. Pure.

One rule for the agents' PINs (counted across calls and processes, for the agent id keyed
and for the calling number, each on its own) and for people's passwords (per account):
`failures` wrong ones within `within` lock for `lock_for` from the last of them. An
attempt while the lock is on, when it is counted, makes the lock last `lock_for` from
then, so guessing on keeps it locked (the PINs count them; the login does not check a
password while locked, and records nothing). The time is given.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass(frozen=True)
class LockoutRule:
    failures: int = 5
    within: timedelta = timedelta(minutes=15)
    lock_for: timedelta = timedelta(minutes=15)

    @property
    def lookback(self) -> timedelta:
        """How far back a failure can still matter: to a lock that is still on."""
        return self.within + self.lock_for


PIN_LOCKOUT = LockoutRule()
LOGIN_LOCKOUT = LockoutRule()


def locked_until(failures: Iterable[datetime], now: datetime, rule: LockoutRule) -> datetime | None:
    """When the lock that these failures (of one agent id, or of one number) put on ends,
    if it is still on at `now`; None when it is not.

    A lock begins at a failure that is the last of `rule.failures` within `rule.within`,
    and lasts `rule.lock_for`; a failure made while it is on (an attempt while locked)
    makes it last `rule.lock_for` from then.
    """
    times = sorted(at for at in failures if at <= now)
    until: datetime | None = None
    for index, at in enumerate(times):
        first = index - rule.failures + 1
        if until is not None and at < until:
            until = max(until, at + rule.lock_for)
        elif first >= 0 and at - times[first] <= rule.within:
            until = at + rule.lock_for
    return until if until is not None and until > now else None
