"""Signed webhooks with random and hostile fields, sizes and encodings, posted to every
/twilio/ route of the app: never a 5xx, and every 200 is TwiML that Twilio can run. And
the same of the ops API: odd parameters, headers and bodies with a valid token, never a
5xx, never an error in the log.

The requests are signed the way Twilio signs them (the twilio library's HMAC-SHA1 over the
URL and the form as the server will parse it), so they get past the signature check and
reach the handlers: the fuzzing is of the webhooks, not of the 403. They are written on
the socket byte for byte, so headers carry bytes no client library would send.
"""

from __future__ import annotations

import asyncio
import json
import logging
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiDict
from twilio.request_validator import RequestValidator

from casework.actions import CaseAction
from hotline.carrier.callers import ScriptedCaller
from hotline.carrier.carrier import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
)
from ivr.actions import AgentHook, Hook, OutboundHook
from routing.queue_router import QueueExit
from tests.support.databases import BACKENDS, database_url
from tests.support.line import ADMIN_TOKEN, AUTH_TOKEN, PUBLIC_URL, Line, running_line

MAX_BODY = 64 * 1024  # Settings.max_body_bytes
EXAMPLES = 220

# What Twilio runs: the verbs of <Response>, and the nouns each verb may hold.
VERBS = frozenset(
    {"Say", "Play", "Pause", "Gather", "Record", "Enqueue", "Redirect", "Leave", "Hangup"}
    | {"Dial", "Reject", "Refer", "Connect", "Start", "Stop", "Pay", "Prompt", "Echo"}
)
NOUNS = {
    "Gather": {"Say", "Play", "Pause"},
    "Dial": {"Queue", "Number", "Client", "Sip", "Conference"},
    "Enqueue": {"Task"},
}
URL_ATTRIBUTES = ("action", "waitUrl", "url")


@dataclass(frozen=True)
class Post:
    path: str
    query: str  # raw, as it goes on the wire (and into the signed URL)
    body: bytes
    content_type: str | None
    signed: MultiDict[str]  # the form the server will parse from `body`
    signature_settings: str | None = None  # a Webhook Rule's header, mostly garbage
    headers: tuple[tuple[str, bytes], ...] = ()  # unsigned ones, with odd bytes


def form_post(path: str, body: bytes, content_type: str | None) -> Post:
    return Post(path, "", body, content_type, server_form(body, content_type))


# -- what the app serves ---------------------------------------------------------------------


def twilio_paths(line: Line) -> list[str]:
    """Every POST route under /twilio/, a `{hook}` template opened to every hook."""
    hooks = [h.value for h in Hook] + [h.value for h in AgentHook] + [h.value for h in OutboundHook]
    paths: set[str] = set()
    for route in line.app.router.routes():
        canonical = route.resource.canonical if route.resource is not None else ""
        if route.method != "POST" or not canonical.startswith("/twilio/"):
            continue
        if "{hook}" in canonical:
            paths.update(canonical.replace("{hook}", hook) for hook in hooks)
        else:
            paths.add(canonical)
    return sorted(paths)


# -- strategies ------------------------------------------------------------------------------

# Characters for which str.isdigit() is True: int() refuses '²' and '①', and reads '٣'
# and '３' as 3. None of them is a digit of a URL this service writes.
UNICODE_DIGITS = st.one_of(
    st.sampled_from(["²", "①", "٣", "３", "1²", "²" * 4, "9" * 3 + "①"]),
    st.text(alphabet="¹²³①⑨٠١٣۴०३০৩๓໓０１３𝟎𝟡", min_size=1, max_size=12),
)
# Header bytes a client library would refuse or re-encode: no ASCII, no UTF-8 (controls
# are left out: aiohttp's parser refuses those before any handler).
ODD_HEADER_BYTES = st.one_of(
    st.sampled_from(
        [b"\xff\xfe", b"\xc3\x28", b"\xed\xa0\x80", "令牌".encode(), b"\x80" * 600, b""]
    ),
    st.binary(max_size=40).map(
        lambda raw: bytes(b | 0x80 if b < 0x20 or b == 0x7F else b for b in raw)
    ),
)
HOSTILE_TEXT = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(max_codepoint=0x1F), max_size=20),  # NUL and controls
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "\ufeff",
            "\u202e+8613812345678",
            "<Response><Hangup/></Response>",
            "]]><Redirect>https://evil.example/</Redirect>",
            "&amp;&lt;&#0;",
            "' OR 1=1 --",
            "${jndi:ldap://x}",
            "%00%ff%fe",
            "9" * 40,
            "-1",
            "1e99",
            "NaN",
            "☎️📞中文",
        ]
    ),
    st.integers(min_value=1, max_value=60_000).map(lambda n: "x" * n),  # up to the limit
)
CALL_SID = st.one_of(
    st.just("CA" + "a" * 32),
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32).map(lambda h: "CA" + h),
    HOSTILE_TEXT,
)
NUMBER = st.one_of(
    st.sampled_from(["+8613812345678", "+8610123450000", "client:alice", "anonymous", ""]),
    HOSTILE_TEXT,
)
FIELDS: dict[str, st.SearchStrategy[str]] = {
    "CallSid": CALL_SID,
    "AccountSid": st.just("AC" + "0" * 32),
    "From": NUMBER,
    "To": NUMBER,
    "Digits": st.one_of(
        st.sampled_from(["1", "2", "8", "9", "0", "*", "#", "1234#"]), HOSTILE_TEXT
    ),
    "CallStatus": st.one_of(
        st.sampled_from(["ringing", "in-progress", "completed", "busy", "no-answer"]), HOSTILE_TEXT
    ),
    "CallDuration": st.one_of(st.sampled_from(["0", "42", "99999999"]), HOSTILE_TEXT),
    "RecordingUrl": st.one_of(
        st.sampled_from(
            ["https://api.twilio.com/2010-04-01/Recordings/RE1", "javascript:alert(1)", "file:///"]
        ),
        HOSTILE_TEXT,
    ),
    "RecordingSid": st.one_of(st.just("RE" + "b" * 32), HOSTILE_TEXT),
    "RecordingDuration": st.one_of(st.sampled_from(["0", "7", "600"]), HOSTILE_TEXT),
    "QueueResult": st.one_of(st.sampled_from([r.value for r in QueueExit]), HOSTILE_TEXT),
    "QueuePosition": st.one_of(st.sampled_from(["1", "5", "0", "-3"]), HOSTILE_TEXT),
    "QueueTime": st.one_of(st.sampled_from(["0", "400"]), HOSTILE_TEXT),
    "AvgQueueTime": st.one_of(st.sampled_from(["0", "90"]), HOSTILE_TEXT),
    "DialCallStatus": st.one_of(
        st.sampled_from(["completed", "no-answer", "failed"]), HOSTILE_TEXT
    ),
    "AnsweredBy": st.one_of(st.sampled_from(["human", "machine_start", "fax"]), HOSTILE_TEXT),
    "SpeechResult": HOSTILE_TEXT,
}
SHORT_HOSTILE = st.one_of(
    HOSTILE_TEXT.filter(lambda t: len(t) < 500),
    st.integers(0, 30).map(lambda n: "y" * 9000 if n == 0 else ""),  # now and then: too long
)
# Every parameter of the call states in the URLs (ivr/state.py), each now and then in
# Unicode digits.
STATE_PARAMS: dict[str, st.SearchStrategy[str]] = {
    name: st.one_of(values, SHORT_HOSTILE, UNICODE_DIGITS)
    for name, values in {
        "lang": st.sampled_from(["zh", "en", "xx"]),
        "node": st.sampled_from(["main", "tax", "no-such-menu"]),
        "tries": st.sampled_from(["0", "1", "2", "99", "-1"]),
        "path": st.just("main.2,tax.2"),
        "desk": st.sampled_from(["general", "tax-invoice", "nope"]),
        "queue": st.sampled_from(["desk-general", "desk-tax-invoice"]),
        "full": st.just("desk-general"),
        "loop": st.sampled_from(["0", "2", "99999999999"]),
        "offer": st.just("tax-invoice,tax-refund"),
        "appeal": st.sampled_from(["complaint", "bogus"]),
        "cfg": st.sampled_from(["0123abcd", "no-such-digest"]),
        "agent": st.sampled_from(["1001", "9999"]),
        "caller": st.just("CA" + "c" * 32),
        "waits": st.sampled_from(["0", "3"]),
        "job": st.sampled_from(["1", "0", "-1", "999999999999999999999"]),
        "ticket": st.just("E20261130-000001"),
    }.items()
}
FORM_TYPE = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data; boundary=xyz"
HOSTILE_BODIES: list[tuple[bytes, str | None]] = [
    (b"a=\\ud800&CallSid=\\udfff", FORM_TYPE + "; charset=unicode_escape"),  # lone surrogates
    ("CallSid=CA1&Digits=1".encode("utf-16"), FORM_TYPE + "; charset=utf-16"),
    ("From=+8613812345678&Digits=\u00e9".encode("latin-1"), FORM_TYPE + "; charset=latin-1"),
    (b"Digits=1", FORM_TYPE + "; charset=no-such-charset"),
    (b"Digits=1", FORM_TYPE + "; charset=rot13"),
    (b"Digits=1&From=\xc3\x28&To=\xed\xa0\x80", FORM_TYPE),  # invalid UTF-8
    (b"Digits=%ff%fe&From=%ed%a0%80&%00=%00", FORM_TYPE),
    (b"\x00\x01\x02\x7f\xff", FORM_TYPE),
    (b"Digits=1&Digits=2&CallSid=CA" + b"d" * 32 + b"&CallSid=x", FORM_TYPE),  # repeated keys
    (b"&&&===&=&a", FORM_TYPE),
    (
        b'--xyz\r\nContent-Disposition: form-data; name="Digits"\r\n\r\n\xff\r\n--xyz--\r\n',
        MULTIPART,
    ),
    (
        b'--xyz\r\nContent-Disposition: form-data; name="f"; filename="a"\r\n\r\nx\r\n--xyz--\r\n',
        MULTIPART,
    ),
    (b"garbage", "multipart/form-data"),
    (b'{"CallSid": "CA1", "Digits": "1"}', "application/json"),
    (b"Digits=1", None),
    (b"", None),
    (b"Junk=" + b"x" * (MAX_BODY - 5), FORM_TYPE),  # exactly at the limit
    (b"Junk=" + b"x" * MAX_BODY, FORM_TYPE),  # over it: 413
]
RAW_QUERIES = st.sampled_from(
    [
        "",
        "%00",
        "%ff%fe%fd",
        "lang=%E4%B8%AD",
        "a=%zz&=&&==",
        "node=%",
        "x" * 3000,
        "tries=1&tries=2",
    ]
)
CONTENT_TYPES = st.sampled_from(
    [
        "text/plain",
        "application/json",
        "application/xml",
        "multipart/form-data",  # no boundary
        "multipart/form-data; boundary=xyz",
        "application/x-www-form-urlencoded; charset=no-such-charset",
        "application/x-www-form-urlencoded; charset=unicode_escape",
        "application/x-www-form-urlencoded; charset=utf-16",
        "application/x-www-form-urlencoded; charset=rot13",
        "",
    ]
)


def server_form(body: bytes, content_type: str | None) -> MultiDict[str]:
    """The form aiohttp will make of `body` (what the signature must cover); empty where it
    makes none or refuses the body, so that case is signed as an empty form."""
    mime, _, params = (content_type or "").partition(";")
    mime = mime.strip().lower()
    if mime not in ("", "application/x-www-form-urlencoded") or not body:
        return MultiDict()
    charset = "utf-8"
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.lower() == "charset" and value:
            charset = value.strip('"')
    try:
        text = body.rstrip().decode(charset)
        return MultiDict(parse_qsl(text, keep_blank_values=True, encoding=charset))
    except Exception:
        return MultiDict()


@st.composite
def posts(draw: st.DrawFn, paths: list[str]) -> Post:
    path = draw(st.sampled_from([*paths, "/twilio/no-such-hook"]))
    if draw(st.booleans()):
        chosen = draw(
            st.dictionaries(st.sampled_from(sorted(STATE_PARAMS)), st.just(""), max_size=6)
        )
        query = urlencode({k: draw(STATE_PARAMS[k]) for k in chosen}, quote_via=quote)
    else:
        query = draw(RAW_QUERIES)
    names = draw(st.lists(st.sampled_from(sorted(FIELDS)), max_size=10, unique=True))
    pairs = [(name, draw(FIELDS[name])) for name in names]
    pairs += draw(st.lists(st.tuples(HOSTILE_TEXT, HOSTILE_TEXT), max_size=3))  # unknown keys
    kind = draw(
        st.sampled_from(["form", "repeated", "raw-bytes", "wrong-type", "empty", "oversized"])
    )
    content_type: str | None = "application/x-www-form-urlencoded"
    match kind:
        case "form":
            body = urlencode(pairs).encode()
        case "repeated":
            again = draw(st.lists(st.sampled_from(sorted(FIELDS)), min_size=1, max_size=4))
            pairs += [(name, draw(FIELDS[name])) for name in again]
            body = urlencode(pairs).encode()
        case "raw-bytes":
            body = draw(
                st.one_of(
                    st.binary(max_size=300),
                    st.binary(max_size=60).map(lambda b: b"CallSid=CA" + b + b"&Digits=\xff\xfe"),
                    st.just(b"Digits=1&From=\xc3\x28&To=\xed\xa0\x80"),  # invalid UTF-8
                    st.just(b"a=\\ud800&CallSid=\\udfff"),  # surrogates once unescaped
                    st.just(b"Digits=%ff%fe&From=%ed%a0%80"),
                )
            )
            content_type = draw(st.one_of(st.just(content_type), CONTENT_TYPES))
        case "wrong-type":
            body = draw(st.one_of(st.just(urlencode(pairs).encode()), st.binary(max_size=200)))
            content_type = draw(st.one_of(CONTENT_TYPES, st.none()))
        case "empty":
            body = b""
            content_type = draw(st.one_of(st.just(content_type), CONTENT_TYPES, st.none()))
        case _:
            size = draw(st.sampled_from([MAX_BODY - 200, MAX_BODY - 1, MAX_BODY, MAX_BODY + 1]))
            head = urlencode(pairs[:3]).encode()
            body = head + b"&Junk=" + b"x" * max(0, size - len(head) - 6)
    settings_header = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.none(),
            st.sampled_from(
                ["", "algorithm=", "key=k,algorithm=HMAC_MD5", "algorithm=HMAC_SHA256"]
            ),
        )
    )
    odd_headers = draw(
        st.lists(
            st.tuples(st.sampled_from([IDEMPOTENCY_HEADER, "Authorization"]), ODD_HEADER_BYTES),
            max_size=2,
        )
    )
    return Post(
        path,
        query,
        body,
        content_type,
        server_form(body, content_type),
        settings_header,
        tuple(odd_headers),
    )


# -- posting and judging ---------------------------------------------------------------------


async def send(line: Line, post: Post) -> tuple[int, str, bytes]:
    target = post.path + (f"?{post.query}" if post.query else "")
    try:
        signature = RequestValidator(AUTH_TOKEN).compute_signature(PUBLIC_URL + target, post.signed)
    except UnicodeEncodeError:  # a form no one can sign (lone surrogates): sent all the same
        signature = "unsignable"
    headers: list[tuple[str, str | bytes]] = [(SIGNATURE_HEADER, signature)]
    if post.signature_settings is not None:
        headers.append((SIGNATURE_SETTINGS_HEADER, post.signature_settings))
    if post.content_type is not None:
        headers.append(("Content-Type", post.content_type))
    answer = await line.raw("POST", target, [*headers, *post.headers], post.body)
    return answer.status, answer.headers.get("content-type", "").split(";")[0], answer.body


def assert_twiml(body: bytes) -> None:
    root = ET.fromstring(body)
    assert root.tag == "Response", body[:200]
    for verb in root:
        assert verb.tag in VERBS, verb.tag
        for noun in verb:
            assert noun.tag in NOUNS.get(verb.tag, set()), (verb.tag, noun.tag)
            assert len(noun) == 0
        for element in (verb, *verb):
            for name in URL_ATTRIBUTES:
                if name in element.attrib:
                    # However hostile the URL's state, the next request comes back here.
                    assert element.attrib[name].startswith("/twilio/"), element.attrib
        if verb.tag == "Redirect":
            assert (verb.text or "").startswith("/twilio/"), verb.text


async def judge(line: Line, post: Post) -> int:
    status, content_type, body = await send(line, post)
    assert status < 500, (status, post.path, post.query[:200], post.body[:200], body[:500])
    if status == 200:
        assert content_type == "text/xml", content_type
        assert_twiml(body)
    return status


async def _cancel_the_rest() -> None:
    left = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in left:
        task.cancel()
    await asyncio.gather(*left, return_exceptions=True)


@contextmanager
def a_running_line(
    tmp_path: Path, backend: str = "sqlite"
) -> Iterator[tuple[asyncio.AbstractEventLoop, Line]]:
    """One line for every example: hypothesis calls the test body many times, each in
    this one loop."""
    loop = asyncio.new_event_loop()
    databases = database_url(backend, tmp_path)
    try:
        url = loop.run_until_complete(anext(databases))
        running = running_line(url, twilio_webhook_shared_key="shared-secret")
        line = loop.run_until_complete(running.__aenter__())
        try:
            yield loop, line
        finally:
            loop.run_until_complete(running.__aexit__(None, None, None))
            loop.run_until_complete(databases.aclose())  # a PostgreSQL database dropped
    finally:
        # Whatever the app left running ends in this loop, not in a closed one.
        loop.run_until_complete(_cancel_the_rest())
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def test_every_twilio_route_survives_hostile_signed_webhooks(tmp_path: Path) -> None:
    with a_running_line(tmp_path) as (loop, line):
        paths = twilio_paths(line)
        # The enumeration found the routes, not only the patterns.
        assert {"/twilio/voice", "/twilio/status", "/twilio/agent", "/twilio/outbound-status"} <= (
            set(paths)
        )
        assert {f"/twilio/{h.value}" for h in (*Hook, *AgentHook, *OutboundHook)} <= set(paths)
        statuses: list[int] = []

        # Every route with a plain call and with nothing at all (each is reached), then with
        # each hostile body that random drawing could miss.
        for path in paths:
            for form in ({"CallSid": "CA" + "c" * 32, "From": "+8613812345678"}, {}):
                post = form_post(path, urlencode(form).encode(), FORM_TYPE)
                assert loop.run_until_complete(judge(line, post)) == 200, path
            for body, content_type in HOSTILE_BODIES:
                loop.run_until_complete(judge(line, form_post(path, body, content_type)))

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(post=posts(paths))
        def hostile(post: Post) -> None:
            statuses.append(loop.run_until_complete(judge(line, post)))

        hostile()
        # Most examples were signed right and reached a handler (not only 403s and 413s).
        assert statuses.count(200) > len(statuses) // 3, sorted(set(statuses))
        assert 413 in statuses
        # Not one of them reached the rescue: an odd field or URL is parsed, never raised on.
        events = [json.loads(entry) for entry in line.log.getvalue().splitlines()]
        failed = [e for e in events if e["level"] in ("error", "critical")]
        assert failed == [], failed[:3]


def test_a_hostile_request_line_is_not_a_500(tmp_path: Path) -> None:
    """Bytes a client library would not send: non-UTF-8 in the path and query."""
    with a_running_line(tmp_path) as (loop, line):
        for target in (
            b"/twilio/voice?\xff\xfe",
            b"/twilio/menu?lang=\xed\xa0\x80",
            b"/twilio/\xc3\x28",
            b"/twilio/voice?%ff",
        ):
            headers = [(SIGNATURE_HEADER, "abc"), ("Content-Type", FORM_TYPE)]
            answer = loop.run_until_complete(line.raw("POST", target, headers))
            assert 400 <= answer.status < 500, (target, answer.status)


# -- the ops API -----------------------------------------------------------------------------

API_EXAMPLES = 200
# Not SHORT_HOSTILE's 9000 characters: aiohttp's parser refuses a request line over 8 KiB
# itself (400), before the app, and logs it with a traceback of its own.
API_TEXT = HOSTILE_TEXT.filter(lambda t: len(t) < 500)
FORWARDED = ("X-Forwarded-For", "203.0.113.7")  # so that /metrics asks for the token too
MOMENTS = st.one_of(
    st.dates().map(date.isoformat),  # the years 1 to 9999, in local days
    st.datetimes().map(datetime.isoformat),
    st.datetimes(
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=14)), timezone(-timedelta(hours=12))]
        )
    ).map(datetime.isoformat),
    st.sampled_from(
        [
            "0001-01-01",  # year 0 in UTC
            "9999-12-31",  # a `to` day: its end is in year 10000
            "0001-01-01T00:00:00+14:00",
            "9999-12-31T23:59:59-12:00",
            "2026-13-01",
            "2026-11-30\x00",
            "2026-02-30",
            "+2026-11-30",
            "2026-11-30T25:00",
        ]
    ),
)
API_PARAMS: dict[str, st.SearchStrategy[str]] = {
    name: st.one_of(values, API_TEXT, UNICODE_DIGITS)
    for name, values in {
        "status": st.sampled_from(["answered", "abandoned", "accepted", "closed"]),
        "specialty": st.sampled_from(["tax-invoice", "general"]),
        "department": st.sampled_from(["tax-bureau", "customs"]),
        "call_sid": st.just("CA" + "a" * 32),
        "due": st.sampled_from(["overdue", "24h"]),
        "from": MOMENTS,
        "to": MOMENTS,
        "limit": st.sampled_from(["0", "1", "200", "999999999", "1000000000", "-1", "1.5"]),
        "offset": st.sampled_from(["0", "3", "999999999", "1000000000"]),
        "by": st.sampled_from(["department", "district", "desk"]),
    }.items()
}
JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    UNICODE_DIGITS,
)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
BODY_FIELDS: dict[str, st.SearchStrategy[object]] = {
    "action": st.sampled_from([a.value for a in CaseAction]),
    "text": st.text(max_size=40),
    "reason": st.text(max_size=40),
    "department": st.sampled_from(["tax-bureau", "customs", "nope"]),
    "district": st.sampled_from(["haidian", "nope"]),
    "days": st.integers(min_value=-5, max_value=2**64),
    "version": st.integers(min_value=-1, max_value=2**40),
    "state": st.sampled_from(["away", "ready", "offline", "on-call"]),
    "outcome": st.sampled_from(["answered-on-call", "forwarded", "needs-callback", "x"]),
    "name": st.text(max_size=70),
    "answers_on": st.sampled_from(["+8613800000099", "client:li", "110"]),
    "pin": st.one_of(st.sampled_from(["4321", "12"]), UNICODE_DIGITS),
    "desks": st.one_of(
        st.just({"tax-invoice": "primary"}), st.dictionaries(st.text(max_size=12), JSON_LEAVES)
    ),
}
NESTED = st.sampled_from([1, 31, 32, 33, 1000, 1024, 1025, 20_000])
ODD_BODIES = st.sampled_from(
    [
        b'{"text": "\\ud800", "action": "respond"}',  # a lone surrogate, escaped
        b'{"text": "\\u0000", "action": "respond"}',
        b'{"\\u0000": 1}',
        b'{"name": "\\udfff"}',
        b"\xff\xfe{}",
        b'\xef\xbb\xbf{"action": "accept"}',
        b"",
        b"null",
        b"[]",
        b'"accept"',
        b"1e999",
        b"NaN",
        b'{"action": "accept"',
    ]
)


@dataclass(frozen=True)
class ApiRequest:
    method: str
    target: str
    headers: tuple[tuple[str, str | bytes], ...]
    body: bytes


def api_routes(line: Line) -> list[tuple[str, str]]:
    """(method, template) of every /api/ route, and /metrics; not the event stream, which
    stays open."""
    found = {
        (route.method, route.resource.canonical)
        for route in line.app.router.routes()
        if route.resource is not None
        and route.resource.canonical.startswith("/api/")
        and route.method not in ("HEAD", "*")
        and route.resource.canonical != "/api/live/events"
    }
    return sorted(found | {("GET", "/metrics")})


@st.composite
def api_requests(draw: st.DrawFn, routes: list[tuple[str, str]], number: str) -> ApiRequest:
    method, template = draw(st.sampled_from(routes))
    odd_ids = st.one_of(UNICODE_DIGITS, API_TEXT.filter(lambda t: len(t) < 100))
    number_in_path = draw(st.one_of(st.just(number), st.just("E20261130-000999"), odd_ids))
    agent = draw(st.one_of(st.sampled_from(["1001", "77", "9999"]), odd_ids))
    path = template.replace("{number}", quote(number_in_path, safe="")).replace(
        "{agent}", quote(agent, safe="")
    )
    chosen = draw(st.lists(st.sampled_from(sorted(API_PARAMS)), unique=True, max_size=5))
    query = urlencode({k: draw(API_PARAMS[k]) for k in chosen}, quote_via=quote)
    authorization = draw(
        st.one_of(
            st.just(f"Bearer {ADMIN_TOKEN}".encode()),
            st.just(f"Bearer {ADMIN_TOKEN}".encode()),
            st.just(f"Bearer {ADMIN_TOKEN}".encode()),
            ODD_HEADER_BYTES.map(lambda raw: b"Bearer " + raw),
            ODD_HEADER_BYTES.map(lambda raw: f"Bearer {ADMIN_TOKEN}".encode() + raw),
            ODD_HEADER_BYTES,
        )
    )
    headers: list[tuple[str, str | bytes]] = [("Authorization", authorization), FORWARDED]
    if_match = draw(
        st.one_of(
            st.none(),
            st.none(),
            st.just(b'"1"'),
            UNICODE_DIGITS.map(lambda d: f'"{d}"'.encode()),
            ODD_HEADER_BYTES,
        )
    )
    if if_match is not None:
        headers.append(("If-Match", if_match))
    headers.append(
        (
            "Content-Type",
            draw(
                st.sampled_from(
                    [
                        "application/json",
                        "application/json",
                        "application/json; charset=nope",
                        "application/json; charset=utf-16",
                        "text/plain",
                    ]
                )
            ),
        )
    )
    body = b""
    if method in ("POST", "PUT"):
        kind = draw(st.sampled_from(["fields", "fields", "value", "nested", "odd"]))
        match kind:
            case "fields":
                names = draw(st.lists(st.sampled_from(sorted(BODY_FIELDS)), max_size=5))
                fields = {n: draw(st.one_of(BODY_FIELDS[n], JSON_VALUES)) for n in names}
                body = json.dumps(fields).encode()
            case "value":
                body = json.dumps(draw(JSON_VALUES)).encode()
            case "nested":
                depth = draw(NESTED)
                inner = b"[" * depth + b"]" * depth
                body = draw(st.sampled_from([b"[" * depth, inner, b'{"action": ' + inner + b"}"]))
            case _:
                body = draw(ODD_BODIES)
    return ApiRequest(method, path + (f"?{query}" if query else ""), tuple(headers), body)


async def judge_api(line: Line, request: ApiRequest) -> int:
    answer = await line.raw(request.method, request.target, request.headers, request.body)
    context = (request.method, request.target[:200], request.headers, request.body[:200])
    assert answer.status < 500, (answer.status, *context, answer.body[:300])
    if answer.status >= 400:
        # Every refusal is the API's JSON with a stable id.
        assert answer.headers["content-type"].startswith("application/json"), context
        assert json.loads(answer.body)["error"], context
    return answer.status


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_api_route_survives_odd_parameters_headers_and_bodies(
    tmp_path: Path, backend: str, caplog: pytest.LogCaptureFixture
) -> None:
    """With a valid token or an odd one: never a 5xx and never an error in the log. A 503
    is for a database that is away, and this one never is."""
    with a_running_line(tmp_path, backend) as (loop, line):
        routes = api_routes(line)
        assert {("GET", "/api/tickets"), ("PUT", "/api/agents/{agent}"), ("GET", "/api/kpi")} <= (
            set(routes)
        )
        record = loop.run_until_complete(line.call(ScriptedCaller(keys=["2", "3"])))
        number = loop.run_until_complete(line.ticket(record.call_sid))["number"]
        statuses: list[int] = []

        @settings(
            max_examples=API_EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(request=api_requests(routes, number))
        def odd(request: ApiRequest) -> None:
            statuses.append(loop.run_until_complete(judge_api(line, request)))

        odd()
        events = [json.loads(entry) for entry in line.log.getvalue().splitlines()]
        assert [e for e in events if e["level"] in ("error", "critical")] == []
        assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
        # The valid token got past the door, and the odd ones did not.
        assert {200, 400, 401} <= set(statuses), sorted(set(statuses))
