"""Feedback tiers: how soon an enterprise must hear back, by appeal type and specialty."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from routing.calendar import WorkCalendar


class AppealType(StrEnum):
    CONSULTATION = "consultation"
    REQUEST = "request"
    COMPLAINT = "complaint"
    REPORT = "report"
    SUGGESTION = "suggestion"
    UNKNOWN = "unknown"


class FeedbackTier(StrEnum):
    INSTANT = "instant"
    DAYS_3 = "3-day"
    DAYS_7 = "7-day"
    DAYS_15 = "15-day"

    @property
    def days(self) -> int:
        return {"instant": 0, "3-day": 3, "7-day": 7, "15-day": 15}[self.value]


@dataclass(frozen=True)
class TierRules:
    """Default tier per appeal type (a specialty may override some), and how days count."""

    defaults: Mapping[AppealType, FeedbackTier]
    calendar: WorkCalendar = field(default_factory=WorkCalendar)

    def tier_for(
        self, appeal: AppealType, overrides: Mapping[AppealType, FeedbackTier] | None = None
    ) -> FeedbackTier:
        if overrides and appeal in overrides:
            return overrides[appeal]
        return self.defaults[appeal]


def due_at(
    created_at: datetime, tier: FeedbackTier, zone: ZoneInfo, calendar: WorkCalendar
) -> datetime:
    """When the answer is due.

    An instant matter is answered on the call, so it is due by the end of that local day;
    the others are due at the end of the local day that is the Nth day after the day of
    creation, counted by `calendar` (working days skip weekends and holidays and count
    make-up workdays; a matter raised on a day off is counted from the next working day).
    """
    local = created_at.astimezone(zone)
    last_day = calendar.add_days(local.date(), tier.days)
    end = datetime.combine(last_day + timedelta(days=1), time(0, 0), tzinfo=zone)
    return end.astimezone(created_at.tzinfo)
