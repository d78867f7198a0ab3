"""The virtual carrier against a tiny TwiML app served over loopback HTTP.

The app checks every webhook with the twilio library's own RequestValidator,
exactly as the real server must, so these tests pin down both the Twilio call
semantics and the signing contract.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import socket
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from twilio.request_validator import RequestValidator, get_signature_algorithm

from hotline.carrier import (
    APPLICATION_ERROR_MESSAGE,
    HANG_UP,
    BridgeEnd,
    GatherInfo,
    NotQueued,
    QueueChoice,
    QueueInfo,
    QueueNotFound,
    QueuePlan,
    RecordInfo,
    Recording,
    ScriptedCaller,
    Signing,
    VirtualCarrier,
    compute_signature,
    twiml,
)
from hotline.carrier.terminal import TerminalCaller, run_terminal_call
from tests.support.waiting import eventually

PUBLIC_URL = "https://hotline.example.gov"
TOKEN = "test-auth-token-0123456789"
ACCOUNT_SID = "AC" + "ab" * 16

Route = str | Callable[[dict[str, str]], str | web.StreamResponse]


@dataclass
class Seen:
    method: str
    path: str
    params: dict[str, str]
    headers: dict[str, str]


@dataclass
class TwimlApp:
    """Serves fixed TwiML per path and rejects any webhook whose signature is wrong."""

    routes: dict[str, Route]
    token: str = TOKEN
    public_url: str = PUBLIC_URL
    shared_keys: dict[str, str] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    rejected: list[Seen] = field(default_factory=list)

    def app(self, *, own_routes: Iterable[web.RouteDef] = ()) -> web.Application:
        """`own_routes` are served as they are, ahead of the signed webhook catch-all."""
        app = web.Application()
        app.router.add_routes(own_routes)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    def paths(self) -> list[str]:
        return [seen.path for seen in self.seen]

    def to(self, path: str) -> list[dict[str, str]]:
        return [seen.params for seen in self.seen if seen.path == path]

    async def handle(self, request: web.Request) -> web.StreamResponse:
        params = {key: str(value) for key, value in (await request.post()).items()}
        seen = Seen(request.method, request.path, params, dict(request.headers))
        if not self.valid(request, params):
            self.rejected.append(seen)
            return web.Response(status=403, text="bad signature")
        self.seen.append(seen)
        route = self.routes.get(request.path)
        if route is None:
            return web.Response(status=404, text="no such route")
        answer = route if isinstance(route, str) else route(params)
        if isinstance(answer, web.StreamResponse):
            return answer
        return web.Response(text=answer, content_type="text/xml")

    def valid(self, request: web.Request, params: dict[str, str]) -> bool:
        signature = request.headers.get("X-Twilio-Signature")
        if signature is None:
            return False
        settings = request.headers.get("X-Twilio-Webhooks-Signature-Settings", "")
        algorithm = get_signature_algorithm(settings)
        secret = self.token
        if algorithm != "HMAC_SHA1":
            key = dict(part.split("=", 1) for part in settings.split(",") if "=" in part)
            if key.get("key") not in self.shared_keys:
                return False
            secret = self.shared_keys[key["key"]]
        validator = RequestValidator(secret)
        url = self.public_url + request.raw_path
        return bool(validator.validate(url, params, signature, algorithm=algorithm))


@contextlib.asynccontextmanager
async def serving(twiml_app: TwimlApp, **options: Any) -> AsyncIterator[VirtualCarrier]:
    async with TestServer(twiml_app.app()) as server, aiohttp.ClientSession() as session:
        options.setdefault("public_url", twiml_app.public_url)
        options.setdefault("account_sid", ACCOUNT_SID)
        yield VirtualCarrier(str(server.make_url("/")), twiml_app.token, session, **options)


def xml(body: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>'


STATUS = "/twilio/status"
VOICE = "/twilio/voice"


@pytest.mark.asyncio
async def test_published_signature_vector() -> None:
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+14158675309",
        "Digits": "1234",
        "From": "+14158675309",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    expected = "RSOYDt4T1cUTdK1PDd93/VVr8B8="
    assert compute_signature("12345", url, params) == expected
    assert Signing.auth_token().headers(url, params, "12345")["X-Twilio-Signature"] == expected

    # And end to end: the header the carrier actually sends over the wire.
    twiml_app = TwimlApp({"/myapp.php": xml("")}, token="12345", public_url="https://mycompany.com")
    async with serving(twiml_app) as carrier:
        response = await carrier.post("/myapp.php?foo=1&bar=2", params)
    assert response.status == 200
    assert twiml_app.seen[0].headers["X-Twilio-Signature"] == expected


@pytest.mark.asyncio
async def test_a_call_is_signed_and_carries_twilio_parameters() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml(
                '<Say language="cmn-CN" voice="Polly.Zhiyu">您好</Say>'
                '<Gather numDigits="1" action="/twilio/menu"><Say>Press 1.</Say></Gather>'
            ),
            "/twilio/menu": lambda form: xml(f"<Say>You chose {form['Digits']}</Say><Hangup/>"),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller(keys=["1"]), from_number="+8613900000001")

    assert twiml_app.rejected == []
    assert twiml_app.paths() == [VOICE, "/twilio/menu", STATUS]
    assert re.fullmatch(r"CA[0-9a-f]{32}", record.call_sid)
    first, menu, status = (seen.params for seen in twiml_app.seen)
    for params in (first, menu, status):
        assert params["AccountSid"] == ACCOUNT_SID
        assert params["CallSid"] == record.call_sid
        assert params["From"] == params["Caller"] == "+8613900000001"
        assert params["To"] == params["Called"] == "+8610123450000"
        assert params["Direction"] == "inbound"
        assert params["ApiVersion"] == "2010-04-01"
    assert first["CallStatus"] == "ringing"
    assert menu["CallStatus"] == "in-progress"
    assert menu["Digits"] == "1"
    assert status["CallStatus"] == "completed"
    assert int(status["CallDuration"]) >= 1
    for seen in twiml_app.seen:
        assert seen.method == "POST"
        assert seen.headers["Content-Type"] == "application/x-www-form-urlencoded"
    tokens = {seen.headers["I-Twilio-Idempotency-Token"] for seen in twiml_app.seen}
    assert len(tokens) == 3

    assert record.said == ["您好", "Press 1.", "You chose 1"]
    assert record.heard[0].language == "cmn-CN"
    assert record.heard[0].voice == "Polly.Zhiyu"
    assert record.ended_by == "hangup-verb"
    assert record.application_error is None
    assert record.last_url == PUBLIC_URL + "/twilio/menu"
    assert record.status_callback is not None
    assert record.status_callback.params["CallStatus"] == "completed"


@pytest.mark.asyncio
async def test_shared_key_sha256_signature_validates() -> None:
    twiml_app = TwimlApp({VOICE: xml("<Hangup/>"), STATUS: ""}, shared_keys={"KEY1": "s3cr3t"})
    async with serving(twiml_app, signing=Signing.shared_key("KEY1", "s3cr3t")) as carrier:
        record = await carrier.place_call(ScriptedCaller())
    assert twiml_app.rejected == []
    assert twiml_app.paths() == [VOICE, STATUS]
    settings = twiml_app.seen[0].headers["X-Twilio-Webhooks-Signature-Settings"]
    assert settings == "key=KEY1,algorithm=HMAC_SHA256"
    assert record.ended_by == "hangup-verb"


@pytest.mark.asyncio
async def test_wrong_or_missing_signatures_are_refused() -> None:
    twiml_app = TwimlApp({VOICE: xml("<Hangup/>"), STATUS: ""})
    async with serving(twiml_app) as carrier:
        assert (
            await carrier.post(VOICE, {"CallSid": "CA1"}, signing=Signing.wrong())
        ).status == 403
        unsigned = await carrier.post(VOICE, {"CallSid": "CA1"}, signing=Signing.unsigned())
        assert unsigned.status == 403
        # A test may replay one webhook with the same idempotency token, as a Twilio retry does.
        for _ in range(2):
            response = await carrier.post(VOICE, {"CallSid": "CA1"}, idempotency_token="tok-1")
            assert response.status == 200
            assert response.content_type == "text/xml"
            assert "<Hangup/>" in response.body
    assert "X-Twilio-Signature" not in twiml_app.rejected[1].headers
    assert [seen.headers["I-Twilio-Idempotency-Token"] for seen in twiml_app.seen] == ["tok-1"] * 2

    async with serving(twiml_app, signing=Signing.wrong()) as carrier:
        record = await carrier.place_call(ScriptedCaller())
    assert record.ended_by == "application-error"
    assert record.application_error is not None
    assert "HTTP 403" in record.application_error


@pytest.mark.asyncio
async def test_gather_without_input_falls_through_to_the_next_verb() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml(
                '<Gather action="/never" timeout="3"><Say>Press a key.</Say></Gather>'
                "<Say>We did not receive any input.</Say>"
            ),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        caller = ScriptedCaller(keys=[None])
        record = await carrier.place_call(caller)
    assert "/never" not in twiml_app.paths()
    assert record.said == ["Press a key.", "We did not receive any input."]
    assert record.ended_by == "document-end"
    assert caller.gathers[0].said == "Press a key."
    assert caller.gathers[0].url == PUBLIC_URL + "/never"


@pytest.mark.asyncio
async def test_action_on_empty_result_posts_empty_digits() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml(
                '<Gather action="/empty" actionOnEmptyResult="true"><Say>Key?</Say></Gather>'
                "<Say>unreachable</Say>"
            ),
            "/empty": xml("<Hangup/>"),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller(keys=[None]))
    assert twiml_app.to("/empty")[0]["Digits"] == ""
    assert "unreachable" not in record.said


@pytest.mark.asyncio
async def test_gather_applies_finish_key_num_digits_and_defaults_to_its_document() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml('<Gather action="/id"/>'),
            "/id": lambda form: xml(
                '<Gather numDigits="2"/>' if form["Digits"] == "4401" else "<Hangup/>"
            ),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        await carrier.place_call(ScriptedCaller(keys=["4401#99", "123"]))
    first, second = twiml_app.to("/id")
    assert (first["Digits"], first["FinishedOnKey"]) == ("4401", "#")
    # No action attribute: the digits go back to the document's own URL.
    assert second["Digits"] == "12"


@pytest.mark.asyncio
async def test_record_with_silence_skips_the_action() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml(
                '<Say>Leave a message.</Say><Record action="/recorded" maxLength="60"/>'
                "<Say>No message was recorded.</Say>"
                '<Record action="/recorded" finishOnKey="*"/>'
            ),
            "/recorded": xml("<Say>Thank you.</Say>"),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        caller = ScriptedCaller(recordings=[None, Recording(12.4)])
        record = await carrier.place_call(caller)
    assert record.said == ["Leave a message.", "No message was recorded.", "Thank you."]
    [posted] = twiml_app.to("/recorded")
    assert re.fullmatch(
        rf"https://api\.twilio\.com/2010-04-01/Accounts/{ACCOUNT_SID}/Recordings/RE[0-9a-f]{{32}}",
        posted["RecordingUrl"],
    )
    assert posted["RecordingSid"] == posted["RecordingUrl"].rsplit("/", 1)[1]
    assert posted["RecordingDuration"] == "12"
    assert posted["Digits"] == "*"


@pytest.mark.asyncio
async def test_caller_hanging_up_during_a_recording_still_delivers_it() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml('<Record action="/recorded"/><Say>unreachable</Say>'),
            "/recorded": xml("<Say>ignored</Say>"),
            STATUS: "",
        }
    )
    recording = Recording(5, url="https://media.example.gov/RE" + "1" * 32, end="hangup")
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller(recordings=[recording]))
    [posted] = twiml_app.to("/recorded")
    assert posted["Digits"] == "hangup"
    assert posted["RecordingSid"] == "RE" + "1" * 32
    assert record.said == []
    assert record.ended_by == "caller-hangup"
    assert twiml_app.paths()[-1] == STATUS


def queue_app(wait: Route, **routes: Route) -> TwimlApp:
    return TwimlApp(
        {
            VOICE: xml(
                '<Say>Connecting you.</Say><Enqueue waitUrl="/wait" action="/queue-done">'
                "support</Enqueue><Say>after enqueue</Say>"
            ),
            "/wait": wait,
            "/queue-done": lambda form: xml(f"<Say>Queue result {form['QueueResult']}.</Say>"),
            STATUS: "",
            **routes,
        }
    )


@pytest.mark.asyncio
async def test_enqueue_loops_the_wait_url_until_an_agent_answers() -> None:
    twiml_app = queue_app(
        lambda form: xml(f'<Say>You are number {form["QueuePosition"]}.</Say><Pause length="20"/>')
    )
    async with serving(twiml_app) as carrier:
        caller = ScriptedCaller(queue=QueuePlan(waits=2, then=QueueChoice.BRIDGED))
        record = await carrier.place_call(caller)
        assert carrier.queue_size("support") == 0
        queue_sid = carrier.queue_sid("support")

    waits = twiml_app.to("/wait")
    assert len(waits) == 3
    assert [form["QueuePosition"] for form in waits] == ["1", "1", "1"]
    assert {form["QueueSid"] for form in waits} == {queue_sid}
    assert re.fullmatch(r"QU[0-9a-f]{32}", queue_sid)
    times = [int(form["QueueTime"]) for form in waits]
    assert times[0] == 0 and times[0] < times[1] < times[2]
    assert all(form["CurrentQueueSize"] == "1" for form in waits)
    assert "AvgQueueTime" in waits[0]

    [done] = twiml_app.to("/queue-done")
    assert done["QueueResult"] == "bridged"
    assert done["QueueSid"] == queue_sid
    assert int(done["QueueTime"]) >= 60
    assert record.said[-1] == "Queue result bridged."
    assert "after enqueue" not in record.said
    assert [result.result for result in record.queue_results] == ["bridged"]
    assert [info.loop for info in caller.queue_updates] == [1, 2, 3]
    assert all(item.queue == "support" for item in record.heard if "number" in item.text)


@pytest.mark.asyncio
async def test_leave_in_the_wait_document_posts_the_action_with_leave() -> None:
    def wait(form: dict[str, str]) -> str:
        # First round: offer a way out; the key sends the caller to /wait-key.
        return xml('<Gather action="/wait-key" numDigits="1"><Say>Press 1 to leave.</Say></Gather>')

    twiml_app = queue_app(
        wait,
        **{"/wait-key": lambda form: xml("<Leave/>" if form["Digits"] == "1" else "")},
    )
    async with serving(twiml_app) as carrier:
        caller = ScriptedCaller(keys=["2", "1"], queue=QueuePlan(waits=5))
        record = await carrier.place_call(caller)
        assert carrier.queue_size("support") == 0

    # The key-press answers run in the queue context too, with the queue parameters.
    key_posts = twiml_app.to("/wait-key")
    assert [form["Digits"] for form in key_posts] == ["2", "1"]
    assert key_posts[0]["QueuePosition"] == "1"
    [done] = twiml_app.to("/queue-done")
    assert done["QueueResult"] == "leave"
    assert record.said[-1] == "Queue result leave."
    assert record.ended_by == "document-end"
    assert len(caller.queue_updates) == 1  # only the "2" round ended without Leave


@pytest.mark.asyncio
async def test_leave_without_action_continues_after_enqueue() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml('<Enqueue waitUrl="/wait">support</Enqueue><Say>after enqueue</Say>'),
            "/wait": xml("<Leave/>"),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller())
    assert record.said == ["after enqueue"]
    assert [result.result for result in record.queue_results] == ["leave"]


@pytest.mark.asyncio
async def test_a_full_queue_answers_queue_full_immediately() -> None:
    twiml_app = queue_app(xml("<Play>https://media.example.gov/hold.mp3</Play>"))
    gate = asyncio.Event()
    async with serving(twiml_app, queue_max_size={"support": 1}) as carrier:
        first = asyncio.create_task(carrier.place_call(ScriptedCaller(queue_gate=gate)))
        await until_queued(carrier, 1)

        second = await carrier.place_call(ScriptedCaller())
        gate.set()
        first_record = await asyncio.wait_for(first, timeout=10)

    assert [result.result for result in second.queue_results] == ["queue-full"]
    assert second.said[-1] == "Queue result queue-full."
    assert [result.result for result in first_record.queue_results] == ["bridged"]
    results = [form["QueueResult"] for form in twiml_app.to("/queue-done")]
    assert results == ["queue-full", "bridged"]


@pytest.mark.asyncio
async def test_hanging_up_in_the_queue_reports_hangup_then_completed() -> None:
    twiml_app = queue_app(xml("<Say>Please hold.</Say>"))
    async with serving(twiml_app) as carrier:
        caller = ScriptedCaller(queue=QueuePlan(waits=1, then=QueueChoice.HANGUP))
        record = await carrier.place_call(caller)
        assert carrier.queue_size("support") == 0

    assert twiml_app.paths()[-2:] == ["/queue-done", STATUS]
    assert twiml_app.to("/queue-done")[0]["QueueResult"] == "hangup"
    assert twiml_app.to(STATUS)[0]["CallStatus"] == "completed"
    assert record.ended_by == "caller-hangup"
    # The action's answer is never played: the caller is gone.
    assert "Queue result hangup." not in record.said
    assert record.said == ["Connecting you.", "Please hold.", "Please hold."]


@pytest.mark.asyncio
async def test_hanging_up_at_a_gather_in_the_queue_reports_hangup() -> None:
    twiml_app = queue_app(xml('<Gather action="/wait-key"><Say>Press 1.</Say></Gather>'))
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller(keys=[HANG_UP]))
    assert twiml_app.to("/queue-done")[0]["QueueResult"] == "hangup"
    assert twiml_app.paths()[-1] == STATUS
    assert record.ended_by == "caller-hangup"


@pytest.mark.asyncio
async def test_verbs_not_allowed_while_waiting_are_an_application_error() -> None:
    twiml_app = queue_app(xml("<Record/>"))
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller())
        assert carrier.queue_size("support") == 0
    assert record.ended_by == "application-error"
    assert record.application_error is not None
    assert "<Record>" in record.application_error


@pytest.mark.asyncio
async def test_redirect_in_the_wait_document_is_where_the_next_round_starts() -> None:
    # A <Redirect> ends a round of hold music (an agent may answer in between); the next
    # round runs the redirect target, and the round after that the original waitUrl again.
    twiml_app = queue_app(
        xml('<Say>Hold on.</Say><Redirect method="POST">/wait-more</Redirect><Say>gone</Say>'),
        **{"/wait-more": lambda form: xml(f"<Say>Still {form['QueuePosition']}.</Say>")},
    )
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller(queue=QueuePlan(waits=3)))
    paths = twiml_app.paths()
    assert paths[paths.index("/wait") : paths.index("/queue-done")] == [
        "/wait",
        "/wait-more",
        "/wait",
        "/wait-more",
    ]
    assert "gone" not in record.said
    assert record.said.count("Still 1.") == 2


@pytest.mark.asyncio
async def test_answers_twilio_cannot_execute_are_application_errors() -> None:
    answers: dict[str, Route] = {
        "json": lambda form: web.json_response({"say": "hello"}),
        "html error": lambda form: web.Response(status=500, text="boom"),
        "no response root": "<Say>hello</Say>",
        "unknown verb": xml("<Speak>hello</Speak>"),
        "broken xml": xml("<Say>hello</Sya>"),
    }
    for name, answer in answers.items():
        twiml_app = TwimlApp(
            {VOICE: xml("<Redirect>/next</Redirect>"), "/next": answer, STATUS: ""}
        )
        async with serving(twiml_app) as carrier:
            record = await carrier.place_call(ScriptedCaller())
        assert record.ended_by == "application-error", name
        assert record.application_error is not None, name
        assert record.said == [APPLICATION_ERROR_MESSAGE], name
        assert twiml_app.paths()[-1] == STATUS, name
        assert twiml_app.to(STATUS)[0]["CallStatus"] == "completed", name


@pytest.mark.asyncio
async def test_relative_urls_resolve_against_their_document() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml("<Redirect>next</Redirect>"),
            "/twilio/next": xml('<Gather action="../menu/pick?lang=zh" numDigits="1"/>'),
            "/menu/pick": lambda form: xml('<Redirect method="GET">done?from=pick</Redirect>'),
            "/menu/done": xml("<Hangup/>"),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller(keys=["3"]))
    assert twiml_app.rejected == []
    assert twiml_app.paths() == [VOICE, "/twilio/next", "/menu/pick", "/menu/done", STATUS]
    assert [exchange.url for exchange in record.exchanges][:4] == [
        PUBLIC_URL + VOICE,
        PUBLIC_URL + "/twilio/next",
        PUBLIC_URL + "/menu/pick?lang=zh",
        PUBLIC_URL + "/menu/done?from=pick",
    ]
    get = twiml_app.seen[3]
    assert get.method == "GET"
    assert get.params == {}  # GET parameters travel in the (signed) query string
    assert record.ended_by == "hangup-verb"


@pytest.mark.asyncio
async def test_the_loop_guard_stops_a_redirect_loop() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml("<Redirect>/loop</Redirect>"),
            "/loop": xml("<Redirect>/loop</Redirect>"),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller())
    assert record.ended_by == "loop-guard"
    assert len([e for e in record.exchanges if e.kind == "twiml"]) == 300
    assert twiml_app.paths()[-1] == STATUS


@pytest.mark.asyncio
async def test_a_caller_who_hangs_up_or_runs_out_of_script_ends_the_call() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml('<Gather action="/a"><Say>First?</Say></Gather>'),
            "/a": xml('<Gather action="/b"><Say>Second?</Say></Gather>'),
            "/b": xml("<Say>unreachable</Say>"),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        hung_up = await carrier.place_call(ScriptedCaller(keys=[HANG_UP]))
        ran_out = await carrier.place_call(ScriptedCaller(keys=["1"]))
    assert hung_up.ended_by == ran_out.ended_by == "caller-hangup"
    assert hung_up.said == ["First?"]
    assert ran_out.said == ["First?", "Second?"]
    assert twiml_app.paths() == [VOICE, STATUS, VOICE, "/a", STATUS]


@pytest.mark.asyncio
async def test_reject_as_first_verb_leaves_the_call_unanswered() -> None:
    twiml_app = TwimlApp({VOICE: xml('<Reject reason="busy"/>'), STATUS: ""})
    async with serving(twiml_app) as carrier:
        record = await carrier.place_call(ScriptedCaller())
    assert record.ended_by == "rejected"
    assert twiml_app.to(STATUS)[0]["CallStatus"] == "busy"
    assert twiml_app.to(STATUS)[0]["CallDuration"] == "0"


@pytest.mark.asyncio
async def test_terminal_call_prints_the_call_and_its_ticket() -> None:
    tickets_seen: list[str] = []

    async def tickets(request: web.Request) -> web.Response:
        tickets_seen.append(request.headers.get("Authorization", ""))
        assert request.query["call_sid"].startswith("CA")
        return web.json_response({"tickets": [{"number": "12345-0001"}]})

    twiml_app = TwimlApp(
        {
            VOICE: xml(
                '<Gather action="/menu" numDigits="1"><Say language="cmn-CN">请按键</Say></Gather>'
            ),
            "/menu": xml('<Record action="/done"/>'),
            "/done": xml("<Say>Bye.</Say>"),
            STATUS: "",
        }
    )
    app = twiml_app.app(own_routes=[web.get("/api/tickets", tickets)])
    answers = iter(["7", "9.5"])
    out = io.StringIO()
    async with TestServer(app) as server:
        code = await run_terminal_call(
            str(server.make_url("")),
            TOKEN,
            "+8613900000009",
            public_url=PUBLIC_URL,
            admin_token="admin-secret",
            caller=TerminalCaller(read=lambda prompt: next(answers), out=out),
            out=out,
        )
    printed = out.getvalue()
    assert code == 0, printed
    assert "say [cmn-CN]: 请按键" in printed
    assert "12345-0001" in printed
    assert "last URL: https://hotline.example.gov/done" in printed
    assert tickets_seen == ["Bearer admin-secret"]
    assert twiml_app.to("/done")[0]["RecordingDuration"] == "10"


@pytest.mark.asyncio
async def test_terminal_caller_reads_keys_silence_and_hang_up() -> None:
    lines = iter(["12#", "", "q", "x", "4", "", "a"])
    caller = TerminalCaller(read=lambda prompt: next(lines), out=io.StringIO())
    gather = GatherInfo(url=PUBLIC_URL)
    assert await caller.press(gather) == "12#"
    assert await caller.press(gather) is None
    assert await caller.press(gather) is HANG_UP
    assert await caller.record(RecordInfo(url=PUBLIC_URL)) == Recording(4.0)  # "x" is re-asked
    info = QueueInfo("support", "QU1", 1, 1, 100, 0, 0, 1)
    assert await caller.in_queue(info) is QueueChoice.WAIT
    assert await caller.in_queue(info) is QueueChoice.BRIDGED

    def closed(prompt: str) -> str:
        raise EOFError

    assert await TerminalCaller(read=closed, out=io.StringIO()).press(gather) is HANG_UP


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.mark.asyncio
async def test_an_unreachable_server_is_an_application_error() -> None:
    base = f"http://127.0.0.1:{unused_port()}"
    async with aiohttp.ClientSession() as session:
        carrier = VirtualCarrier(base, TOKEN, session, public_url=PUBLIC_URL)
        record = await carrier.place_call(ScriptedCaller())
        with pytest.raises(aiohttp.ClientConnectorError):
            await carrier.post(VOICE, {})
    assert record.ended_by == "application-error"
    assert record.said == [APPLICATION_ERROR_MESSAGE]
    assert [exchange.status for exchange in record.exchanges] == [0, 0]
    assert record.exchanges[-1].kind == "status-callback"

    out = io.StringIO()
    assert await run_terminal_call(base, TOKEN, "+8613900000009", out=out) == 2


@pytest.mark.asyncio
async def test_default_hold_music_and_the_guard_against_holding_forever() -> None:
    twiml_app = TwimlApp({VOICE: xml("<Enqueue>support</Enqueue>"), STATUS: ""})
    async with serving(twiml_app, max_webhooks=10) as carrier:
        forever = ScriptedCaller(queue=QueuePlan(then=QueueChoice.WAIT))
        record = await carrier.place_call(forever)
        assert carrier.queue_size("support") == 0
    assert record.ended_by == "loop-guard"
    assert len(record.heard) == 10
    assert {item.kind for item in record.heard} == {"play"}
    assert twiml_app.paths() == [VOICE, STATUS]


AGENT = "+8610000000001"
CALLER = "+8613900000001"
DIAL_QUEUE = '<Dial action="/agent-done"><Queue url="/whisper">support</Queue></Dial>'


def agent_app(dial: str = DIAL_QUEUE, **routes: Route) -> TwimlApp:
    """Callers from AGENT dial the queue; everyone else waits in it."""

    def voice(form: dict[str, str]) -> str:
        if form["From"] == AGENT:
            return xml(dial + "<Say>after dial</Say>")
        return xml(
            '<Enqueue waitUrl="/wait" action="/queue-done">support</Enqueue>'
            "<Say>after enqueue</Say>"
        )

    return TwimlApp(
        {
            VOICE: voice,
            "/wait": xml('<Say>Please hold.</Say><Pause length="10"/>'),
            "/whisper": xml("<Say>An agent is answering.</Say><Redirect>/whisper-more</Redirect>"),
            "/whisper-more": lambda form: xml(f"<Say>You waited {form['QueueTime']}s.</Say>"),
            "/queue-done": lambda form: xml(f"<Say>Queue result {form['QueueResult']}.</Say>"),
            "/agent-done": lambda form: xml(f"<Say>Dial {form['DialCallStatus']}.</Say>"),
            STATUS: "",
            **routes,
        }
    )


def holding_caller() -> ScriptedCaller:
    """Holds (for real) until an agent takes it; gives up after ten seconds."""
    return ScriptedCaller(queue=QueuePlan(then=QueueChoice.HANGUP, patience=10))


async def until_queued(carrier: VirtualCarrier, size: int, queue: str = "support") -> None:
    await eventually(lambda: carrier.queue_size(queue) == size, f"{queue} at {size} members")


def status_of(twiml_app: TwimlApp, call_sid: str) -> dict[str, str]:
    [status] = [form for form in twiml_app.to(STATUS) if form["CallSid"] == call_sid]
    return status


@pytest.mark.asyncio
async def test_dial_queue_connects_the_agent_with_the_holding_caller() -> None:
    twiml_app = agent_app()
    async with serving(twiml_app) as carrier:
        caller = holding_caller()
        holding = asyncio.create_task(carrier.place_call(caller, from_number=CALLER))
        await until_queued(carrier, 1)
        agent = ScriptedCaller()
        agent_record = await asyncio.wait_for(carrier.place_call(agent, from_number=AGENT), 10)
        record = await asyncio.wait_for(holding, 10)
        assert carrier.queue_size("support") == 0
        queue_sid = carrier.queue_sid("support")

    assert twiml_app.rejected == []
    assert record.answered_by == agent_record.call_sid
    assert agent_record.bridged_with == [record.call_sid]
    assert agent_record.dialed == []
    [info] = agent.bridges
    assert (info.call_sid, info.number, info.queue, info.queue_sid) == (
        record.call_sid,
        CALLER,
        "support",
        queue_sid,
    )
    assert caller.hung_up is False

    # The url document runs on the caller's end, with the dequeue parameters.
    [whisper] = twiml_app.to("/whisper")
    assert whisper["CallSid"] == record.call_sid
    assert whisper["From"] == CALLER
    assert whisper["QueueSid"] == queue_sid
    assert whisper["DequeingCallSid"] == agent_record.call_sid
    assert int(whisper["QueueTime"]) >= 10
    assert twiml_app.to("/whisper-more")[0]["DequeingCallSid"] == agent_record.call_sid
    assert record.said == [
        "Please hold.",
        "An agent is answering.",
        f"You waited {whisper['QueueTime']}s.",
        # The agent hung up first: the caller's call goes on with the Enqueue action.
        "Queue result bridged.",
    ]
    assert PUBLIC_URL + "/whisper" in [exchange.url for exchange in record.exchanges]
    assert "An agent is answering." not in agent_record.said

    [done] = twiml_app.to("/queue-done")
    assert done["QueueResult"] == "bridged"
    assert done["QueueSid"] == queue_sid
    assert done["QueueTime"] == whisper["QueueTime"]
    assert [result.result for result in record.queue_results] == ["bridged"]
    assert record.ended_by == "document-end"

    # The agent hung up: its Dial action is still reported, but nobody hears the answer.
    [dial] = twiml_app.to("/agent-done")
    assert dial["CallSid"] == agent_record.call_sid
    assert dial["DialCallStatus"] == "completed"
    assert dial["DialCallSid"] == record.call_sid
    assert dial["DialCallDuration"] == "60"
    assert dial["QueueSid"] == queue_sid
    assert [e.kind for e in agent_record.exchanges if e.url.endswith("/agent-done")] == ["ignored"]
    assert agent_record.said == []
    assert agent_record.ended_by == "caller-hangup"

    # Each call reports its own end, the conversation included.
    assert int(status_of(twiml_app, agent_record.call_sid)["CallDuration"]) == 60
    assert int(status_of(twiml_app, record.call_sid)["CallDuration"]) >= 70
    assert status_of(twiml_app, record.call_sid)["CallStatus"] == "completed"


@pytest.mark.asyncio
@pytest.mark.parametrize("who", ["caller", "both"])
async def test_a_caller_who_hangs_up_on_the_agent_still_reports_bridged(who: str) -> None:
    twiml_app = agent_app()
    async with serving(twiml_app) as carrier:
        holding = asyncio.create_task(carrier.place_call(holding_caller(), from_number=CALLER))
        await until_queued(carrier, 1)
        agent = ScriptedCaller(bridge=BridgeEnd("caller" if who == "caller" else "both", 30))
        agent_record = await asyncio.wait_for(carrier.place_call(agent, from_number=AGENT), 10)
        record = await asyncio.wait_for(holding, 10)

    # The caller's Enqueue action hears "bridged", but the caller is gone.
    assert twiml_app.to("/queue-done")[0]["QueueResult"] == "bridged"
    assert [e.kind for e in record.exchanges if e.url.endswith("/queue-done")] == ["ignored"]
    assert "Queue result bridged." not in record.said
    assert record.ended_by == "caller-hangup"

    [dial] = twiml_app.to("/agent-done")
    assert dial["DialCallStatus"] == "completed"
    assert dial["DialCallDuration"] == "30"
    if who == "caller":
        # The agent is still on the line: its Dial action's TwiML (a wrap-up menu) plays.
        assert agent_record.said == ["Dial completed."]
        assert agent_record.ended_by == "document-end"
        assert agent.hung_up is False
    else:
        assert agent_record.said == []
        assert agent_record.ended_by == "caller-hangup"
    for call in (record, agent_record):
        assert status_of(twiml_app, call.call_sid)["CallStatus"] == "completed"
    assert int(status_of(twiml_app, agent_record.call_sid)["CallDuration"]) >= 30


@pytest.mark.asyncio
async def test_dial_queue_takes_the_caller_who_joined_first() -> None:
    twiml_app = agent_app()
    async with serving(twiml_app) as carrier:
        first_caller, second_caller = holding_caller(), holding_caller()
        first = asyncio.create_task(carrier.place_call(first_caller, from_number=CALLER))
        await until_queued(carrier, 1)
        second = asyncio.create_task(
            carrier.place_call(second_caller, from_number="+8613900000002")
        )
        await until_queued(carrier, 2)

        agent_one = await asyncio.wait_for(
            carrier.place_call(ScriptedCaller(), from_number=AGENT), 10
        )
        first_record = await asyncio.wait_for(first, 10)
        assert carrier.queue_size("support") == 1
        assert not second.done()
        agent_two = await asyncio.wait_for(
            carrier.place_call(ScriptedCaller(), from_number=AGENT), 10
        )
        second_record = await asyncio.wait_for(second, 10)

    assert agent_one.bridged_with == [first_record.call_sid]
    assert agent_two.bridged_with == [second_record.call_sid]
    assert first_record.answered_by == agent_one.call_sid
    assert second_record.answered_by == agent_two.call_sid
    assert second_caller.queue_updates[0].position == 2
    assert [form["DialCallSid"] for form in twiml_app.to("/agent-done")] == [
        first_record.call_sid,
        second_record.call_sid,
    ]


@pytest.mark.asyncio
async def test_dial_on_an_empty_queue_waits_out_its_timeout_then_no_answer() -> None:
    twiml_app = agent_app('<Dial action="/agent-done" timeout="4"><Queue>support</Queue></Dial>')
    loop = asyncio.get_running_loop()
    async with serving(twiml_app) as carrier:
        started = loop.time()
        agent_record = await carrier.place_call(ScriptedCaller(), from_number=AGENT)
        elapsed = loop.time() - started
        queue_sid = carrier.queue_sid("support")

    assert 0.2 * 0.9 <= elapsed < 3  # 4 simulated seconds at the default scale of 0.05
    [dial] = twiml_app.to("/agent-done")
    assert dial["DialCallStatus"] == "no-answer"
    assert dial["QueueSid"] == queue_sid
    assert "DialCallSid" not in dial
    assert agent_record.bridged_with == []
    assert agent_record.said == ["Dial no-answer."]
    assert int(status_of(twiml_app, agent_record.call_sid)["CallDuration"]) >= 4


@pytest.mark.asyncio
async def test_a_caller_who_joins_while_the_dial_waits_is_connected() -> None:
    twiml_app = agent_app(
        '<Dial action="/agent-done" timeout="60"><Queue url="/whisper">support</Queue></Dial>'
    )
    async with serving(twiml_app, dial_wait_scale=0.1) as carrier:
        agent = ScriptedCaller(bridge=BridgeEnd("caller", 5))
        dialing = asyncio.create_task(carrier.place_call(agent, from_number=AGENT))
        await eventually(lambda: twiml_app.to(VOICE), "the agent's call answered")
        await asyncio.sleep(0.2)  # the agent is now waiting in its <Dial>
        assert not dialing.done()
        record = await asyncio.wait_for(
            carrier.place_call(holding_caller(), from_number=CALLER), 10
        )
        agent_record = await asyncio.wait_for(dialing, 10)

    assert agent_record.bridged_with == [record.call_sid]
    assert record.answered_by == agent_record.call_sid
    assert twiml_app.to("/agent-done")[0]["DialCallStatus"] == "completed"
    assert agent_record.said == ["Dial completed."]
    assert "An agent is answering." in record.said
    # The simulated wait is the real one scaled up: at least the 0.2 s slept, at most the timeout.
    assert 2 <= int(status_of(twiml_app, agent_record.call_sid)["CallDuration"]) <= 65 + 5


@pytest.mark.asyncio
async def test_a_url_document_twilio_cannot_play_fails_the_dial() -> None:
    twiml_app = agent_app(**{"/whisper": xml('<Gather numDigits="1"/>')})
    async with serving(twiml_app) as carrier:
        holding = asyncio.create_task(carrier.place_call(holding_caller(), from_number=CALLER))
        await until_queued(carrier, 1)
        agent_record = await asyncio.wait_for(
            carrier.place_call(ScriptedCaller(), from_number=AGENT), 10
        )
        record = await asyncio.wait_for(holding, 10)

    assert record.ended_by == "application-error"
    assert record.application_error is not None
    assert "<Queue url> document" in record.application_error
    assert record.answered_by is None
    assert twiml_app.to("/agent-done")[0]["DialCallStatus"] == "failed"
    assert agent_record.bridged_with == []
    assert agent_record.said == ["Dial failed."]


@pytest.mark.asyncio
async def test_dial_number_and_client_are_connected_then_continue_after_dial() -> None:
    twiml_app = TwimlApp(
        {
            VOICE: xml(
                "<Dial><Number>+8613900000077</Number><Client>desk-7</Client></Dial>"
                "<Say>after dial</Say>"
            ),
            STATUS: "",
        }
    )
    async with serving(twiml_app) as carrier:
        transferred = ScriptedCaller(bridge=BridgeEnd("caller", 120))
        record = await carrier.place_call(transferred)
        hung_up = await carrier.place_call(ScriptedCaller())
    assert record.dialed == ["+8613900000077", "client:desk-7"]
    assert len(record.bridged_with) == 1 and record.bridged_with[0].startswith("CA")
    assert transferred.bridges[0].number == "+8613900000077"
    assert record.said == ["after dial"]
    assert record.duration >= 120
    assert hung_up.said == []
    assert hung_up.ended_by == "caller-hangup"


@pytest.mark.asyncio
async def test_the_members_api_takes_the_named_caller_not_the_front() -> None:
    """Twilio's Queue Members API, POST with a Url: the named member leaves the queue at
    once, its Enqueue action is requested right away (QueueResult redirected; Twilio runs
    none of that answer), and the call runs the TwiML at the new Url."""
    routes: dict[str, Route] = {
        "/taken": lambda form: xml(f"<Say>Taken, {form['CallSid'][:2]}.</Say>"),
        "/queue-done": xml("<Say>never heard</Say>"),
    }
    twiml_app = agent_app(DIAL_QUEUE, **routes)
    async with serving(twiml_app) as carrier:
        front_caller, chosen_caller = holding_caller(), holding_caller()
        front = asyncio.create_task(carrier.place_call(front_caller, from_number=CALLER))
        await until_queued(carrier, 1)
        chosen = asyncio.create_task(
            carrier.place_call(chosen_caller, from_number="+8613900000002")
        )
        await until_queued(carrier, 2)
        sid = carrier.queue_sid("support")
        second = next(c for c in carrier.calls if c.from_number == "+8613900000002")
        with pytest.raises(QueueNotFound):
            carrier.dequeue("QU" + "0" * 32, second.call_sid, PUBLIC_URL + "/taken")
        member = carrier.dequeue(sid, second.call_sid, PUBLIC_URL + "/taken")
        assert (member.call_sid, member.queue_sid, member.position) == (second.call_sid, sid, 2)
        with pytest.raises(NotQueued):  # only the first request for a member succeeds
            carrier.dequeue(sid, second.call_sid, PUBLIC_URL + "/taken")
        record = await asyncio.wait_for(chosen, 10)
        assert carrier.queue_size("support") == 1 and not front.done()
        # The one left is taken by an agent's <Dial><Queue>, as before.
        agent_record = await asyncio.wait_for(
            carrier.place_call(ScriptedCaller(), from_number=AGENT), 10
        )
        first = await asyncio.wait_for(front, 10)

    assert record.said == ["Please hold.", "Taken, CA."]
    assert record.answered_by is None and record.ended_by == "document-end"
    [done] = [form for form in twiml_app.to("/queue-done") if form["CallSid"] == record.call_sid]
    assert (done["QueueResult"], done["QueueSid"], done["CallStatus"]) == (
        "redirected",
        sid,
        "in-progress",
    )
    assert [e.kind for e in record.exchanges if e.url.endswith("/queue-done")] == ["ignored"]
    assert [r.result for r in record.queue_results] == ["redirected"]
    [taken] = twiml_app.to("/taken")
    assert taken["CallSid"] == record.call_sid and "QueueResult" not in taken
    assert agent_record.bridged_with == [first.call_sid]


@pytest.mark.asyncio
async def test_a_call_can_be_kept_on_one_server_process() -> None:
    """`via`: a call's webhooks reach the process a load balancer chose, signed for the
    public URL all the same."""
    one, other = (
        TwimlApp({VOICE: xml("<Say>one</Say>"), STATUS: ""}),
        TwimlApp({VOICE: xml("<Say>other</Say>"), STATUS: ""}),
    )
    async with TestServer(other.app()) as elsewhere, serving(one) as carrier:
        here = await carrier.place_call(ScriptedCaller())
        there = await carrier.place_call(ScriptedCaller(), via=str(elsewhere.make_url("/")))
    assert (here.said, there.said) == (["one"], ["other"])
    assert one.rejected == other.rejected == [] and len(other.to(STATUS)) == 1


def test_dial_nouns_are_checked_like_twilio() -> None:
    dial = twiml.parse_document(
        xml('<Dial timeout="20" method="GET"><Queue url="/w" method="GET">sales</Queue></Dial>'),
        PUBLIC_URL,
    ).verbs[0]
    assert dial == twiml.Dial(
        method="GET", timeout=20.0, queue=twiml.DialQueue("sales", "/w", "GET")
    )
    bare = twiml.parse_document(xml("<Dial>+8613900000077</Dial>"), PUBLIC_URL).verbs[0]
    assert isinstance(bare, twiml.Dial) and bare.targets == ("+8613900000077",)
    for body in (
        "<Dial><Queue>a</Queue><Number>+861</Number></Dial>",
        "<Dial><Conference>room</Conference></Dial>",
        "<Dial><Say>hi</Say></Dial>",
        "<Dial/>",
        "<Dial><Queue/></Dial>",
    ):
        with pytest.raises(twiml.TwimlError):
            twiml.parse_document(xml(body), PUBLIC_URL)
    with pytest.raises(twiml.TwimlError, match="not allowed"):
        twiml.parse_document(xml("<Enqueue>a</Enqueue>"), PUBLIC_URL, context="dequeue")
