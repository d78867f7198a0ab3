"""Working days as the State Council's holiday arrangement defines them, for due dates.

A day is a working day when it is a weekday that is not a public holiday, or a weekend day
the arrangement turns into a working day (调休上班, a make-up workday).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

SATURDAY = 5
ONE_DAY = timedelta(days=1)


@dataclass(frozen=True)
class WorkCalendar:
    """How feedback days are counted: working days (the default) or calendar days."""

    working_days: bool = True
    holidays: frozenset[date] = frozenset()
    makeup_workdays: frozenset[date] = frozenset()

    def is_working_day(self, day: date) -> bool:
        if day in self.makeup_workdays:
            return True
        if day in self.holidays:
            return False
        return day.weekday() < SATURDAY

    def add_days(self, day: date, n: int) -> date:
        """The Nth day after `day`: calendar days, or the Nth working day.

        `day` itself never counts, working day or not: a matter raised on a Saturday or a
        holiday is counted from the next working day, which is day 1, just like a matter
        raised late on the Friday before.
        """
        if n < 0:
            raise ValueError(f"cannot count {n} days")
        if not self.working_days:
            return day + timedelta(days=n)
        counted = 0
        while counted < n:
            day += ONE_DAY
            if self.is_working_day(day):
                counted += 1
        return day

    def years(self) -> tuple[int, ...]:
        """The years the holiday arrangement covers (holidays or make-up workdays listed)."""
        return tuple(sorted({d.year for d in self.holidays | self.makeup_workdays}))
