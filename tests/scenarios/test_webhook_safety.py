"""Bad input, bad signatures, retries and failures: the caller always hears valid TwiML."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import pytest
from sqlalchemy import text

from hotline.carrier.callers import ScriptedCaller
from hotline.carrier.carrier import IDEMPOTENCY_HEADER, Signing
from hotline.store.engine import make_engine
from hotline.web.keys import JOBS, METRICS
from hotline.web.voice import calls
from ivr.model import IvrPlan
from tests.support.line import AUTH_TOKEN, PUBLIC_URL, Line, RawResponse, running_line

CALL_SID = "CA" + "5" * 32
BASE = {
    "CallSid": CALL_SID,
    "From": "+8613912345678",
    "To": "+8610123450000",
    "AccountSid": "AC" + "0" * 32,
    "CallStatus": "in-progress",
}


@pytest.fixture
async def line(db_url: str) -> AsyncIterator[Line]:
    async with running_line(db_url, twilio_webhook_shared_key="shared-secret") as running:
        yield running


def twiml_root(body: str) -> ET.Element:
    root = ET.fromstring(body.encode())
    assert root.tag == "Response"
    return root


async def test_unsigned_and_wrongly_signed_webhooks_are_refused(line: Line) -> None:
    for signing in (Signing.unsigned(), Signing.wrong()):
        response = await line.carrier.post("/twilio/voice", BASE, signing=signing)
        assert response.status == 403
    assert '"event":"bad_signature"' in line.log.getvalue()
    _status, found = await line.api(f"/api/tickets?call_sid={CALL_SID}")
    assert found["total"] == 0


async def test_sha256_shared_key_signature_is_accepted(line: Line) -> None:
    good = Signing.shared_key("webhooks_sharedkey_1", "shared-secret")
    response = await line.carrier.post("/twilio/voice", BASE, signing=good)
    assert response.status == 200
    forged = Signing.shared_key("webhooks_sharedkey_1", "not-the-secret")
    assert (await line.carrier.post("/twilio/voice", BASE, signing=forged)).status == 403


async def test_sha256_header_without_a_configured_key_is_refused(db_url: str) -> None:
    async with running_line(db_url) as line:
        signing = Signing.shared_key("webhooks_sharedkey_1", "shared-secret")
        assert (await line.carrier.post("/twilio/voice", BASE, signing=signing)).status == 403


GARBAGE = [
    ("/twilio/voice", {}),
    ("/twilio/voice", {"CallSid": "not-a-sid", "From": "<script>", "To": "x" * 5000}),
    ("/twilio/menu?lang=zh&node=main", {**BASE}),
    ("/twilio/menu?lang=zh&node=main", {**BASE, "Digits": "abc"}),
    ("/twilio/menu?lang=zh&node=main", {**BASE, "Digits": "9" * 200}),
    ("/twilio/menu?lang=xx&node=no-such-menu&tries=zz", {**BASE, "Digits": "1"}),
    ("/twilio/menu?node=%00%ff", {**BASE, "Digits": "\x00"}),
    ("/twilio/no-input", {}),
    ("/twilio/described?lang=zh&node=main", {**BASE, "RecordingUrl": "javascript:alert(1)"}),
    (
        "/twilio/voicemail?lang=en&node=main",
        {**BASE, "RecordingUrl": "https://x/RE1", "RecordingSid": "RE" + "z" * 32},
    ),
    ("/twilio/route?desk=no-such-desk", {**BASE}),
    (
        "/twilio/queue-wait?queue=desk-general",
        {**BASE, "QueuePosition": "-5", "AvgQueueTime": "1e99"},
    ),
    ("/twilio/queue-key", {**BASE, "Digits": "#*#"}),
    ("/twilio/queue-done?desk=general&queue=desk-general", {**BASE, "QueueResult": "??"}),
    ("/twilio/queue-done", {**BASE, "QueueResult": "leave"}),
    ("/twilio/status", {**BASE, "CallStatus": "completed", "CallDuration": "-1"}),
    ("/twilio/status", {"CallStatus": "x" * 100}),
]


@pytest.mark.parametrize(
    ("path", "params"), GARBAGE, ids=[f"{p}:{i}" for i, (p, _) in enumerate(GARBAGE)]
)
async def test_signed_garbage_gets_safe_twiml(
    line: Line, path: str, params: dict[str, str]
) -> None:
    response = await line.carrier.post(path, params)
    assert response.status == 200, response.body
    root = twiml_root(response.body)
    if path.startswith("/twilio/menu"):
        # A wrong or missing key: the menu again, with a way on when nothing is pressed.
        assert root[0].tag == "Gather" and root[-1].tag == "Redirect"


async def test_unknown_hook_is_404_and_huge_body_is_413(line: Line) -> None:
    assert (await line.carrier.post("/twilio/nonsense", BASE)).status == 404
    huge = {**BASE, "Junk": "x" * 200_000}
    assert (await line.carrier.post("/twilio/voice", huge)).status == 413


async def test_retried_webhooks_make_one_ticket_and_one_history_entry(line: Line) -> None:
    for _ in range(3):
        response = await line.carrier.post("/twilio/voice", BASE, idempotency_token="same")
        assert response.status == 200
    ended = {**BASE, "CallStatus": "completed", "CallDuration": "42"}
    for _ in range(2):
        await line.carrier.post("/twilio/status", ended)
    _status, found = await line.api(f"/api/tickets?call_sid={CALL_SID}")
    assert found["total"] == 1
    ticket = await line.ticket(CALL_SID)
    assert [h["note"] for h in ticket["history"]] == ["call received", "call completed"]
    assert ticket["status"] == "abandoned" and ticket["call_duration_s"] == 42


async def signed_raw(
    line: Line, target: str, form: dict[str, str], *headers: tuple[str, str | bytes]
) -> RawResponse:
    """A webhook signed as Twilio signs it, sent byte for byte (with headers a client
    library would not send)."""
    signature = Signing.auth_token().headers(PUBLIC_URL + target, form, AUTH_TOKEN)
    return await line.raw(
        "POST",
        target,
        [*signature.items(), ("Content-Type", "application/x-www-form-urlencoded"), *headers],
        urlencode(form).encode(),
    )


async def test_an_idempotency_token_of_raw_bytes_still_writes_the_ticket(line: Line) -> None:
    """The header is not signed: bytes that are no token (here no UTF-8 either) are not
    taken as the operation's key, and cost the call nothing."""
    for token in (b"\xff\xfe", b"\xc3\x28\x80", "令牌".encode(), b"\xa0 \xe9"):
        sid = "CA" + token.hex().ljust(32, "0")
        form = {**BASE, "CallSid": sid}
        answer = await signed_raw(line, "/twilio/voice", form, (IDEMPOTENCY_HEADER, token))
        assert answer.status == 200, answer.body
        assert twiml_root(answer.body.decode())[0].tag == "Gather"
        ticket = await line.ticket(sid)
        assert [h["note"] for h in ticket["history"]] == ["call received"]
    assert all(json.loads(entry) for entry in line.log.getvalue().splitlines())
    assert '"event":"webhook_failed"' not in line.log.getvalue()


STATE_COUNTERS = [
    # (route, the query without the counter, the counter's name); each holds '²' and '①',
    # for which str.isdigit() is True and int() fails.
    ("/twilio/menu", "lang=zh&node=main", "tries"),
    ("/twilio/no-input", "lang=zh&node=main", "tries"),
    ("/twilio/queue-wait", "lang=zh&node=main&desk=general&queue=desk-general", "loop"),
    ("/twilio/agent-pin", "lang=zh&agent=1001", "tries"),
    ("/twilio/agent-next", "lang=zh&agent=1001", "waits"),
    ("/twilio/outbound-key", "job=1&lang=zh", "tries"),
]


@pytest.mark.parametrize(("path", "query", "counter"), STATE_COUNTERS)
async def test_a_counter_of_unicode_digits_is_taken_as_zero(
    line: Line, path: str, query: str, counter: str
) -> None:
    """The answer is the one to the same webhook without the counter: never a 500 from
    the rescue reading the same query again."""
    form = {**BASE, "Digits": "1"}
    plain = await signed_raw(line, f"{path}?{query}", form)
    assert plain.status == 200
    for digits in ("%C2%B2", "%E2%91%A0", "1%C2%B2"):
        odd = await signed_raw(line, f"{path}?{query}&{counter}={digits}", form)
        assert (odd.status, odd.body) == (200, plain.body), (digits, odd.body[:300])
    assert '"event":"webhook_failed"' not in line.log.getvalue()


async def test_an_outbound_job_of_unicode_digits_is_no_job(line: Line) -> None:
    answer = await signed_raw(line, "/twilio/outbound?job=%C2%B2&lang=zh", BASE)
    assert answer.status == 200
    assert [verb.tag for verb in twiml_root(answer.body.decode())] == ["Hangup"]
    assert '"event":"outbound_unknown_job"' in line.log.getvalue()
    assert '"event":"webhook_failed"' not in line.log.getvalue()


async def test_database_failure_still_routes_the_caller(line: Line, db_url: str) -> None:
    engine = make_engine(db_url)
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE queue_members"))
        await conn.execute(text("DROP TABLE ticket_history"))
        await conn.execute(text("DROP TABLE recordings"))
        await conn.execute(text("DROP TABLE callback_jobs"))
        await conn.execute(text("DROP TABLE ticket_operations"))
        await conn.execute(text("DROP TABLE tickets"))
    await engine.dispose()
    record = await line.call(ScriptedCaller(keys=["2", "1"]))
    assert record.application_error is None
    assert [(q.queue, q.result) for q in record.queue_results] == [
        ("desk-tax-registration", "bridged")
    ]
    assert '"event":"ticket_write_failed"' in line.log.getvalue()
    # The ops API says what is wrong instead of a bare 500.
    status, body = await line.api("/api/tickets")
    assert (status, body["error"]) == (503, "storage-unavailable")


def broken(*_: object) -> object:
    """Fault injection into our own code: a function of the edge that fails."""
    raise RuntimeError("boom")


async def test_a_bug_in_the_flow_sends_the_caller_to_the_general_desk(
    line: Line, monkeypatch: pytest.MonkeyPatch, plan: IvrPlan
) -> None:
    monkeypatch.setattr(calls, "step", broken)
    record = await line.call(ScriptedCaller(keys=["2"]))
    assert record.application_error is None
    assert plan.prompts.system_error["zh"] in record.said
    assert [(q.queue, q.result) for q in record.queue_results] == [("desk-general", "bridged")]
    events = [json.loads(line_) for line_ in line.log.getvalue().splitlines()]
    failure = next(e for e in events if e["event"] == "flow_failed")
    assert "RuntimeError: boom" in failure["exception"]


async def test_a_status_callback_whose_handling_fails_answers_empty_twiml(
    line: Line, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A status callback runs no TwiML: its rescue is an empty document, not a desk's queue."""
    monkeypatch.setattr(line.app[METRICS], "call_outcome", broken)
    params = {"CallSid": "CA" + "3" * 32, "CallStatus": "completed", "AccountSid": "AC" + "0" * 32}
    response = await line.carrier.post("/twilio/status", params)
    assert response.status == 200
    document = ET.fromstring(response.content)
    assert document.tag == "Response" and list(document) == []
    assert '"event":"webhook_failed"' in line.log.getvalue()


@pytest.mark.parametrize("hook", ["outbound", "outbound-key"])
async def test_a_placed_call_whose_handling_fails_hears_sorry_not_a_queue(
    line: Line, plan: IvrPlan, monkeypatch: pytest.MonkeyPatch, hook: str
) -> None:
    """The enterprise the hotline called is never put in a callers' queue: an apology, a
    goodbye, and the job tries again later."""
    monkeypatch.setattr(line.app[JOBS], "facts", broken)
    params = {
        "CallSid": "CA" + "4" * 32,
        "CallStatus": "in-progress",
        "AccountSid": "AC" + "0" * 32,
    }
    response = await line.carrier.post(f"/twilio/{hook}?job=1&lang=en", params)
    assert response.status == 200
    document = ET.fromstring(response.content)
    assert [verb.tag for verb in document] == ["Say", "Hangup"]
    assert document[0].text == plan.prompts.outbound_system_error["en"]
    assert '"event":"webhook_failed"' in line.log.getvalue()


async def test_logs_are_json_one_event_per_webhook_with_numbers_masked(line: Line) -> None:
    caller_number = "+8613912345678"
    record = await line.call(ScriptedCaller(keys=["2", "2"]), from_number=caller_number)
    events = [json.loads(line_) for line_ in line.log.getvalue().splitlines()]
    webhooks = [e for e in events if e["event"] == "webhook"]
    assert len(webhooks) == len([x for x in record.exchanges])
    first = webhooks[0]
    assert first["route"] == "voice" and first["call_sid"] == record.call_sid
    assert first["caller"] == "+86139****5678" and "duration_ms" in first
    assert {w["route"] for w in webhooks} >= {
        "voice",
        "menu",
        "route",
        "queue-wait",
        "queue-done",
        "status",
    }
    raw = line.log.getvalue()
    assert caller_number not in raw and "13912345678" not in raw
    # Nothing that looks like a whole phone number survives anywhere in the log.
    assert not re.search(r"(?<![\w+])\+?\d{11,15}(?!\w)", raw)
