"""Business hours, feedback tiers and queue placement: pure rules, no HTTP."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from casework.calendar import WorkCalendar
from casework.deadlines import due_at
from casework.tickets import TicketStatus, next_status, status_at_call_end, ticket_number
from routing.hours import BusinessHours, Window
from routing.queue_router import QueueRouter
from routing.specialty import VOICEMAIL, Specialty
from routing.tiers import AppealType, FeedbackTier, TierRules

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(y: int, mo: int, d: int, h: int, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


def line(**kw: object) -> BusinessHours:
    return BusinessHours(zone=SHANGHAI, daily=Window(time(6, 0), time(0, 0)), **kw)  # type: ignore[arg-type]


def test_open_from_six_until_midnight() -> None:
    hours = line()
    assert not hours.is_open(local(2026, 11, 30, 5, 59))
    assert hours.is_open(local(2026, 11, 30, 6, 0))
    assert hours.is_open(local(2026, 11, 30, 23, 59))
    assert not hours.is_open(local(2026, 12, 1, 0, 0))


def test_hours_are_judged_in_shanghai_whatever_the_caller_clock() -> None:
    # 22:30 UTC is 06:30 the next morning in Shanghai.
    assert line().is_open(datetime(2026, 11, 30, 22, 30, tzinfo=UTC))
    assert not line().is_open(datetime(2026, 11, 30, 20, 0, tzinfo=UTC))  # 04:00 local


def test_dated_overrides_and_emergency_switch() -> None:
    hours = line(
        overrides={date(2027, 1, 1): Window(time(8, 0), time(20, 0)), date(2027, 2, 1): None}
    )
    assert not hours.is_open(local(2027, 1, 1, 7, 0))
    assert hours.is_open(local(2027, 1, 1, 19, 59))
    assert not hours.is_open(local(2027, 1, 1, 20, 0))
    assert not hours.is_open(local(2027, 2, 1, 12, 0))
    assert hours.is_open(local(2027, 2, 2, 12, 0))
    assert not line(emergency_closed=True).is_open(local(2026, 11, 30, 12, 0))


def test_next_opening_skips_closed_days() -> None:
    hours = line(overrides={date(2026, 12, 1): None})
    assert hours.next_opening(local(2026, 11, 30, 23, 50)) == local(2026, 12, 2, 6, 0)
    assert hours.next_opening(local(2026, 12, 2, 3, 0)) == local(2026, 12, 2, 6, 0)


def test_window_describes_midnight_as_24() -> None:
    assert Window(time(6, 0), time(0, 0)).describe() == "06:00-24:00"


RULES = TierRules(
    {
        AppealType.CONSULTATION: FeedbackTier.INSTANT,
        AppealType.REQUEST: FeedbackTier.DAYS_3,
        AppealType.COMPLAINT: FeedbackTier.DAYS_7,
        AppealType.REPORT: FeedbackTier.DAYS_15,
        AppealType.SUGGESTION: FeedbackTier.DAYS_15,
        AppealType.UNKNOWN: FeedbackTier.DAYS_3,
    }
)


def test_tier_defaults_and_specialty_override() -> None:
    assert RULES.tier_for(AppealType.COMPLAINT) is FeedbackTier.DAYS_7
    override = {AppealType.REPORT: FeedbackTier.DAYS_7}
    assert RULES.tier_for(AppealType.REPORT, override) is FeedbackTier.DAYS_7
    assert RULES.tier_for(AppealType.REQUEST, override) is FeedbackTier.DAYS_3


def test_due_at_is_end_of_local_day_n_days_later() -> None:
    created = local(2026, 11, 30, 23, 30)  # a Monday
    calendar_days = WorkCalendar(working_days=False)
    assert due_at(created, FeedbackTier.DAYS_3, SHANGHAI, calendar_days) == local(2026, 12, 4, 0)
    assert due_at(created, FeedbackTier.INSTANT, SHANGHAI, calendar_days) == local(2026, 12, 1, 0)
    assert due_at(created, FeedbackTier.DAYS_15, SHANGHAI, calendar_days) == local(2026, 12, 16, 0)
    # In working days the three weekends in between do not count.
    assert due_at(created, FeedbackTier.DAYS_15, SHANGHAI, WorkCalendar()) == local(2026, 12, 22, 0)


def desk(id: str, size: int, overflow: str) -> Specialty:
    return Specialty(id, {"zh": id}, "dept", f"desk-{id}", size, overflow, {})


def test_router_follows_overflow_chain_to_first_queue_with_room() -> None:
    router = QueueRouter(
        {
            "a": desk("a", 2, "b"),
            "b": desk("b", 1, "general"),
            "general": desk("general", 5, VOICEMAIL),
        }
    )
    assert router.place("a", {}).queue == "desk-a"
    assert router.place("a", {"desk-a": 2}).queue == "desk-b"
    assert router.place("a", {"desk-a": 2, "desk-b": 1}).queue == "desk-general"
    full = router.place("a", {"desk-a": 2, "desk-b": 1, "desk-general": 5})
    assert full.voicemail and full.specialty == "a"
    assert router.place("a", {}, known_full={"desk-a"}).queue == "desk-b"
    assert router.chain("a") == ["desk-a", "desk-b", "desk-general"]


def test_router_survives_an_overflow_loop() -> None:
    router = QueueRouter({"a": desk("a", 1, "b"), "b": desk("b", 1, "a")})
    assert router.place("a", {"desk-a": 1, "desk-b": 1}).voicemail


def test_ticket_numbers_and_call_end_status() -> None:
    assert ticket_number(date(2026, 11, 30), 123) == "E20261130-000123"
    assert status_at_call_end(TicketStatus.ROUTED) is TicketStatus.ABANDONED
    assert status_at_call_end(TicketStatus.ANSWERED) is TicketStatus.ANSWERED
    assert status_at_call_end(TicketStatus.VOICEMAIL) is TicketStatus.VOICEMAIL


def test_a_late_call_path_change_moves_no_status_back() -> None:
    S = TicketStatus
    assert next_status(S.ANSWERED, S.IN_QUEUE) is S.IN_QUEUE  # in order: as told
    assert next_status(S.ANSWERED, S.IN_QUEUE, late=True) is S.ANSWERED
    assert next_status(S.IN_QUEUE, S.ROUTED, late=True) is S.IN_QUEUE
    assert next_status(S.ABANDONED, S.ANSWERED, late=True) is S.ANSWERED  # answered after all
    assert next_status(S.ABANDONED, S.IN_QUEUE, late=True) is S.ABANDONED
    assert next_status(S.RESOLVED, S.ANSWERED) is S.RESOLVED  # past the call path
    assert next_status(S.RESOLVED, S.ANSWERED, late=True) is S.RESOLVED
