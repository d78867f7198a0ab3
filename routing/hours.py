"""When the line answers: a daily window in one time zone, dated overrides, an emergency switch."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MIDNIGHT = time(0, 0)


@dataclass(frozen=True)
class Window:
    """Open from `opens` until `closes`; a close of 00:00 means midnight at the end of the day."""

    opens: time
    closes: time

    def contains(self, moment: time) -> bool:
        if self.closes == MIDNIGHT:
            return moment >= self.opens
        return self.opens <= moment < self.closes

    def describe(self) -> str:
        closes = "24:00" if self.closes == MIDNIGHT else self.closes.strftime("%H:%M")
        return f"{self.opens.strftime('%H:%M')}-{closes}"


@dataclass(frozen=True)
class BusinessHours:
    zone: ZoneInfo
    daily: Window
    # A date maps to its own window, or to None when the line is closed all that day.
    overrides: Mapping[date, Window | None] = field(default_factory=dict)
    emergency_closed: bool = False

    def window_on(self, day: date) -> Window | None:
        if day in self.overrides:
            return self.overrides[day]
        return self.daily

    def is_open(self, at: datetime) -> bool:
        if self.emergency_closed:
            return False
        local = at.astimezone(self.zone)
        window = self.window_on(local.date())
        return window is not None and window.contains(local.time())

    def next_opening(self, at: datetime, horizon_days: int = 31) -> datetime | None:
        """The next moment the line opens after `at` (for callbacks), or None within the horizon."""
        if self.emergency_closed:
            return None
        local = at.astimezone(self.zone)
        for offset in range(horizon_days + 1):
            day = local.date() + timedelta(days=offset)
            window = self.window_on(day)
            if window is None:
                continue
            opening = datetime.combine(day, window.opens, tzinfo=self.zone)
            if opening > local:
                return opening
        return None
