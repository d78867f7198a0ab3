"""A whole scenario run with its log captured, then every log line read for what must not
be there: a caller's phone number (or anything that looks like one) unmasked, or the words
a caller said outside the fields meant for them.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest_asyncio
from sqlalchemy import text

from hotline.carrier.callers import BridgeEnd, QueueChoice, QueuePlan, Recording, ScriptedCaller
from hotline.observability.logs import mask_number
from hotline.store.engine import make_engine
from hotline.web.keys import VOICEMAILS
from tests.support.line import NIGHT, Line, running_line
from tests.support.logs import leaks
from tests.support.recordings import ACCOUNT, MODELS, require_model, serve_recordings

DTMF_CALLER = "+8613912345678"
VOICEMAIL_CALLER = "+8613700001111"
DESCRIBING_CALLER = "+861062345678"  # a Beijing landline
LATE_CALLER = "+8613522223333"
AGENT_NUMBER = "+8613800000001"  # agents.yaml: agent 1001 answers on it
NUMBERS = (DTMF_CALLER, VOICEMAIL_CALLER, DESCRIBING_CALLER, LATE_CALLER, AGENT_NUMBER)


def test_the_checker_finds_what_it_is_for() -> None:
    event = {"event": "x", "timestamp": "2026-11-30T04:00:00.123456Z"}
    clean = {
        **event,
        "call_sid": "CA" + "1234567890" * 3 + "ab",
        "ticket": "E20261130-000001",
        "caller": mask_number(DTMF_CALLER),
        "exception": "File x.py, line 123, at 0x7f1234567890",
        "digest": "0123456789abcdef0123",
        "seconds": 1234567.5,
    }
    assert leaks(json.dumps(clean), (DTMF_CALLER,), ("我们开出去的专票",)) == []
    for dirty in (
        {**event, "caller": DTMF_CALLER},
        {**event, "caller": "13912345678"},
        {**event, "note": "call 62345678 back"},
        {**event, "error": "params ('我们开出去的专票对方说',)"},
        {**event, "nested": {"list": ["tel:+8613700001111"]}},
    ):
        assert leaks(json.dumps(dirty, ensure_ascii=False), NUMBERS, ("我们开出去的专票",)), dirty
    assert leaks("not json", ())


async def refuse(db_url: str, what: str) -> None:
    """Make the database refuse `what` on tickets (`INSERT`, `UPDATE OF transcript`)."""
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            await conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger AS "
                    "$$ BEGIN RAISE EXCEPTION 'refused'; END $$ LANGUAGE plpgsql"
                )
            )
            await conn.execute(
                text(
                    f"CREATE TRIGGER refuse BEFORE {what} ON tickets "
                    "FOR EACH ROW EXECUTE FUNCTION refuse()"
                )
            )
        else:
            await conn.execute(
                text(
                    f"CREATE TRIGGER refuse BEFORE {what} ON tickets "
                    "BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
            )
    await engine.dispose()


async def agent_logs_in(line: Line) -> None:
    agent = ScriptedCaller(keys=["1001#", "1234#", "1"], bridge=BridgeEnd(hangs_up="caller"))
    await line.carrier.place_call(
        agent,
        from_number=AGENT_NUMBER,
        voice_path="/twilio/agent",
        status_path="/twilio/agent-status",
    )


async def test_a_day_of_calls_logs_no_number_and_no_words(db_url: str) -> None:
    async with running_line(db_url) as line:
        dtmf = await line.call(ScriptedCaller(keys=["2", "2"]), from_number=DTMF_CALLER)
        abandoned = await line.call(
            ScriptedCaller(keys=["2", "4"], queue=QueuePlan(waits=1, then=QueueChoice.HANGUP)),
            from_number=DTMF_CALLER,
        )
        # Key 8 without speech: asked again, then the key menu, then a desk.
        described = await line.call(
            ScriptedCaller(
                keys=["8", "2", "2"], recordings=[Recording(duration=9.0), Recording(duration=7.0)]
            ),
            from_number=DESCRIBING_CALLER,
        )
        await agent_logs_in(line)
        line.clock.now = NIGHT
        voicemail = await line.call(
            ScriptedCaller(recordings=[Recording(duration=14.0)]), from_number=VOICEMAIL_CALLER
        )
        await line.app[VOICEMAILS].idle()
        line.clock.now = NIGHT.replace(hour=12)
        for record in (dtmf, abandoned, described, voicemail):
            ticket = await line.ticket(record.call_sid)
            assert ticket["caller"] == record.from_number  # stored whole, logged masked
        status, _ = await line.api("/api/tickets", token="not-the-token")
        assert status == 401
        # A database that refuses the next ticket: its error is logged, with what it carries.
        await refuse(db_url, "INSERT")
        late = await line.call(ScriptedCaller(keys=["2", "2"]), from_number=LATE_CALLER)
        assert late.application_error is None
        log = line.log.getvalue()
    webhooks = [e for e in map(json.loads, log.splitlines()) if e["event"] == "webhook"]
    assert {mask_number(DTMF_CALLER), mask_number(DESCRIBING_CALLER)} <= {
        w.get("caller") for w in webhooks
    }
    assert "speech_not_understood" in log and "ticket_write_failed" in log
    assert leaks(log, NUMBERS) == []


# -- with speech: the caller's own words ------------------------------------------------------


@pytest_asyncio.fixture
async def recordings() -> AsyncIterator[str]:
    async with serve_recordings() as store:
        yield store.base


async def test_what_callers_say_stays_on_their_ticket(recordings: str, tmp_path: Path) -> None:
    require_model()
    said = Recording(duration=3.0, url=f"{recordings}/Recordings/tax_invoice_zh")
    db_url = f"sqlite+aiosqlite:///{tmp_path / 'words.db'}"
    async with running_line(
        db_url,
        twilio_account_sid=ACCOUNT,
        speech_workers=1,
        models_dir=MODELS,
        recording_url_prefixes=(recordings,),
    ) as line:
        described = await line.call(
            ScriptedCaller(keys=["8", None], recordings=[said]), from_number=DESCRIBING_CALLER
        )
        line.clock.now = NIGHT
        left = await line.call(ScriptedCaller(recordings=[said]), from_number=VOICEMAIL_CALLER)
        await line.app[VOICEMAILS].idle()
        words: tuple[str, ...] = ()
        for sid in (described.call_sid, left.call_sid):
            words += (re.sub(r"\s+", "", (await line.ticket(sid))["transcript"] or ""),)
        assert all(len(w) >= 6 for w in words), words  # the recognizer heard something
        # A database that refuses the write of the words: the error names the statement.
        await refuse(db_url, "UPDATE OF transcript")
        line.clock.now = NIGHT.replace(hour=12)
        await line.call(
            ScriptedCaller(keys=["8", None], recordings=[said]), from_number=LATE_CALLER
        )
        log = line.log.getvalue()
    assert "speech_understood" in log and "ticket_write_failed" in log
    assert leaks(log, NUMBERS, words) == []
