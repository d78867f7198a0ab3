"""Due dates in working days: the pure calendar, its YAML, and the due date a ticket gets."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from casework.calendar import WorkCalendar
from casework.deadlines import due_at
from hotline.carrier.callers import QueueChoice, QueuePlan, ScriptedCaller
from hotline.cli import main
from hotline.config import LoadedConfig, load_config
from hotline.store.engine import make_engine, upgrade
from hotline.store.tickets import CallRef, TicketStore
from ivr.actions import TicketChange
from routing.tiers import FeedbackTier
from tests.support.config_files import edit, errors_of, line_of
from tests.support.line import SHANGHAI, Line, running_line
from tests.support.paths import CONFIG_DIR
from tests.support.waiting import eventually

# The State Council's 2026 arrangement, as far as these tests need it.
NATIONAL_DAY = {date(2026, 10, d) for d in range(1, 8)}
MID_AUTUMN = {date(2026, 9, d) for d in (25, 26, 27)}
SPRING_FESTIVAL = {date(2026, 2, d) for d in range(15, 24)}
CHINA_2026 = WorkCalendar(
    holidays=frozenset(NATIONAL_DAY | MID_AUTUMN | SPRING_FESTIVAL),
    makeup_workdays=frozenset(
        {date(2026, 2, 14), date(2026, 2, 28), date(2026, 9, 20), date(2026, 10, 10)}
    ),
)
PLAIN = WorkCalendar()


async def reloaded(line: Line, before: str) -> dict[str, Any] | None:
    """What /healthz says once the running line serves a config other than `before`."""
    _, health = await line.api("/healthz", token=None)
    return health if health["config"]["digest"] != before else None


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=SHANGHAI)


def test_working_days_skip_the_weekend() -> None:
    friday = date(2026, 12, 4)
    assert PLAIN.add_days(friday, 1) == date(2026, 12, 7)  # Monday
    assert PLAIN.add_days(friday, 3) == date(2026, 12, 9)  # Wednesday
    assert PLAIN.add_days(date(2026, 11, 30), 7) == date(2026, 12, 9)
    assert PLAIN.add_days(friday, 0) == friday
    assert not PLAIN.is_working_day(date(2026, 12, 5))
    assert PLAIN.is_working_day(friday)


def test_national_day_and_its_makeup_saturday_and_sunday() -> None:
    assert CHINA_2026.is_working_day(date(2026, 9, 20))  # a Sunday worked
    assert CHINA_2026.is_working_day(date(2026, 10, 10))  # a Saturday worked
    assert not CHINA_2026.is_working_day(date(2026, 10, 5))  # a Monday off
    # Tuesday 29 Sept: Wed 30 is day 1, the 1-7 October break counts nothing, Thu 8 is day 2,
    # Fri 9 day 3, and the make-up Saturday 10 is day 4.
    tuesday = date(2026, 9, 29)
    assert CHINA_2026.add_days(tuesday, 3) == date(2026, 10, 9)
    assert CHINA_2026.add_days(tuesday, 4) == date(2026, 10, 10)
    assert CHINA_2026.add_days(tuesday, 7) == date(2026, 10, 14)
    # Friday 18 Sept: the make-up Sunday 20 is day 1.
    assert CHINA_2026.add_days(date(2026, 9, 18), 3) == date(2026, 9, 22)
    assert PLAIN.add_days(date(2026, 9, 18), 3) == date(2026, 9, 23)
    # Thursday 24 Sept: the Mid-Autumn Friday and the weekend do not count.
    assert CHINA_2026.add_days(date(2026, 9, 24), 3) == date(2026, 9, 30)


def test_spring_festival() -> None:
    friday = date(2026, 2, 13)
    # Sat 14 is worked (day 1); 15-23 Feb are off; Tue 24 is day 2, Wed 25 day 3.
    assert CHINA_2026.add_days(friday, 3) == date(2026, 2, 25)
    # ... Thu 26, Fri 27, the make-up Saturday 28, then Monday 2 March is day 7.
    assert CHINA_2026.add_days(friday, 7) == date(2026, 3, 2)
    assert CHINA_2026.add_days(friday, 15) == date(2026, 3, 12)


def test_calendar_days_ignore_weekends_and_holidays() -> None:
    calendar_days = WorkCalendar(
        working_days=False,
        holidays=CHINA_2026.holidays,
        makeup_workdays=CHINA_2026.makeup_workdays,
    )
    assert calendar_days.add_days(date(2026, 2, 13), 3) == date(2026, 2, 16)
    assert calendar_days.add_days(date(2026, 9, 30), 15) == date(2026, 10, 15)
    created = local(2026, 2, 13, 15, 0)
    assert due_at(created, FeedbackTier.DAYS_7, SHANGHAI, calendar_days) == local(2026, 2, 21)


def test_a_ticket_created_on_a_holiday_counts_from_the_next_working_day() -> None:
    # Raised on Saturday 3 October (a holiday): Thu 8 is day 1, Fri 9 day 2, Sat 10 day 3,
    # the same deadline as a matter raised on the last working day before the break.
    on_holiday = local(2026, 10, 3, 10, 0)
    before_break = local(2026, 9, 30, 23, 0)
    expected = local(2026, 10, 11)  # the end of Saturday 10 October
    assert due_at(on_holiday, FeedbackTier.DAYS_3, SHANGHAI, CHINA_2026) == expected
    assert due_at(before_break, FeedbackTier.DAYS_3, SHANGHAI, CHINA_2026) == expected
    # Raised on the make-up Sunday itself: that day does not count either.
    assert CHINA_2026.add_days(date(2026, 9, 20), 3) == date(2026, 9, 23)


def test_instant_is_the_end_of_the_same_local_day_even_on_a_holiday() -> None:
    created = local(2026, 10, 2, 9, 0)
    assert due_at(created, FeedbackTier.INSTANT, SHANGHAI, CHINA_2026) == local(2026, 10, 3)


def test_days_are_counted_in_shanghai_and_end_at_local_midnight() -> None:
    # 16:30 UTC on Thursday is 00:30 on Friday in Shanghai: a Friday ticket, due Wednesday.
    created = datetime(2026, 12, 3, 16, 30, tzinfo=UTC)
    due = due_at(created, FeedbackTier.DAYS_3, SHANGHAI, PLAIN)
    assert due == local(2026, 12, 10)
    assert due.tzinfo is UTC and due == datetime(2026, 12, 9, 16, 0, tzinfo=UTC)


def test_years_covered_and_negative_days() -> None:
    assert CHINA_2026.years() == (2026,)
    assert PLAIN.years() == ()
    with pytest.raises(ValueError):
        PLAIN.add_days(date(2026, 1, 5), -1)


# The shipped YAML.


def test_shipped_calendar_is_2026_per_the_state_council(shipped: LoadedConfig) -> None:
    calendar = shipped.plan.calendar
    assert calendar.working_days
    assert calendar.years() == (2026,)
    assert len(calendar.holidays) == 33
    assert calendar.makeup_workdays == {
        date(2026, 1, 4),
        date(2026, 2, 14),
        date(2026, 2, 28),
        date(2026, 5, 9),
        date(2026, 9, 20),
        date(2026, 10, 10),
    }
    assert calendar.holidays >= NATIONAL_DAY | MID_AUTUMN | SPRING_FESTIVAL
    assert all(d.weekday() >= 5 for d in calendar.makeup_workdays)
    # The arrangement's own examples, through the shipped file.
    assert calendar.add_days(date(2026, 9, 29), 7) == date(2026, 10, 14)
    assert calendar.add_days(date(2026, 4, 3), 1) == date(2026, 4, 7)  # Qingming 4-6 April


def test_shipped_districts_are_beijings_sixteen(shipped: LoadedConfig) -> None:
    assert len(shipped.districts) == 16
    assert shipped.districts["haidian"] == {"zh": "海淀区", "en": "Haidian District"}
    assert shipped.districts["yanqing"]["zh"] == "延庆区"
    assert all(set(names) == {"zh", "en"} for names in shipped.districts.values())


def test_a_day_in_both_lists_names_file_line_and_field(config_copy: Path) -> None:
    tiers = config_copy / "tiers.yaml"
    edit(tiers, "  - 2026-10-10    # Saturday, National Day", "  - 2026-10-03    # both lists")
    [error] = errors_of(config_copy)
    assert error == (
        f"{tiers}:{line_of(tiers, '# both lists')}: makeup_workdays.5: "
        "2026-10-03 is already listed in holidays"
    )


def test_a_makeup_workday_on_a_weekday_is_refused(config_copy: Path) -> None:
    tiers = config_copy / "tiers.yaml"
    edit(tiers, "  - 2026-10-10    # Saturday, National Day", "  - 2026-10-09    # a Friday")
    [error] = errors_of(config_copy)
    assert error.startswith(f"{tiers}:{line_of(tiers, '# a Friday')}: makeup_workdays.5: ")
    assert "2026-10-09 is a Friday: a make-up workday is a Saturday or Sunday" in error


def test_a_holiday_on_a_weekend_is_fine_and_calendar_days_can_be_chosen(
    config_copy: Path,
) -> None:
    tiers = config_copy / "tiers.yaml"
    edit(tiers, "count: working-days", "count: calendar-days")
    edit(tiers, "  - 2026-10-07\n", "  - 2026-10-07\n  - 2026-12-05\n")  # a Saturday
    calendar = load_config(config_copy).plan.calendar
    assert not calendar.working_days and date(2026, 12, 5) in calendar.holidays


def test_a_bad_date_and_an_unknown_field(config_copy: Path) -> None:
    tiers = config_copy / "tiers.yaml"
    edit(tiers, "  - 2026-06-21\n", "  - 2026-06-31\n")  # the 23rd holiday listed
    edit(tiers, "makeup_workdays:", "makeup_work_days:")
    edit(tiers, "count: working-days", "count: business-days")
    found = errors_of(config_copy)
    assert any(
        e.startswith(f"{tiers}:{line_of(tiers, '2026-06-31')}: holidays.22: Input should be")
        for e in found
    ), found
    assert (
        f"{tiers}:{line_of(tiers, 'makeup_work_days:')}: makeup_work_days: unknown field"
    ) in "\n".join(found)
    assert any(
        e.startswith(f"{tiers}:{line_of(tiers, 'count:')}: count: Input should be") for e in found
    ), found


def test_districts_file_is_checked(config_copy: Path) -> None:
    districts = config_copy / "districts.yaml"
    edit(districts, "pinggu: {zh: 平谷区, en: Pinggu District}", "pinggu: {zh: 平谷区}")
    edit(districts, "districts:", "district_names: {}\ndistricts:")
    found = "\n".join(errors_of(config_copy))
    assert f"{districts}:{line_of(districts, 'district_names')}: district_names: unknown" in found
    edit(districts, "district_names: {}\n", "")
    [error] = errors_of(config_copy)
    assert error == (
        f"{districts}:{line_of(districts, 'pinggu')}: districts.pinggu: no text in language 'en'"
    )
    districts.unlink()
    assert any("districts.yaml: (file): file is missing" in e for e in errors_of(config_copy))


def test_config_check_shows_the_years_the_holidays_cover(
    config_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["config", "check", str(config_copy)]) == 0
    assert "feedback days: working days; holidays listed for: 2026" in capsys.readouterr().out
    tiers = config_copy / "tiers.yaml"
    edit(tiers, "  - 2026-10-07\n", "  - 2026-10-07\n  - 2027-01-01\n")
    assert main(["config", "check", str(config_copy)]) == 0
    assert "holidays listed for: 2026, 2027" in capsys.readouterr().out


# The due date a ticket gets, on SQLite and PostgreSQL.

FRIDAY_NOON_UTC = datetime(2026, 12, 4, 4, 0, tzinfo=UTC)  # 12:00 on Friday in Shanghai
CALL = CallRef("CA" + "5" * 32, "+8613812348000", "+8610123450000")


@pytest.fixture
async def engine_url(db_url: str) -> AsyncIterator[str]:
    engine = make_engine(db_url)
    await upgrade(engine)
    await engine.dispose()
    yield db_url


async def test_store_asks_the_calendar_for_every_due_date(engine_url: str) -> None:
    calendar = [PLAIN]
    engine = make_engine(engine_url)
    store = TicketStore(engine, SHANGHAI, "zh", calendar=lambda: calendar[0])
    try:
        number = await store.open(CALL, FRIDAY_NOON_UTC)
        await store.apply(
            CALL, [TicketChange(note="routed", tier=FeedbackTier.DAYS_3)], FRIDAY_NOON_UTC
        )
        ticket = await store.get(number)
        assert ticket is not None
        assert ticket["due_at"] == "2026-12-09T16:00:00+00:00"  # end of Wednesday, Shanghai
        # The next change of tier is counted with the calendar of that moment.
        calendar[0] = WorkCalendar(holidays=frozenset({date(2026, 12, 7)}))
        await store.apply(
            CALL, [TicketChange(note="complaint", tier=FeedbackTier.DAYS_7)], FRIDAY_NOON_UTC
        )
        ticket = await store.get(number)
        assert ticket is not None
        assert ticket["due_at"] == "2026-12-16T16:00:00+00:00"  # Mon 7 off: Tue 8 .. Wed 16
    finally:
        await store.aclose()
        await engine.dispose()


async def test_a_friday_call_is_due_on_wednesday_and_a_new_holiday_counts_at_once(
    db_url: str, tmp_path: Path
) -> None:
    config = tmp_path / "config"
    shutil.copytree(CONFIG_DIR, config)
    friday = local(2026, 12, 4, 15, 0)
    answered = QueuePlan(waits=0, then=QueueChoice.BRIDGED)
    async with running_line(db_url, config_dir=config, now=friday) as line:
        record = await line.call(ScriptedCaller(keys=["2", "2"], queue=answered))
        ticket = await line.ticket(record.call_sid)
        assert ticket["feedback_tier"] == "3-day"
        assert datetime.fromisoformat(ticket["due_at"]) == local(2026, 12, 10)  # end of Wed
        _, health = await line.api("/healthz", token=None)
        before = health["config"]["digest"]
        # Ops declare Monday 7 December a holiday; the running line picks it up.
        edit(config / "tiers.yaml", "  - 2026-10-07\n", "  - 2026-10-07\n  - 2026-12-07\n")
        health = await eventually(lambda: reloaded(line, before), "the holiday taken up")
        assert not health["config"]["errors"]
        record = await line.call(ScriptedCaller(keys=["2", "2"], queue=answered))
        ticket = await line.ticket(record.call_sid)
        assert datetime.fromisoformat(ticket["due_at"]) == local(2026, 12, 11)  # end of Thu
