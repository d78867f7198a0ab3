"""The ticket store on SQLite and PostgreSQL: one ticket per call, honest history."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from casework.tickets import Channel, RecordingKind, TicketStatus
from hotline.store.engine import make_engine, upgrade
from hotline.store.tables import metadata
from hotline.store.tickets import CallRef, TicketQuery, TicketStore
from ivr.actions import TicketChange
from ivr.events import Recording
from routing.queue_router import QueueExit
from routing.tiers import FeedbackTier

SHANGHAI = ZoneInfo("Asia/Shanghai")
T0 = datetime(2026, 11, 30, 3, 0, tzinfo=UTC)  # 11:00 in Shanghai
CALL = CallRef("CA" + "1" * 32, "+8613812348000", "+8610123450000")


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[TicketStore]:
    engine = make_engine(db_url)
    await upgrade(engine)
    store = TicketStore(engine, SHANGHAI, "zh")
    yield store
    await store.aclose()
    await engine.dispose()


async def test_migrations_create_exactly_the_tables_the_code_uses(store: TicketStore) -> None:
    def diff(conn: Connection) -> list[object]:
        return list(compare_metadata(MigrationContext.configure(conn), metadata))

    async with store.engine.connect() as conn:
        assert await conn.run_sync(diff) == []


async def test_upgrade_twice_is_harmless(store: TicketStore) -> None:
    await upgrade(store.engine)
    assert await store.open(CALL, T0) == "E20261130-000001"


async def test_open_is_idempotent_and_numbers_by_local_day(store: TicketStore) -> None:
    first = await store.open(CALL, T0)
    assert first == "E20261130-000001"
    assert await store.open(CALL, T0 + timedelta(minutes=1)) == first
    second = await store.open(CallRef("CA" + "2" * 32, "+8613900000000", "x"), T0)
    assert second == "E20261130-000002"
    # 17:00 UTC is 01:00 the next day in Shanghai: a new day, a new sequence.
    late = await store.open(CallRef("CA" + "3" * 32, "+86139", "x"), T0.replace(hour=17))
    assert late == "E20261201-000001"


async def test_concurrent_webhooks_of_one_call_make_one_ticket(store: TicketStore) -> None:
    numbers = await asyncio.gather(*(store.open(CALL, T0) for _ in range(8)))
    assert len(set(numbers)) == 1
    found, total = await store.search(TicketQuery(call_sid=CALL.call_sid))
    assert total == 1 and found[0]["number"] == numbers[0]


async def test_many_new_calls_at_once_get_the_days_numbers_in_turn(store: TicketStore) -> None:
    """Every new call takes the day's counter; taken at once, they still share it out."""
    calls = [CallRef(f"CA{i:032x}", f"+86139{i:08d}", "x") for i in range(40)]
    numbers = await asyncio.gather(*(store.open(call, T0) for call in calls))
    assert sorted(numbers) == [f"E20261130-{n:06d}" for n in range(1, 41)]


QUEUED = TicketChange(note="queued", status=TicketStatus.IN_QUEUE, queue="desk-tax-invoice")
ANSWERED = TicketChange(
    note="answered", status=TicketStatus.ANSWERED, queue_result=QueueExit.BRIDGED
)


async def test_a_late_change_does_not_move_the_status_back(store: TicketStore) -> None:
    """The queue join waited in one process's spool; the agent's answer and the status
    callback, served by another process, were written first."""
    await store.open(CALL, T0)
    await store.apply(CALL, [ANSWERED], T0 + timedelta(seconds=60))
    await store.end_call(CALL, "completed", 95, T0 + timedelta(seconds=95))
    await store.apply(CALL, [QUEUED], T0 + timedelta(seconds=5))  # replayed at last
    ticket = await store.get("E20261130-000001")
    assert ticket is not None
    assert ticket["status"] == "answered"
    assert ticket["updated_at"] == (T0 + timedelta(seconds=95)).isoformat()
    assert [h["note"] for h in ticket["history"]][-1] == "queued"  # recorded all the same
    assert await store.waiting(["desk-tax-invoice"], T0 + timedelta(seconds=96)) == {}


async def test_an_answer_that_arrives_after_the_hang_up_it_disproves(store: TicketStore) -> None:
    """The status callback found the caller still in the queue (abandoned); the change that
    says an agent took the call arrives after it."""
    await store.open(CALL, T0)
    await store.apply(CALL, [QUEUED], T0 + timedelta(seconds=5))
    await store.end_call(CALL, "completed", 95, T0 + timedelta(seconds=95))
    assert (await store.get("E20261130-000001") or {})["status"] == "abandoned"
    await store.apply(CALL, [ANSWERED], T0 + timedelta(seconds=60))
    ticket = await store.get("E20261130-000001")
    assert ticket is not None and ticket["status"] == "answered"


async def test_changes_history_and_retries(store: TicketStore) -> None:
    await store.open(CALL, T0)
    routed = TicketChange(
        note="routed to tax-invoice",
        status=TicketStatus.ROUTED,
        menu_path=("main.2", "tax.2"),
        specialty="tax-invoice",
        department="tax-bureau",
        tier=FeedbackTier.DAYS_3,
    )
    queued = TicketChange(note="queued", status=TicketStatus.IN_QUEUE, queue="desk-tax-invoice")
    await store.apply(CALL, [routed], T0)
    await store.apply(CALL, [routed], T0)  # Twilio retried the webhook
    await store.apply(CALL, [queued], T0 + timedelta(seconds=5))
    assert await store.waiting(["desk-tax-invoice", "desk-general"], T0) == {"desk-tax-invoice": 1}
    answered = TicketChange(
        note="answered", status=TicketStatus.ANSWERED, queue_result=QueueExit.BRIDGED
    )
    await store.apply(CALL, [answered], T0 + timedelta(seconds=60))
    await store.end_call(CALL, "completed", 95, T0 + timedelta(seconds=95))
    await store.end_call(CALL, "completed", 95, T0 + timedelta(seconds=96))  # sent twice
    ticket = await store.get("E20261130-000001")
    assert ticket is not None
    assert ticket["status"] == "answered" and ticket["call_duration_s"] == 95
    assert ticket["menu_path"] == ["main.2", "tax.2"]
    assert ticket["feedback_tier"] == "3-day"
    assert ticket["due_at"] == "2026-12-03T16:00:00+00:00"  # end of 3 Dec in Shanghai
    transitions = [(h["from_status"], h["to_status"]) for h in ticket["history"]]
    assert transitions == [
        (None, "new"),
        ("new", "routed"),
        ("routed", "in-queue"),
        ("in-queue", "answered"),
        (None, None),
    ]
    assert ticket["history"][-1]["note"] == "call completed"
    assert await store.waiting(["desk-tax-invoice"], T0) == {}


async def test_voicemail_recording_is_kept_once(store: TicketStore) -> None:
    rec = Recording("https://api.twilio.com/x/RE" + "a" * 32, "RE" + "a" * 32, 14)
    change = TicketChange(
        note="voicemail",
        status=TicketStatus.VOICEMAIL,
        channel=Channel.VOICEMAIL,
        callback=True,
        recording=(RecordingKind.VOICEMAIL, rec),
    )
    await store.apply(CALL, [change], T0)  # opens the ticket on the way
    await store.apply(CALL, [change], T0)
    ticket = await store.get("E20261130-000001")
    assert ticket is not None
    assert ticket["callback_requested"] is True and ticket["channel"] == "voicemail"
    assert [r["duration_s"] for r in ticket["recordings"]] == [14]
    await store.end_call(CALL, "completed", 30, T0)
    assert (await store.get("E20261130-000001") or {})["status"] == "voicemail"


async def test_hangup_before_routing_is_abandoned(store: TicketStore) -> None:
    await store.open(CALL, T0)
    await store.end_call(CALL, "completed", 4, T0)
    ticket = await store.get("E20261130-000001")
    assert ticket is not None and ticket["status"] == "abandoned"


async def test_search_filters_and_pages(store: TicketStore) -> None:
    for i in range(5):
        call = CallRef(f"CA{i:032d}", "+8613800000000", "x")
        await store.open(call, T0 + timedelta(days=i))
        desk = "tax-filing" if i % 2 else "general"
        await store.apply(
            call,
            [TicketChange(note="r", status=TicketStatus.ROUTED, specialty=desk)],
            T0 + timedelta(days=i),
        )
    found, total = await store.search(TicketQuery(specialty="tax-filing"))
    assert total == 2 and {t["specialty"] for t in found} == {"tax-filing"}
    found, total = await store.search(TicketQuery(limit=2, offset=1))
    assert total == 5 and len(found) == 2
    found, _ = await store.search(TicketQuery(created_from=T0 + timedelta(days=3)))
    assert len(found) == 2
    assert await store.get("E19990101-000001") is None


async def test_an_instant_matter_answered_on_the_call_closes(store: TicketStore) -> None:
    await store.apply(
        CALL, [TicketChange(note="r", status=TicketStatus.ROUTED, tier=FeedbackTier.INSTANT)], T0
    )
    await store.apply(
        CALL, [TicketChange(note="a", status=TicketStatus.ANSWERED, answered_by="1001")], T0
    )
    await store.apply(CALL, [TicketChange(note="o", outcome="answered-on-call", wrapped=True)], T0)
    # The caller's own webhooks may come late; a closed ticket stays closed.
    await store.apply(CALL, [TicketChange(note="late", status=TicketStatus.ANSWERED)], T0)
    await store.end_call(CALL, "completed", 60, T0)
    ticket = await store.get("E20261130-000001")
    assert ticket is not None and ticket["status"] == "closed"
    assert ticket["outcome"] == "answered-on-call" and ticket["wrapped_at"]
