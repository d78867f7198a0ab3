"""When a matter's answer is due: its feedback tier counted in days of the calendar."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from casework.calendar import WorkCalendar
from routing.tiers import FeedbackTier


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
