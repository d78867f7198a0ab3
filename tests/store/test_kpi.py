"""The KPIs: response, resolution and satisfaction rates and the overdue count.

The generated tickets' expected figures are worked out here by `reference`, a plain loop
written from the definitions in docs/api.md (KPIs), not from casework/kpi.py's helpers.
"""

from __future__ import annotations

import asyncio
import itertools
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from casework.kpi import KpiDimension, KpiRow, TicketFacts, kpi_total, kpis
from hotline.cli import main
from hotline.store.engine import make_engine, upgrade
from hotline.store.kpi import kpi_report, period_facts
from hotline.store.tables import tickets
from tests.support.line import Line, running_line

ZONE = ZoneInfo("Asia/Shanghai")
TIER_DAYS = {"instant": 0, "3-day": 3, "7-day": 7, "15-day": 15}
DEPARTMENTS = ["tax-bureau", "market-regulation", "customs", "health", "retired-office", None]
DISTRICTS = ["haidian", "chaoyang", "tongzhou", "yanqing", None]
FACT_FIELDS = (
    "department",
    "district",
    "feedback_tier",
    "status",
    "outcome",
    "created_at",
    "due_at",
    "answered_at",
    "accepted_at",
    "responded_at",
    "resolved_at",
    "closed_at",
    "satisfaction",
    "satisfaction_at",
)
NOVEMBER = (datetime(2026, 11, 1, tzinfo=ZONE), datetime(2026, 12, 1, tzinfo=ZONE))


def local(month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=ZONE)


def deadline(created: datetime, tier: str) -> datetime:
    """The end (midnight) of the local day TIER_DAYS after the call."""
    last = created.astimezone(ZONE).date() + timedelta(days=TIER_DAYS[tier])
    return datetime.combine(last + timedelta(days=1), time(0, 0), tzinfo=ZONE)


# -- generated tickets ------------------------------------------------------------------------


def generate(
    seed: int, first: datetime, last: datetime, now: datetime, count: int = 400
) -> list[dict[str, Any]]:
    """Tickets created in [first, last) with whatever had happened to them by `now`."""
    rng = random.Random(seed)
    last = min(last, now)
    span = (last - first).total_seconds()
    found = []
    for _ in range(count):
        created = first + timedelta(seconds=rng.uniform(0, span))
        ticket: dict[str, Any] = dict.fromkeys(FACT_FIELDS)
        ticket.update(
            department=rng.choice(DEPARTMENTS),
            district=rng.choice(DISTRICTS),
            created_at=created,
            status="new",
        )
        for at, change in _story(rng, created):
            if at > now:
                break  # what had not happened yet by now
            ticket.update(change)
        found.append(ticket)
    return found


def _story(rng: random.Random, created: datetime) -> list[tuple[datetime, dict[str, Any]]]:
    """The events of one ticket, in order."""
    kind = rng.choices(
        ["abandoned", "in-queue", "on-call", "voicemail", "callback", "department"],
        weights=[8, 2, 20, 6, 4, 60],
    )[0]
    minutes = timedelta(minutes=rng.uniform(1, 8))
    if kind == "abandoned":
        tier = rng.choice(["3-day", None])
        due = deadline(created, tier) if tier else None
        return [(created, {"status": "abandoned", "feedback_tier": tier, "due_at": due})]
    if kind == "in-queue":
        # A caller still in the queue (or whose end of call was lost): no matter yet.
        change = {"status": "in-queue", "feedback_tier": "3-day"}
        return [(created, {**change, "due_at": deadline(created, "3-day")})]
    if kind == "voicemail":
        change = {"status": "voicemail", "feedback_tier": "3-day"}
        return [(created, {**change, "due_at": deadline(created, "3-day")})]
    tier = "instant" if kind == "on-call" else rng.choice(list(TIER_DAYS))
    if kind == "callback":
        tier = "3-day"
    events: list[tuple[datetime, dict[str, Any]]] = [
        (created, {"status": "in-queue", "feedback_tier": tier, "due_at": deadline(created, tier)})
    ]
    answered = created + minutes
    if kind == "on-call":
        events.append(
            (answered, {"status": "closed", "answered_at": answered, "outcome": "answered-on-call"})
        )
        if rng.random() < 0.4:
            events.append(_survey(rng, answered))
        return events
    if kind == "callback":
        call_end: dict[str, Any] = {
            "status": "answered",
            "answered_at": answered,
            "outcome": "needs-callback",
        }
        return [*events, (answered, call_end)]
    events.append(
        (answered, {"status": "answered", "answered_at": answered, "outcome": "forwarded"})
    )
    accepted = answered + timedelta(days=rng.uniform(0.05, 2))
    events.append((accepted, {"status": "accepted", "accepted_at": accepted}))
    if rng.random() < 0.08:
        returned = accepted + timedelta(hours=6)
        return [*events, (returned, {"status": "returned"})]
    if rng.random() < 0.06:
        # Closed without an answer (a duplicate, a withdrawn matter), maybe after its deadline.
        closed = accepted + timedelta(days=rng.uniform(0, TIER_DAYS[tier] + 4))
        return [*events, (closed, {"status": "closed", "closed_at": closed})]
    latest = accepted
    if rng.random() < 0.8:
        # Some in time, some late: up to three days past the tier's deadline.
        responded = max(accepted, created + timedelta(days=rng.uniform(0, TIER_DAYS[tier] + 3)))
        events.append((responded, {"status": "responded", "responded_at": responded}))
        latest = responded
    if rng.random() < 0.25:
        if rng.random() < 0.4:
            events.append((latest + timedelta(days=1), {"status": "callback-failed"}))
        return events
    resolved = latest + timedelta(days=rng.uniform(0, 6))
    events.append((resolved, {"status": "resolved", "resolved_at": resolved}))
    if rng.random() < 0.3:
        return events
    surveyed = _survey(rng, resolved)
    events.append(surveyed)
    at = surveyed[0] + timedelta(hours=2)
    if surveyed[1]["satisfaction"] == "dissatisfied" and rng.random() < 0.5:
        events.append((at, {"status": "reopened"}))
    else:
        events.append((at, {"status": "closed", "closed_at": at}))
    return events


def _survey(rng: random.Random, after: datetime) -> tuple[datetime, dict[str, Any]]:
    at = after + timedelta(days=rng.uniform(0.5, 3))
    answer = rng.choices(["satisfied", "basically-satisfied", "dissatisfied"], [6, 3, 2])[0]
    return at, {"satisfaction": answer, "satisfaction_at": at}


# -- the independent computation, from docs/api.md ------------------------------------------

NO_MATTER = ("new", "routed", "in-queue", "abandoned")
CALL_PATH = ("new", "routed", "in-queue", "answered", "abandoned", "voicemail")
COUNTS = (
    "due",
    "in_time",
    "handled",
    "resolved",
    "surveyed",
    "satisfied",
    "basic",
    "dissatisfied",
    "overdue",
)


def reference(
    found: Iterable[dict[str, Any]], start: datetime, end: datetime, now: datetime, key: str | None
) -> dict[str, dict[str, int]]:
    """Counts per group (key None: one group, "total"), from the definitions in docs/api.md."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(COUNTS, 0))
    cutoff = min(now, end)
    for t in found:
        c = out[(t[key] or "unassigned") if key else "total"]
        matter = t["due_at"] is not None and t["status"] not in NO_MATTER
        on_call = t["feedback_tier"] == "instant" and t["outcome"] == "answered-on-call"
        answers = [t["responded_at"], t["resolved_at"], t["answered_at"] if on_call else None]
        answers = [a for a in answers if a is not None]
        first = min(answers) if answers else None
        if matter and start < t["due_at"] <= end:
            answered_by_now = first is not None and first <= now
            if t["due_at"] <= now or answered_by_now:
                c["due"] += 1
                if answered_by_now and first <= t["due_at"]:
                    c["in_time"] += 1
        if matter and start <= t["created_at"] < end:
            closed_on_call = on_call and t["status"] == "closed"
            if (
                t["accepted_at"] is not None
                or t["outcome"] == "forwarded"
                or (t["status"] not in CALL_PATH and not closed_on_call)
            ):
                c["handled"] += 1
                if t["resolved_at"] is not None and t["status"] in ("resolved", "closed"):
                    c["resolved"] += 1
        if matter and t["due_at"] < cutoff and not (first is not None and first <= cutoff):
            if t["closed_at"] is not None:
                closed = t["closed_at"] <= cutoff
            else:
                closed = t["status"] == "closed"
            if not closed:
                c["overdue"] += 1
        at = t["satisfaction_at"]
        if at is not None and start <= at < end:
            answer = {"satisfied": "satisfied", "basically-satisfied": "basic"}.get(
                t["satisfaction"], "dissatisfied"
            )
            c["surveyed"] += 1
            c[answer] += 1
    return {group: counts for group, counts in out.items() if any(counts.values())}


def counted(row: KpiRow) -> dict[str, int]:
    return {
        "due": row.due,
        "in_time": row.responded_in_time,
        "handled": row.handled,
        "resolved": row.resolved,
        "surveyed": row.surveyed,
        "satisfied": row.satisfied,
        "basic": row.basically_satisfied,
        "dissatisfied": row.dissatisfied,
        "overdue": row.overdue,
    }


def facts_of(found: Iterable[dict[str, Any]]) -> list[TicketFacts]:
    return [TicketFacts(**{f: t[f] for f in FACT_FIELDS}) for t in found]


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# -- the pure function ------------------------------------------------------------------------

SCENARIOS = [
    # (seed, tickets created from, until, how many, the period, now)
    (1, local(10, 1), local(12, 10), 400, NOVEMBER, local(12, 20, 9)),  # a closed month
    (2, local(10, 1), local(12, 1), 400, NOVEMBER, local(11, 18, 15, 30)),  # the month so far
    (3, local(11, 18), local(11, 27), 1500, (local(11, 23), local(11, 24)), local(11, 26, 8)),
]


@pytest.mark.parametrize(("seed", "first", "last", "count", "period", "now"), SCENARIOS)
@pytest.mark.parametrize("by", list(KpiDimension))
def test_generated_tickets_match_the_definitions(
    seed: int,
    first: datetime,
    last: datetime,
    count: int,
    period: tuple[datetime, datetime],
    now: datetime,
    by: KpiDimension,
) -> None:
    found = generate(seed, first, last, now, count)
    start, end = period
    facts = facts_of(found)
    rows = kpis(facts, start, end, now, by)
    expected = reference(found, start, end, now, by.value)
    assert {r.group: counted(r) for r in rows} == expected
    assert [r.group for r in rows][-1:] == (["unassigned"] if "unassigned" in expected else [])
    for row in rows:
        e = expected[row.group]
        assert row.response_rate == ratio(e["in_time"], e["due"])
        assert row.resolution_rate == ratio(e["resolved"], e["handled"])
        assert row.satisfaction_rate == ratio(e["satisfied"] + e["basic"], e["surveyed"])
    total = kpi_total(facts, start, end, now)
    assert counted(total) == reference(found, start, end, now, None)["total"]
    # The data exercise every branch: late and timely answers, open backlog, all answers.
    assert 0 < total.responded_in_time < total.due and total.overdue > 0
    assert any(t["status"] == "closed" and t["closed_at"] and not t["resolved_at"] for t in found)
    assert 0 < total.resolved < total.handled
    assert total.satisfied and total.basically_satisfied and total.dissatisfied


def test_a_worked_example() -> None:
    """Six tickets whose figures are counted by hand (period: 1–30 November, now 1 Dec noon)."""
    start, end = NOVEMBER
    now = local(12, 1, 12)

    def ticket(**fields: Any) -> TicketFacts:
        created = fields.pop("created_at", local(11, 10, 10))
        tier = fields.pop("feedback_tier", "3-day")
        return TicketFacts(
            department="tax-bureau",
            district=fields.pop("district", "haidian"),
            feedback_tier=tier,
            status=fields.pop("status"),
            outcome=fields.pop("outcome", "forwarded"),
            created_at=created,
            due_at=fields.pop("due_at", deadline(created, tier)),
            **fields,
        )

    due = local(11, 14)  # 3-day ticket of 10 November
    facts = [
        # Answered on the call: a response in time, not handled by a department.
        ticket(
            feedback_tier="instant",
            status="closed",
            outcome="answered-on-call",
            answered_at=local(11, 10, 10, 3),
            satisfaction="satisfied",
            satisfaction_at=local(11, 12),
        ),
        # Responded a day late, resolved and closed.
        ticket(
            status="closed",
            accepted_at=local(11, 10, 11),
            responded_at=due + timedelta(days=1),
            resolved_at=local(11, 16),
            closed_at=local(11, 18),
            satisfaction="dissatisfied",
            satisfaction_at=local(11, 18),
        ),
        # Resolved without a separate response, in time; reopened after the survey.
        ticket(
            status="reopened",
            accepted_at=local(11, 10, 11),
            resolved_at=due - timedelta(hours=1),
            satisfaction="basically-satisfied",
            satisfaction_at=local(11, 15),
        ),
        # Accepted, never answered: late, overdue, handled but not resolved.
        ticket(status="accepted", accepted_at=local(11, 11)),
        # A voicemail nobody followed: due and overdue, never reached a department.
        ticket(status="voicemail", outcome=None, district=None),
        # Abandoned in the queue: no matter at all.
        ticket(status="abandoned", outcome=None),
    ]
    [row] = kpis(facts, start, end, now, KpiDimension.DEPARTMENT)
    assert (row.due, row.responded_in_time, row.response_rate) == (5, 2, 0.4)
    assert (row.handled, row.resolved, row.resolution_rate) == (3, 1, 1 / 3)
    assert (row.surveyed, row.satisfied, row.basically_satisfied, row.dissatisfied) == (3, 1, 1, 1)
    assert row.satisfaction_rate == 2 / 3
    assert row.overdue == 2
    districts = kpis(facts, start, end, now, KpiDimension.DISTRICT)
    assert [(r.group, r.due, r.overdue) for r in districts] == [
        ("haidian", 4, 1),
        ("unassigned", 1, 1),
    ]


def test_an_empty_period_has_no_rates() -> None:
    start, end = NOVEMBER
    assert kpis([], start, end, end, KpiDimension.DISTRICT) == []
    rows = kpis([], start, end, end, KpiDimension.DISTRICT, groups=["yanqing", "haidian"])
    assert [r.group for r in rows] == ["yanqing", "haidian"]  # in the order given (the config's)
    total = kpi_total([], start, end, end)
    for row in [*rows, total]:
        assert (row.due, row.handled, row.surveyed, row.overdue) == (0, 0, 0, 0)
        assert row.response_rate is row.resolution_rate is row.satisfaction_rate is None


def test_a_deadline_at_the_period_end_belongs_to_that_period() -> None:
    """Due by the end of 30 November (the midnight that starts December): November's."""
    created = local(11, 30, 23, 50)
    late = TicketFacts(
        department="customs",
        district="yanqing",
        feedback_tier="instant",
        status="accepted",
        outcome="forwarded",
        created_at=created,
        due_at=deadline(created, "instant"),
        accepted_at=created + timedelta(minutes=5),
        responded_at=local(12, 1, 9),
    )
    assert late.due_at == NOVEMBER[1]
    now = local(12, 5)
    [november] = kpis([late], *NOVEMBER, now, KpiDimension.DEPARTMENT)
    assert (november.due, november.responded_in_time, november.handled) == (1, 0, 1)
    # At the cut-off itself (the period end) it is not late yet: nothing is overdue.
    assert november.overdue == 0
    december = kpis([late], local(12, 1), local(12, 2), now, KpiDimension.DEPARTMENT)
    assert december == []
    # Answered at the deadline instant: in time.
    exact = replace(late, responded_at=late.due_at)
    [row] = kpis([exact], *NOVEMBER, now, KpiDimension.DEPARTMENT)
    assert row.responded_in_time == 1 and row.response_rate == 1.0


def test_a_matter_not_yet_due_is_judged_only_once_answered() -> None:
    created = local(11, 20, 10)
    waiting = TicketFacts(
        department="health",
        district=None,
        feedback_tier="7-day",
        status="accepted",
        outcome="forwarded",
        created_at=created,
        due_at=deadline(created, "7-day"),  # 28 November
        accepted_at=created,
    )
    answered = replace(waiting, responded_at=local(11, 21))
    now = local(11, 22)
    rows = kpis([waiting, answered], *NOVEMBER, now, KpiDimension.DEPARTMENT)
    assert [(r.due, r.responded_in_time, r.response_rate, r.overdue) for r in rows] == [
        (1, 1, 1.0, 0)
    ]


# -- the store, on SQLite and PostgreSQL ------------------------------------------------------


@pytest.fixture
async def engine(db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = make_engine(db_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


async def insert(engine: AsyncEngine, found: list[dict[str, Any]]) -> None:
    base = {
        "caller": "+8613800000000",
        "called": "+861012345",
        "language": "zh",
        "menu_path": [],
        "channel": "call",
        "appeal_type": "request",
        "callback_requested": False,
        "wants_voicemail": False,
        "version": 1,
    }
    rows = [
        {
            **base,
            **t,
            "number": f"E20261101-{i:06d}",
            "call_sid": f"CA{i:032x}",
            "updated_at": t["created_at"],
        }
        for i, t in enumerate(found)
    ]
    async with engine.begin() as conn:
        await conn.execute(tickets.insert(), rows)


async def test_the_store_reads_what_the_period_needs(engine: AsyncEngine) -> None:
    now = local(11, 18, 15, 30)
    found = generate(7, local(9, 1), local(12, 1), now, count=800)
    await insert(engine, found)
    periods = [NOVEMBER, (local(11, 10), local(11, 11)), (local(11, 9), local(11, 16))]
    for (start, end), by in itertools.product(periods, KpiDimension):
        report = await kpi_report(engine, start, end, now, by, groups=["yanqing"])
        expected = reference(found, start, end, now, by.value)
        assert {r.group: counted(r) for r in report.rows} == {
            "yanqing": dict.fromkeys(COUNTS, 0),
            **expected,
        }, (start, by)
        assert counted(report.total) == reference(found, start, end, now, None)["total"]
    # Dates are filtered in SQL: September's answered tickets are not read for November.
    read = await period_facts(engine, *NOVEMBER, now)
    assert 0 < len(read) < len(found) * 0.75


# -- the API ----------------------------------------------------------------------------------


@pytest.fixture
async def line(db_url: str) -> AsyncIterator[Line]:
    async with running_line(db_url) as running:
        yield running


async def test_api_reports_by_district_with_names(line: Line, db_url: str) -> None:
    now = local(12, 3, 9)
    found = generate(11, local(10, 15), local(12, 3), now)
    engine = make_engine(db_url)
    try:
        await insert(engine, found)
    finally:
        await engine.dispose()
    line.clock.now = now

    status, body = await line.api("/api/kpi?from=2026-11-01&to=2026-11-30&by=district")
    assert status == 200, body
    start, end = NOVEMBER
    assert body["period"]["start"] == start.isoformat() and body["period"]["end"] == end.isoformat()
    assert body["by"] == "district"
    expected = reference(found, start, end, now, "district")
    by_group = {r["group"]: r for r in body["rows"]}
    # All 16 districts of config/districts.yaml have a row, and the unassigned tickets one.
    assert len(body["rows"]) == 17 and body["rows"][-1]["group"] == "unassigned"
    assert by_group["haidian"]["names"] == {"zh": "海淀区", "en": "Haidian District"}
    for group, row in by_group.items():
        e = expected.get(group, dict.fromkeys(COUNTS, 0))
        assert (row["due"], row["responded_in_time"], row["overdue"]) == (
            e["due"],
            e["in_time"],
            e["overdue"],
        ), group
        assert (row["handled"], row["resolved"], row["surveyed"]) == (
            e["handled"],
            e["resolved"],
            e["surveyed"],
        )
        assert (row["satisfied"], row["basically_satisfied"], row["dissatisfied"]) == (
            e["satisfied"],
            e["basic"],
            e["dissatisfied"],
        )
        rate = ratio(e["in_time"], e["due"])
        assert row["response_rate"] == (None if rate is None else round(rate, 4))
    assert by_group["dongcheng"]["response_rate"] is None  # no tickets there
    total = reference(found, start, end, now, None)["total"]
    assert body["total"]["group"] == "total" and body["total"]["due"] == total["due"]
    assert body["total"]["satisfaction_rate"] == round(
        (total["satisfied"] + total["basic"]) / total["surveyed"], 4
    )

    status, body = await line.api("/api/kpi?from=2026-11-01&to=2026-11-30")
    assert status == 200 and body["by"] == "department"
    by_group = {r["group"]: r for r in body["rows"]}
    assert by_group["tax-bureau"]["names"]["zh"] == "税务局"
    assert by_group["retired-office"]["names"] == {}  # on tickets, gone from the config
    # The config's order (all 30 departments), then the others, then the unassigned.
    groups = [r["group"] for r in body["rows"]]
    assert groups[:3] == ["market-regulation", "ip-office", "tax-bureau"] and len(groups) == 32
    assert groups[-2:] == ["retired-office", "unassigned"]


async def test_api_needs_the_token_and_good_parameters(line: Line) -> None:
    status, body = await line.api("/api/kpi?from=2026-11-01&to=2026-11-30", token=None)
    assert (status, body["error"]) == (401, "unauthorized")
    for query in (
        "",
        "from=2026-11-01",
        "to=2026-11-30",
        "from=yesterday&to=2026-11-30",
        "from=2026-11-01&to=2026-13-01",
        "from=2026-11-30&to=2026-11-01",
        "from=2026-11-01&to=2026-11-30&by=specialty",
    ):
        status, body = await line.api(f"/api/kpi?{query}")
        assert (status, body["error"]) == (400, "invalid-parameter"), query
    status, body = await line.api("/api/kpi?from=2026-11-30&to=2026-11-30")
    assert status == 200 and body["total"]["due"] == 0 and body["total"]["response_rate"] is None


# -- the command ------------------------------------------------------------------------------


def test_report_prints_a_table_and_writes_a_chart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'hotline.db'}"
    now = datetime.now(UTC)
    # A closed month a year back, so that the command's own clock sees all of it.
    first_day = (now - timedelta(days=400)).date().replace(day=1)
    start = datetime.combine(first_day, time(0, 0), tzinfo=ZONE)
    end = datetime.combine(_next_month(first_day), time(0, 0), tzinfo=ZONE)
    found = generate(5, start - timedelta(days=20), end + timedelta(days=5), now)

    async def populate() -> None:
        engine = make_engine(url)
        try:
            await upgrade(engine)
            await insert(engine, found)
        finally:
            await engine.dispose()

    asyncio.run(populate())
    monkeypatch.chdir(tmp_path)
    last_day = end.date() - timedelta(days=1)
    args = ["report", "--from", str(first_day), "--to", str(last_day), "--database", url]
    assert main([*args, "--config", str(Path(__file__).parent.parent.parent / "config")]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].split()[:4] == ["department", "due", "in", "time"]
    total = reference(found, start, end, now, None)["total"]
    [total_line] = [line for line in lines if line.startswith("合计")]
    cells = total_line.split()
    assert cells[1:3] == [str(total["due"]), str(total["in_time"])]
    assert cells[3] == f"{total['in_time'] / total['due'] * 100:.1f}%"
    assert cells[-1] == str(total["overdue"])
    assert any(line.startswith("税务局") for line in lines)
    assert any(line.startswith("知识产权局") and "—" in line for line in lines)  # no tickets
    # The columns line up, wide characters counted twice.
    table = lines[: lines.index("")]
    assert len({_display_width(line) for line in table}) == 1
    chart = tmp_path / f"kpi-{first_day}-{last_day}.png"
    assert out.rstrip().endswith(f"chart: {chart.name}")
    data = chart.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000

    config = str(Path(__file__).parent.parent.parent / "config")
    districts = tmp_path / "districts.png"
    # Without a CJK font the chart is labelled in English; the table keeps the line's language.
    monkeypatch.setattr("hotline.kpi.report._cjk_fonts", list)
    assert main([*args, "--by", "district", "--chart", str(districts), "--config", config]) == 0
    out = capsys.readouterr().out
    assert out.startswith("district") and "海淀区" in out and "未指定" in out
    assert districts.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert main(["report", "--from", "2026-11-30", "--to", "2026-11-01"]) == 2
    assert main([*args, "--config", str(tmp_path / "nowhere")]) == 1


def _next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


def _display_width(text: str) -> int:
    import unicodedata

    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)
