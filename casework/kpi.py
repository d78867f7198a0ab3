"""The hotline's KPIs for a period, by department or by district: pure, the clock passed in.

A period is the half-open interval [start, end) of instants; `now` is when the report is made.
Only *matters* count for the response, resolution and overdue figures: tickets with a due
time whose caller reached an agent or left a message (not `new`, `routed`, `in-queue` or
`abandoned`: a caller who hung up in the queue registered no matter).

Response rate = responded in time / due
    due: matters whose deadline falls in the period, start < due_at <= end (a deadline is the
    midnight that ends its last day, so a ticket due by the end of the period's last day
    belongs to this period, not the next), and that are either past their deadline
    (due_at <= now) or already responded to; a matter still within its deadline and not yet
    answered is not judged.
    responded in time: the first response came at or before due_at. The first response is
    the earliest of `responded_at` and `resolved_at` (a resolution answers the enterprise
    too) and, for an instant-tier matter answered on the call, `answered_at`.

Resolution rate = resolved / handled
    handled: matters created in the period (start <= created_at < end) that went to a
    department: accepted by one, forwarded by the agent, or in any status past the call path
    except closed on the call (an instant matter answered on the call never reaches one).
    resolved: handled, with `resolved_at` set and the status now `resolved` or `closed`
    (a reopened or returned matter is not resolved), counted as of now.

Satisfaction rate = (satisfied + basically satisfied) / surveyed
    surveyed: tickets whose survey answer was recorded in the period
    (start <= satisfaction_at < end), whatever their status.

Overdue: matters still owed an answer at the cut-off t = min(now, end): due_at < t, no
response by t, and not closed by t (closed_at <= t; a closed ticket without closed_at counts as
closed). It is a snapshot, so matters overdue since earlier periods are counted too.

A rate is None when its denominator is 0. A ticket without a department or district is in
the group "unassigned".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from casework.tickets import CALL_PATH, Satisfaction, TicketStatus, closes_on_call
from routing.acd import Outcome

UNASSIGNED = "unassigned"
TOTAL = "total"

# A caller who never reached an agent nor left a message registered no matter.
_NO_MATTER = frozenset(
    {TicketStatus.NEW, TicketStatus.ROUTED, TicketStatus.IN_QUEUE, TicketStatus.ABANDONED}
)
_RESOLVED = frozenset({TicketStatus.RESOLVED, TicketStatus.CLOSED})


class KpiDimension(StrEnum):
    DEPARTMENT = "department"
    DISTRICT = "district"


@dataclass(frozen=True)
class TicketFacts:
    """What a KPI needs to know of one ticket; every moment is timezone-aware."""

    department: str | None
    district: str | None
    feedback_tier: str | None
    status: str
    outcome: str | None
    created_at: datetime
    due_at: datetime | None
    answered_at: datetime | None = None
    accepted_at: datetime | None = None
    responded_at: datetime | None = None
    resolved_at: datetime | None = None
    closed_at: datetime | None = None
    satisfaction: str | None = None
    satisfaction_at: datetime | None = None

    def group(self, by: KpiDimension) -> str:
        value = self.department if by is KpiDimension.DEPARTMENT else self.district
        return value or UNASSIGNED

    @property
    def is_matter(self) -> bool:
        return self.due_at is not None and self.status not in _NO_MATTER

    @property
    def closed_on_call(self) -> bool:
        return self.status == TicketStatus.CLOSED and closes_on_call(
            self.feedback_tier, self.outcome
        )

    @property
    def first_response(self) -> datetime | None:
        moments = [m for m in (self.responded_at, self.resolved_at) if m is not None]
        if closes_on_call(self.feedback_tier, self.outcome) and self.answered_at is not None:
            moments.append(self.answered_at)
        return min(moments) if moments else None


@dataclass(frozen=True)
class KpiRow:
    group: str  # a department or district id, UNASSIGNED, or TOTAL
    due: int
    responded_in_time: int
    handled: int
    resolved: int
    surveyed: int
    satisfied: int
    basically_satisfied: int
    dissatisfied: int
    overdue: int

    @property
    def response_rate(self) -> float | None:
        return _rate(self.responded_in_time, self.due)

    @property
    def resolution_rate(self) -> float | None:
        return _rate(self.resolved, self.handled)

    @property
    def satisfaction_rate(self) -> float | None:
        return _rate(self.satisfied + self.basically_satisfied, self.surveyed)

    @property
    def is_empty(self) -> bool:
        return not (self.due or self.handled or self.surveyed or self.overdue)


def kpis(
    facts: Iterable[TicketFacts],
    period_start: datetime,
    period_end: datetime,
    now: datetime,
    by: KpiDimension,
    groups: Iterable[str] = (),
) -> list[KpiRow]:
    """One row per group with anything to count, and one for each of `groups` in any case.

    In the order of `groups` (the config's), then the other groups by id, UNASSIGNED last.
    """
    period = _Period(period_start, period_end, now)
    order = {group: i for i, group in enumerate(groups)}
    counts: dict[str, _Counts] = {group: _Counts() for group in order}
    for fact in facts:
        period.count(fact, counts.setdefault(fact.group(by), _Counts()))
    rows = [c.row(group) for group, c in counts.items()]
    return sorted(
        (r for r in rows if r.group in order or not r.is_empty),
        key=lambda r: (r.group == UNASSIGNED, order.get(r.group, len(order)), r.group),
    )


def kpi_total(
    facts: Iterable[TicketFacts], period_start: datetime, period_end: datetime, now: datetime
) -> KpiRow:
    period = _Period(period_start, period_end, now)
    counts = _Counts()
    for fact in facts:
        period.count(fact, counts)
    return counts.row(TOTAL)


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class _Counts:
    due: int = 0
    in_time: int = 0
    handled: int = 0
    resolved: int = 0
    surveyed: int = 0
    satisfied: int = 0
    basic: int = 0
    dissatisfied: int = 0
    overdue: int = 0

    def row(self, group: str) -> KpiRow:
        return KpiRow(
            group=group,
            due=self.due,
            responded_in_time=self.in_time,
            handled=self.handled,
            resolved=self.resolved,
            surveyed=self.surveyed,
            satisfied=self.satisfied,
            basically_satisfied=self.basic,
            dissatisfied=self.dissatisfied,
            overdue=self.overdue,
        )


@dataclass(frozen=True)
class _Period:
    start: datetime
    end: datetime
    now: datetime

    def count(self, fact: TicketFacts, into: _Counts) -> None:
        if fact.is_matter:
            self._response(fact, into)
            self._resolution(fact, into)
            self._overdue(fact, into)
        self._survey(fact, into)

    def _response(self, fact: TicketFacts, into: _Counts) -> None:
        due = fact.due_at
        assert due is not None
        if not self.start < due <= self.end:
            return
        response = fact.first_response
        responded = response is not None and response <= self.now
        if due > self.now and not responded:
            return
        into.due += 1
        if responded and response is not None and response <= due:
            into.in_time += 1

    def _resolution(self, fact: TicketFacts, into: _Counts) -> None:
        if not self.start <= fact.created_at < self.end:
            return
        reached_department = (
            fact.accepted_at is not None
            or fact.outcome == Outcome.FORWARDED
            or (fact.status not in CALL_PATH and not fact.closed_on_call)
        )
        if not reached_department:
            return
        into.handled += 1
        if fact.resolved_at is not None and fact.status in _RESOLVED:
            into.resolved += 1

    def _overdue(self, fact: TicketFacts, into: _Counts) -> None:
        cutoff = min(self.now, self.end)
        due = fact.due_at
        assert due is not None
        if due >= cutoff:
            return
        response = fact.first_response
        if response is not None and response <= cutoff:
            return
        closed = (
            fact.closed_at <= cutoff
            if fact.closed_at is not None
            else fact.status == TicketStatus.CLOSED
        )
        if not closed:
            into.overdue += 1

    def _survey(self, fact: TicketFacts, into: _Counts) -> None:
        at = fact.satisfaction_at
        if at is None or not self.start <= at < self.end:
            return
        if fact.satisfaction == Satisfaction.SATISFIED:
            into.satisfied += 1
        elif fact.satisfaction == Satisfaction.BASICALLY_SATISFIED:
            into.basic += 1
        elif fact.satisfaction == Satisfaction.DISSATISFIED:
            into.dissatisfied += 1
        else:
            return  # no answer recorded (or one this report does not know): not surveyed
        into.surveyed += 1
