"""The KPI report's data: only the tickets and columns a period's KPIs can need.

The dates are filtered in SQL, so a report reads the period's tickets (and the matters still
overdue), not the whole table; casework/kpi.py does the counting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncEngine

from casework.kpi import KpiDimension, KpiRow, TicketFacts, kpi_total, kpis
from casework.tickets import TicketStatus
from hotline.store.engine import reads
from hotline.store.tables import tickets

_COLUMNS = (
    tickets.c.department,
    tickets.c.district,
    tickets.c.feedback_tier,
    tickets.c.status,
    tickets.c.outcome,
    tickets.c.created_at,
    tickets.c.due_at,
    tickets.c.answered_at,
    tickets.c.accepted_at,
    tickets.c.responded_at,
    tickets.c.resolved_at,
    tickets.c.closed_at,
    tickets.c.satisfaction,
    tickets.c.satisfaction_at,
)
# Callers who never reached an agent nor left a message: never overdue (casework/kpi.py).
_NO_MATTER = [
    s.value
    for s in (TicketStatus.NEW, TicketStatus.ROUTED, TicketStatus.IN_QUEUE, TicketStatus.ABANDONED)
]


@dataclass(frozen=True)
class KpiReport:
    start: datetime
    end: datetime
    as_of: datetime
    by: KpiDimension
    rows: list[KpiRow]
    total: KpiRow


async def period_facts(
    engine: AsyncEngine, start: datetime, end: datetime, now: datetime
) -> list[TicketFacts]:
    """Every ticket that may count in [start, end) as seen at `now` (a superset: kpis decides)."""
    cutoff = min(now, end)
    t = tickets.c
    still_owed = and_(
        t.due_at < cutoff,
        t.status.not_in(_NO_MATTER),
        or_(t.responded_at.is_(None), t.responded_at > cutoff),
        or_(t.resolved_at.is_(None), t.resolved_at > cutoff),
        # Closed on the call (no closed_at) or closed since: the long history of answered
        # matters is left in the table.
        or_(t.closed_at > cutoff, and_(t.closed_at.is_(None), t.status != TicketStatus.CLOSED)),
    )
    query = select(*_COLUMNS).where(
        or_(
            and_(t.due_at > start, t.due_at <= end),
            and_(t.created_at >= start, t.created_at < end),
            and_(t.satisfaction_at >= start, t.satisfaction_at < end),
            still_owed,
        )
    )
    async with reads(engine).connect() as conn:
        rows = (await conn.execute(query)).all()
    return [TicketFacts(**row._mapping) for row in rows]


async def kpi_report(
    engine: AsyncEngine,
    start: datetime,
    end: datetime,
    now: datetime,
    by: KpiDimension,
    groups: Iterable[str] = (),
) -> KpiReport:
    """The KPIs of [start, end) by `by`; every one of `groups` has a row, even if empty."""
    facts = await period_facts(engine, start, end, now)
    return KpiReport(
        start=start,
        end=end,
        as_of=now,
        by=by,
        rows=kpis(facts, start, end, now, by, groups),
        total=kpi_total(facts, start, end, now),
    )
