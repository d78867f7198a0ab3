"""The spool of ticket writes: the change codec, the file, and exactly-once replay."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.exc import ProgrammingError

from casework.tickets import Channel, RecordingKind, TicketStatus
from hotline.store.change_codec import decode_change, encode_change
from hotline.store.durable import Budget, TicketWrites, operation_key, unreachable
from hotline.store.engine import make_engine, upgrade
from hotline.store.spool import OpKind, Spool, SpoolBusy, SpooledOp
from hotline.store.tickets import CallRef, TicketQuery, TicketStore
from ivr.actions import TicketChange
from ivr.events import Recording, Understanding
from routing.queue_router import QueueExit
from routing.tiers import AppealType, FeedbackTier
from tests.support.line import SHANGHAI
from tests.support.paths import CONFIG_DIR

AT = datetime(2026, 11, 30, 4, 0, tzinfo=UTC)
CALL = CallRef("CA" + "3" * 32, "+8613912345678", "+8610123450000")

EVERY_FIELD = TicketChange(
    note="described",
    status=TicketStatus.IN_QUEUE,
    language="en",
    menu_path=("main.2", "tax.1"),
    specialty="tax-invoice",
    department="tax-bureau",
    tier=FeedbackTier.DAYS_3,
    queue="desk-tax-invoice",
    queue_desk="tax-invoice",
    channel=Channel.VOICEMAIL,
    callback=True,
    queue_result=QueueExit.LEAVE,
    wants_voicemail=False,
    recording=(RecordingKind.DESCRIPTION, Recording("https://r/RE1", "RE1", 9)),
    understanding=Understanding(
        "发票怎么开", (("tax-invoice", 0.91), ("tax-filing", 0.05)), AppealType.REQUEST, None
    ),
    appeal=AppealType.COMPLAINT,
    choice="rejected",
    answered_by="1001",
    outcome="needs-callback",
    wrapped=True,
    overdue=True,
)


def test_every_field_of_a_ticket_change_survives_the_round_trip() -> None:
    defaults = TicketChange(note="x")
    for name in TicketChange.__dataclass_fields__:
        if name != "note":
            assert getattr(EVERY_FIELD, name) != getattr(defaults, name), name
    stored = json.dumps(encode_change(EVERY_FIELD))
    assert decode_change(json.loads(stored)) == EVERY_FIELD
    assert decode_change(json.loads(json.dumps(encode_change(defaults)))) == defaults


words = st.text(max_size=12)
maybe = st.none() | words


@given(
    note=words,
    status=st.none() | st.sampled_from(TicketStatus),
    menu_path=st.none() | st.lists(words, max_size=4).map(tuple),
    tier=st.none() | st.sampled_from(FeedbackTier),
    recording=st.none()
    | st.tuples(
        st.sampled_from(RecordingKind),
        st.builds(Recording, words, words, st.integers(0, 10_000)),
    ),
    understanding=st.none()
    | st.builds(
        Understanding,
        words,
        st.lists(st.tuples(words, st.floats(0, 1, allow_nan=False)), max_size=3).map(tuple),
        st.sampled_from(AppealType),
        maybe,
    ),
    callback=st.none() | st.booleans(),
    outcome=maybe,
)
def test_any_ticket_change_survives_the_round_trip(**fields: object) -> None:
    change = TicketChange(**fields)  # type: ignore[arg-type]
    assert decode_change(json.loads(json.dumps(encode_change(change)))) == change


def test_the_spool_keeps_operations_across_a_restart_and_is_one_process_s(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    spool = Spool(path)
    op = SpooledOp("k1", OpKind.RECORD, CALL, AT, (EVERY_FIELD,), opening=True)
    assert spool.append(op, AT) and not spool.append(op, AT)  # a retried webhook: kept once
    spool.append(SpooledOp("k2", OpKind.END, CALL, AT, call_status="completed", duration_s=3), AT)
    with pytest.raises(SpoolBusy):
        Spool(path)
    spool.close()  # a crash would leave the same committed rows

    again = Spool(path)
    assert again.depth() == 2 and again.holds(CALL.call_sid)
    first, second = again.pending()
    assert (first.key, first.changes, first.opening) == ("k1", (EVERY_FIELD,), True)
    assert (second.kind, second.call_status, second.duration_s) == (OpKind.END, "completed", 3)
    again.done(first)
    again.set_aside(second, "boom")
    assert again.depth() == 0 and not again.holds(CALL.call_sid)
    assert again.set_aside_count() == 1
    again.close()


def test_database_outages_are_told_apart_from_bugs() -> None:
    assert unreachable(ConnectionRefusedError(111, "refused"))
    assert unreachable(TimeoutError())
    assert unreachable(sqlite3.OperationalError("database is locked"))
    assert not unreachable(sqlite3.OperationalError("no such table: tickets"))
    assert not unreachable(ProgrammingError("SELECT", {}, Exception("undefined table")))
    assert not unreachable(KeyError("menu"))
    assert (
        operation_key("CA1", "x" * 500).startswith("CA1:")
        and len(operation_key("CA1", "x" * 500)) <= 200
    )


async def test_a_replayed_operation_that_had_already_landed_is_applied_once(
    db_url: str, tmp_path: Path
) -> None:
    engine = make_engine(db_url)
    await upgrade(engine)
    store = TicketStore(engine, SHANGHAI, "zh")
    durable = TicketWrites(store, Spool(tmp_path / "spool.db"), Budget(5, 5), lambda: AT)
    try:
        described = TicketChange(
            note="description not understood",
            recording=(RecordingKind.DESCRIPTION, Recording("https://r/RE1", "RE1", 9)),
            understanding=Understanding("", (), AppealType.UNKNOWN, "speech-timeout"),
        )
        # The write reached the database, but its answer was lost: it was spooled as well.
        await durable.record(CALL, [described], AT, key="CA3:t1", opening=True)
        durable.spool.append(
            SpooledOp("CA3:t1", OpKind.RECORD, CALL, AT, (described,), opening=True), AT
        )
        durable.spool.append(
            SpooledOp("CA3:t2", OpKind.END, CALL, AT, call_status="completed", duration_s=5), AT
        )
        # A later write of the same call waits behind the spooled ones.
        await durable.record(CALL, [TicketChange(note="later", language="en")], AT, key="CA3:t3")
        assert durable.spool.depth() == 3

        result = await durable.replay()
        assert (result.applied, result.set_aside, result.stalled) == (3, 0, False)
        assert durable.spool.depth() == 0
        found, _ = await store.search(TicketQuery(call_sid=CALL.call_sid))
        ticket = await store.get(found[0]["number"])
        assert ticket is not None
        assert [h["note"] for h in ticket["history"]] == [
            "call received",
            "description not understood",
            "call completed",
            "later",  # in the order the webhooks came, after the spooled ones
        ]
        assert ticket["classification"]["attempts"] == 1 and len(ticket["recordings"]) == 1
        assert ticket["language"] == "en"
    finally:
        await durable.close()
        await store.aclose()
        await engine.dispose()


def test_spool_replay_puts_a_left_over_file_into_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from hotline.cli import main

    path = tmp_path / "dead-machine-spool.db"
    spool = Spool(path)
    spool.append(SpooledOp("CA3:t1", OpKind.RECORD, CALL, AT, (), opening=True), AT)
    spool.append(SpooledOp("CA3:t2", OpKind.END, CALL, AT, call_status="busy"), AT)
    spool.close()
    monkeypatch.setenv("HOTLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'hotline.db'}")
    assert main(["spool", "replay", "--file", str(path), "--config", str(CONFIG_DIR)]) == 0
    assert "applied 2, set aside 0, left 0" in capsys.readouterr().out
    assert main(["spool", "replay", "--file", str(path), "--config", str(CONFIG_DIR)]) == 0
    assert "applied 0" in capsys.readouterr().out
    left = Spool(path)
    assert left.depth() == 0
    left.close()
