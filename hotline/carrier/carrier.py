"""A virtual Twilio Programmable Voice that places calls into the hotline.

It talks to the server only through its public webhook contract: signed form
POSTs in, TwiML out. Everything a real call depends on but the server cannot
see (the queue, the clock, the person holding the phone) is simulated here,
so a whole call can be replayed deterministically in a test or driven by hand
from a terminal. Calls placed by one carrier share its queues: an agent's call
whose <Dial><Queue> runs takes the caller at the front of that queue, and
`dequeue` (what Twilio's Queue Members API does) takes a named caller out of its
queue into the TwiML at a URL of the service's choosing.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, TypeVar
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import aiohttp
import yarl
from twilio.request_validator import (  # type: ignore[import-untyped, unused-ignore]
    RequestValidator,
)

from hotline.carrier import twiml
from hotline.carrier.callers import (
    BridgeEnd,
    BridgeInfo,
    Caller,
    GatherInfo,
    HangUp,
    Heard,
    QueueChoice,
    QueueInfo,
    RecordInfo,
    Recording,
)

SIGNATURE_HEADER = "X-Twilio-Signature"
SIGNATURE_SETTINGS_HEADER = "X-Twilio-Webhooks-Signature-Settings"
IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
API_VERSION = "2010-04-01"
DEFAULT_ACCOUNT_SID = "AC0123456789abcdef0123456789abcdef"
APPLICATION_ERROR_MESSAGE = "An application error has occurred"
# What Twilio plays to a queued caller when <Enqueue> has no waitUrl.
DEFAULT_HOLD_MUSIC = "http://com.twilio.music.classical.s3.amazonaws.com/BusyStrings.mp3"
# Content types Twilio executes as TwiML.
_TWIML_TYPES = frozenset({"text/xml", "application/xml", "text/html"})

EndReason = Literal[
    "hangup-verb",
    "document-end",
    "caller-hangup",
    "application-error",
    "loop-guard",
    "rejected",
]
ExchangeKind = Literal["twiml", "ignored", "status-callback"]
QueueOutcome = Literal["bridged", "queue-full", "leave", "hangup", "redirected"]
_T = TypeVar("_T")


def compute_signature(
    secret: str, url: str, params: Mapping[str, str], algorithm: str = "HMAC_SHA1"
) -> str:
    """X-Twilio-Signature for `url` and form `params`, computed by the twilio library itself."""
    validator = RequestValidator(secret)
    if algorithm == "HMAC_SHA1":
        # Keyword-free call: older twilio releases predate the algorithm argument.
        signature: str = validator.compute_signature(url, dict(params))
    else:
        signature = validator.compute_signature(url, dict(params), algorithm=algorithm)
    return signature


@dataclass(frozen=True)
class Signing:
    """How webhooks are signed: as Twilio does, or deliberately wrong for tests of 403."""

    mode: Literal["auth-token", "shared-key", "wrong", "none"] = "auth-token"
    key_id: str = ""
    secret: str = ""

    @classmethod
    def auth_token(cls) -> Signing:
        """HMAC-SHA1 with the account auth token: Twilio's default."""
        return cls()

    @classmethod
    def shared_key(cls, key_id: str, secret: str) -> Signing:
        """HMAC-SHA256 with a webhook shared key, announced in the settings header."""
        return cls("shared-key", key_id, secret)

    @classmethod
    def wrong(cls) -> Signing:
        """A well-formed signature made with the wrong secret."""
        return cls("wrong")

    @classmethod
    def unsigned(cls) -> Signing:
        """No X-Twilio-Signature header at all."""
        return cls("none")

    def headers(self, url: str, params: Mapping[str, str], auth_token: str) -> dict[str, str]:
        if self.mode == "none":
            return {}
        if self.mode == "shared-key":
            return {
                SIGNATURE_HEADER: compute_signature(self.secret, url, params, "HMAC_SHA256"),
                SIGNATURE_SETTINGS_HEADER: f"key={self.key_id},algorithm=HMAC_SHA256",
            }
        secret = auth_token if self.mode == "auth-token" else auth_token + "-but-not-quite"
        return {SIGNATURE_HEADER: compute_signature(secret, url, params)}


@dataclass(frozen=True)
class WebhookResponse:
    status: int
    content_type: str
    body: str
    content: bytes = field(default=b"", repr=False)


@dataclass(frozen=True)
class Exchange:
    """One webhook of a call and the server's answer."""

    method: str
    url: str  # the URL Twilio would request (public form, before GET parameters)
    params: Mapping[str, str]
    status: int  # 0 when no HTTP answer came (refused, reset, timed out)
    body: str
    content_type: str = ""
    # "ignored": the answer is never played: sent after the caller hung up, or only to
    # inform (an <Enqueue> action when the Queue Members API took the caller out).
    kind: ExchangeKind = "twiml"


@dataclass(frozen=True)
class QueueResult:
    """How one <Enqueue> ended, as reported to its action URL."""

    queue: str
    result: QueueOutcome
    queue_sid: str
    queue_time: int
    loops: int  # how many times the hold document ran


@dataclass
class CallRecord:
    call_sid: str
    from_number: str
    to_number: str
    heard: list[Heard] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    ended_by: EndReason = "document-end"
    application_error: str | None = None
    queue_results: list[QueueResult] = field(default_factory=list)
    dialed: list[str] = field(default_factory=list)  # <Number>/<Client> targets of <Dial>
    # CallSids this call's <Dial>s were connected to (dequeued callers, dialed numbers).
    bridged_with: list[str] = field(default_factory=list)
    # The CallSid whose <Dial><Queue> took this call out of its queue.
    answered_by: str | None = None
    warnings: list[str] = field(default_factory=list)
    call_status: str = "completed"
    duration: float = 0.0  # simulated seconds

    @property
    def said(self) -> list[str]:
        return [item.text for item in self.heard if item.kind == "say"]

    @property
    def last_url(self) -> str | None:
        """The last URL whose TwiML was fetched: where in the flow the call ended."""
        for exchange in reversed(self.exchanges):
            if exchange.kind == "twiml":
                return exchange.url
        return None

    @property
    def status_callback(self) -> Exchange | None:
        for exchange in self.exchanges:
            if exchange.kind == "status-callback":
                return exchange
        return None


@dataclass
class _Bridge:
    """Where a call's <Dial><Queue> meets the caller it took from the queue."""

    agent_sid: str  # the dequeuing (dialing) call
    url: str | None  # the <Queue url> document, run on the dequeued caller's end
    method: str
    # Set by the dequeued call: its QueueTime once connected, or None if it went away first.
    connected: asyncio.Future[int | None]
    # Set by the dialing call: how the conversation ended.
    ended: asyncio.Future[BridgeEnd]


@dataclass(frozen=True)
class _Redirect:
    """Where the Queue Members API sent a dequeued caller: TwiML from this URL next."""

    url: str
    method: str


@dataclass
class _Member:
    call_sid: str
    from_number: str = ""
    waited: float = 0.0
    bridge: _Bridge | None = None  # set, with `taken`, when a <Dial><Queue> dequeues it
    redirect: _Redirect | None = None  # set, with `taken`, when the Members API dequeues it
    taken: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def dequeued(self) -> _Bridge | _Redirect | None:
        return self.bridge or self.redirect


class QueueNotFound(LookupError):
    """No queue of this carrier has that sid (Twilio answers 404)."""


class NotQueued(LookupError):
    """The call is not (or no longer) waiting in that queue (Twilio answers 400)."""


@dataclass(frozen=True)
class Dequeued:
    """What the Members API says of the member it just dequeued."""

    call_sid: str
    queue_sid: str
    position: int
    wait_time: int


class _SimulatedQueue:
    """A Twilio named queue; members are shared by every call of one carrier."""

    def __init__(self, name: str, max_size: int) -> None:
        self.name = name
        self.sid = "QU" + secrets.token_hex(16)
        self.max_size = max_size
        self.members: list[_Member] = []
        self._joined = asyncio.Event()  # replaced after every join: a pulse for waiting dials

    @property
    def full(self) -> bool:
        return len(self.members) >= self.max_size

    def join(self, call_sid: str, from_number: str = "") -> _Member:
        member = _Member(call_sid, from_number)
        self.members.append(member)
        self._joined.set()
        self._joined = asyncio.Event()
        return member

    def leave(self, member: _Member) -> None:
        if member in self.members:
            self.members.remove(member)

    def take(self) -> _Member | None:
        """Dequeue the member at the front, as <Dial><Queue> does."""
        return self.members.pop(0) if self.members else None

    def find(self, call_sid: str) -> _Member | None:
        return next((m for m in self.members if m.call_sid == call_sid), None)

    async def someone_joins(self, seconds: float) -> bool:
        """Wait up to `seconds` (real time) for a join; False if nobody came."""
        joined = self._joined
        try:
            async with asyncio.timeout(seconds):
                await joined.wait()
        except TimeoutError:
            return False
        return True

    def position(self, member: _Member) -> int:
        # A dequeued member finishing its round of hold music was at the front.
        return self.members.index(member) + 1 if member in self.members else 1

    def size(self, member: _Member) -> int:
        """The queue's size as `member` sees it (counting it while it finishes its round)."""
        return len(self.members) + (member not in self.members)

    def average_wait(self) -> int:
        if not self.members:
            return 0
        return round(sum(member.waited for member in self.members) / len(self.members))


@dataclass
class _Holding:
    """One call's stay in a queue."""

    queue: _SimulatedQueue
    member: _Member
    joined_at: float
    loops: int = 0
    reported: bool = False  # the action URL has been told how the stay ended
    left_at: float | None = None  # when an agent's <Dial><Queue> connected it


class _CallEnded(Exception):
    def __init__(self, reason: EndReason, detail: str | None = None) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail


class VirtualCarrier:
    """Places simulated inbound calls against the server's webhook URLs."""

    def __init__(
        self,
        base_url: str,
        auth_token: str,
        session: aiohttp.ClientSession,
        *,
        account_sid: str = DEFAULT_ACCOUNT_SID,
        voice_path: str = "/twilio/voice",
        status_path: str | None = "/twilio/status",
        public_url: str | None = None,
        signing: Signing | None = None,
        queue_max_size: Mapping[str, int] | int = 100,
        max_webhooks: int = 300,
        bridged_talk_seconds: float = 60.0,
        dial_wait_scale: float = 0.05,
        request_timeout: float = 15.0,
        connect_retries: int = 1,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # The server validates signatures against the URL it is published at,
        # which behind a proxy is not the address the test reaches it on.
        self.public_url = (public_url or base_url).rstrip("/")
        self.auth_token = auth_token
        self.session = session
        self.account_sid = account_sid
        self.voice_path = voice_path
        self.status_path = status_path
        self.signing = signing or Signing.auth_token()
        self.max_webhooks = max_webhooks
        # How long an anonymous agent talks (QueueChoice.BRIDGED), and how long a
        # <Dial> conversation lasts when the dialing caller has no `on_bridged`.
        self.bridged_talk_seconds = bridged_talk_seconds
        # Real seconds per simulated second while a <Dial> waits for an empty queue.
        self.dial_wait_scale = dial_wait_scale
        self.request_timeout = request_timeout
        self.connect_retries = connect_retries
        self.calls: list[CallRecord] = []
        self._queue_max_size = queue_max_size
        self._queues: dict[str, _SimulatedQueue] = {}

    def url_for(self, path_or_url: str) -> str:
        """The public (signed) URL for a path, or an absolute URL unchanged."""
        if urlsplit(path_or_url).scheme:
            return path_or_url
        return urljoin(self.public_url + "/", path_or_url)

    def queue(self, name: str) -> _SimulatedQueue:
        if name not in self._queues:
            limit = self._queue_max_size
            max_size = limit if isinstance(limit, int) else limit.get(name, 100)
            self._queues[name] = _SimulatedQueue(name, max_size)
        return self._queues[name]

    def queue_size(self, name: str) -> int:
        return len(self.queue(name).members)

    def queue_sid(self, name: str) -> str:
        return self.queue(name).sid

    def dequeue(self, queue_sid: str, call_sid: str, url: str, method: str = "POST") -> Dequeued:
        """What Twilio's Queue Members API does with a POST naming one member: the call
        leaves the queue at once; its <Enqueue> action URL is requested right away (Twilio
        runs none of its answer), and the call runs the TwiML at `url` instead.

        Only the first request for a member succeeds: a call that already left raises
        `NotQueued`, an unknown queue `QueueNotFound`.
        """
        queue = next((q for q in self._queues.values() if q.sid == queue_sid), None)
        if queue is None:
            raise QueueNotFound(queue_sid)
        member = queue.find(call_sid)
        if member is None or member.dequeued is not None:
            raise NotQueued(call_sid)
        position = queue.position(member)
        queue.leave(member)
        member.redirect = _Redirect(url, method.upper() if method else "POST")
        member.taken.set()
        return Dequeued(call_sid, queue.sid, position, round(member.waited))

    async def place_call(
        self,
        caller: Caller,
        *,
        from_number: str = "+8613812348000",
        to_number: str = "+8610123450000",
        call_sid: str | None = None,
        voice_path: str | None = None,
        status_path: str | None = None,
        answered_by: str | None = None,
        via: str | None = None,
    ) -> CallRecord:
        """One inbound call; `voice_path`/`status_path` override the carrier's for a number
        of its own (an agents' line, say) that shares this carrier's queues.

        `answered_by` makes it a call the service placed through the REST API with
        answering-machine detection: Twilio then says who answered (`human`, `machine_start`).

        `via` is the address of the server process this call's webhooks reach (as a load
        balancer would keep a call on one process), instead of the carrier's `base_url`.
        """
        record = CallRecord(
            call_sid=call_sid or "CA" + secrets.token_hex(16),
            from_number=from_number,
            to_number=to_number,
        )
        self.calls.append(record)
        call = _Call(self, caller, record)
        call.voice_path = voice_path or self.voice_path
        call.status_path = status_path or self.status_path
        call.via = via
        if answered_by is not None:
            call.direction = "outbound-api"
            call.extra["AnsweredBy"] = answered_by
        await call.run()
        return record

    async def post(
        self,
        path_or_url: str,
        params: Mapping[str, str],
        *,
        signing: Signing | None = None,
        idempotency_token: str | None = None,
        method: str = "POST",
    ) -> WebhookResponse:
        """Send exactly these params as one webhook; network errors propagate."""
        return await self.send(
            self.url_for(path_or_url),
            method,
            params,
            signing=signing,
            idempotency_token=idempotency_token,
        )

    async def send(
        self,
        url: str,
        method: str,
        params: Mapping[str, str],
        *,
        signing: Signing | None = None,
        idempotency_token: str | None = None,
        via: str | None = None,
    ) -> WebhookResponse:
        method = method.upper()
        scheme, netloc, path, query, _fragment = urlsplit(url)
        # The fragment never reaches the server, so it cannot be part of what is signed.
        url = urlunsplit((scheme, netloc, path, query, ""))
        body: bytes | None = None
        headers = {"User-Agent": "TwilioProxy/1.1", "Accept": "*/*"}
        if method == "GET":
            # Twilio puts GET parameters in the query string and signs the full URL.
            if params:
                url += ("&" if query else "?") + urlencode(params)
            signed: Mapping[str, str] = {}
        else:
            body = urlencode(params).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            signed = params
        headers.update((signing or self.signing).headers(url, signed, self.auth_token))
        headers[IDEMPOTENCY_HEADER] = idempotency_token or str(uuid.uuid4())
        target = _request_url(self._physical(url, via))
        timeout = aiohttp.ClientTimeout(total=self.request_timeout)
        attempt = 0
        while True:
            try:
                async with self.session.request(
                    method,
                    target,
                    data=body,
                    headers=headers,
                    allow_redirects=False,
                    timeout=timeout,
                ) as response:
                    content = await response.read()
                    return WebhookResponse(
                        status=response.status,
                        content_type=response.content_type,
                        body=content.decode(response.charset or "utf-8", errors="replace"),
                        content=content,
                    )
            except aiohttp.ClientConnectorError:
                # Like Twilio, retry only when no connection was made at all: the
                # request was certainly not processed, and the token stays the same.
                attempt += 1
                if attempt > self.connect_retries:
                    raise

    def _physical(self, url: str, via: str | None = None) -> str:
        root = self.public_url
        if url == root or url.startswith((root + "/", root + "?")):
            return (via or self.base_url).rstrip("/") + url[len(root) :]
        return url


class _Call:
    """Executes one call's TwiML, verb by verb, the way Twilio's engine does."""

    def __init__(self, carrier: VirtualCarrier, caller: Caller, record: CallRecord) -> None:
        self.carrier = carrier
        self.caller = caller
        self.record = record
        self.voice_path = carrier.voice_path
        self.status_path: str | None = carrier.status_path
        self.via: str | None = None  # the server process this call's webhooks go to
        self.clock = 0.0
        self.webhooks = 0
        self.answered = False
        self.direction = "inbound"
        self.extra: dict[str, str] = {}  # sent with every request (AnsweredBy on placed calls)

    async def run(self) -> None:
        try:
            document: twiml.Document | None = await self.fetch(
                self.carrier.url_for(self.voice_path), "POST", {}, call_status="ringing"
            )
            while document is not None:
                document = await self.run_document(document)
            self.record.ended_by = "document-end"
        except _CallEnded as ended:
            self.record.ended_by = ended.reason
            if ended.reason == "application-error":
                self.record.application_error = ended.detail
                await self.hear(twiml.Say(APPLICATION_ERROR_MESSAGE, language="en-US"))
            elif ended.detail:
                self.record.warnings.append(ended.detail)
        self.record.duration = self.clock if self.answered else 0.0
        await self.status_callback()

    async def run_document(self, document: twiml.Document) -> twiml.Document | None:
        """Run until the document ends (None) or hands over to another document."""
        for verb in document.verbs:
            following = await self.step(verb, document)
            if following is not None:
                return following
        self.answered = True
        return None

    async def step(self, verb: twiml.Verb, document: twiml.Document) -> twiml.Document | None:
        if isinstance(verb, twiml.Reject):
            if not self.answered:
                # Only a first-verb <Reject> leaves the call unanswered (and unbilled).
                self.record.call_status = "busy" if verb.reason == "busy" else "no-answer"
            raise _CallEnded("rejected")
        self.answered = True
        match verb:
            case twiml.Say() | twiml.Play() | twiml.Pause():
                await self.hear(verb)
                return None
            case twiml.Gather():
                return await self.gather(verb, document, None)
            case twiml.Redirect():
                return await self.fetch(_resolve(document, verb.url), verb.method, {})
            case twiml.Record():
                return await self.record_voice(verb, document)
            case twiml.Enqueue():
                return await self.enqueue(verb, document)
            case twiml.Leave():
                self.record.warnings.append("<Leave> outside a queue: ignored")
                return None
            case twiml.Dial():
                return await self.dial(verb, document)
            case _:  # <Hangup>
                raise _CallEnded("hangup-verb")

    async def hear(self, prompt: twiml.Prompt, queue: str | None = None) -> Heard:
        item = _heard(prompt, queue)
        self.clock += item.seconds
        self.record.heard.append(item)
        await self.caller.hear(item)
        return item

    async def gather(
        self, verb: twiml.Gather, document: twiml.Document, holding: _Holding | None
    ) -> twiml.Document | None:
        queue = holding.queue.name if holding else None
        prompts = [await self.hear(prompt, queue) for prompt in verb.prompts]
        action = _resolve(document, verb.action) if verb.action else document.url
        answer = await self.caller.press(
            GatherInfo(
                url=action,
                prompts=tuple(prompts),
                num_digits=verb.num_digits,
                timeout=verb.timeout,
                finish_on_key=verb.finish_on_key,
                input=verb.input,
                queue=queue,
            )
        )
        if isinstance(answer, HangUp):
            raise _CallEnded("caller-hangup")
        digits, finished_on, complete = _collect_digits(answer, verb)
        self.clock += 0.5 * len(answer or "") + (0.0 if complete else verb.timeout)
        if not digits and not verb.action_on_empty_result:
            return None  # Twilio falls through to the verb after <Gather>
        params = {"Digits": digits, "FinishedOnKey": finished_on}
        if holding is None:
            return await self.fetch(action, verb.method, params)
        params |= self.queue_params(holding)
        return await self.fetch(action, verb.method, params, context="wait")

    async def record_voice(
        self, verb: twiml.Record, document: twiml.Document
    ) -> twiml.Document | None:
        action = _resolve(document, verb.action) if verb.action else document.url
        answer = await self.caller.record(
            RecordInfo(
                url=action,
                max_length=verb.max_length,
                timeout=verb.timeout,
                finish_on_key=verb.finish_on_key,
                play_beep=verb.play_beep,
            )
        )
        if isinstance(answer, HangUp):
            raise _CallEnded("caller-hangup")
        if answer is None or answer.duration <= 0:
            # An empty recording never reaches the action URL; the next verb runs.
            self.clock += verb.timeout
            return None
        duration = min(answer.duration, verb.max_length)
        digits = _recording_end(answer, verb)
        self.clock += duration + (
            verb.timeout if digits is None and duration < verb.max_length else 0.0
        )
        params = self.recording_params(answer, duration)
        if digits is not None:
            params["Digits"] = digits
        if digits == "hangup":
            # Twilio still delivers the recording, but nobody is left to play the answer to.
            await self.ignored(action, verb.method, params)
            raise _CallEnded("caller-hangup")
        return await self.fetch(action, verb.method, params)

    def recording_params(self, answer: Recording, duration: float) -> dict[str, str]:
        sid = "RE" + secrets.token_hex(16)
        url = answer.url
        if url:
            last = urlsplit(url).path.rsplit("/", 1)[-1]
            sid = last if last.startswith("RE") else sid
        else:
            url = (
                f"https://api.twilio.com/{API_VERSION}/Accounts/"
                f"{self.carrier.account_sid}/Recordings/{sid}"
            )
        return {
            "RecordingUrl": url,
            "RecordingSid": sid,
            "RecordingDuration": str(max(1, round(duration))),
        }

    async def enqueue(self, verb: twiml.Enqueue, document: twiml.Document) -> twiml.Document | None:
        queue = self.carrier.queue(verb.queue)
        action = _resolve(document, verb.action) if verb.action else None
        if queue.full:
            self.record.queue_results.append(QueueResult(queue.name, "queue-full", queue.sid, 0, 0))
            return await self.dequeued(queue, action, verb.method, "queue-full", 0)
        member = queue.join(self.record.call_sid, self.record.from_number)
        holding = _Holding(queue, member, self.clock)
        try:
            outcome = await self.hold(verb, document, holding)
            if isinstance(outcome, _Redirect):
                # The Members API took the caller out: Twilio requests the action URL at
                # once, runs none of its answer, and runs the TwiML at the new URL.
                await self.leave_queue(
                    holding, action, verb.method, "redirected", ignored=True, live=True
                )
                return await self.fetch(outcome.url, outcome.method, {})
            if isinstance(outcome, _Bridge):
                end = await self.answer(outcome, holding)
                # Twilio reports "bridged" once the conversation is over, even to a
                # caller who hung up; then nobody is left to hear the answer.
                gone = end.hangs_up != "agent"
                following = await self.leave_queue(
                    holding, action, verb.method, "bridged", talk=end.talk_seconds, ignored=gone
                )
                if gone:
                    raise _CallEnded("caller-hangup")
                return following
        except _CallEnded as ended:
            if ended.reason in ("caller-hangup", "hangup-verb"):
                await self.leave_queue(holding, action, verb.method, "hangup", ignored=True)
            raise
        finally:
            # Whatever ends the stay (loop guard, error, cancellation) frees the place,
            # and an agent that took this caller is not left waiting for it.
            queue.leave(member)
            if member.bridge is not None:
                _settle(member.bridge.connected, None)
        if outcome == "hangup":
            await self.leave_queue(holding, action, verb.method, "hangup", ignored=True)
            raise _CallEnded("caller-hangup")
        # An anonymous agent (QueueChoice.BRIDGED) talks for the carrier's default time.
        talk = self.carrier.bridged_talk_seconds if outcome == "bridged" else 0.0
        return await self.leave_queue(holding, action, verb.method, outcome, talk=talk)

    async def hold(
        self, verb: twiml.Enqueue, document: twiml.Document, holding: _Holding
    ) -> Literal["leave", "bridged", "hangup"] | _Bridge | _Redirect:
        wait_url = _resolve(document, verb.wait_url) if verb.wait_url else None
        # Each round fetches the original waitUrl, as Twilio re-requests it, unless the
        # previous round ended in a <Redirect>: then that URL is the next round.
        next_round: tuple[str, str] | None = (
            (wait_url, verb.wait_url_method) if wait_url is not None else None
        )
        while True:
            holding.loops += 1
            if holding.loops > self.carrier.max_webhooks:
                # Without a waitUrl no webhook is counted, so bound the rounds themselves.
                raise _CallEnded("loop-guard", f"still holding after {holding.loops - 1} rounds")
            if next_round is None:
                await self.hear(twiml.Play(DEFAULT_HOLD_MUSIC), holding.queue.name)
            else:
                hold_document = await self.fetch(
                    next_round[0], next_round[1], self.queue_params(holding), context="wait"
                )
                ended = await self.run_hold_document(hold_document, holding)
                if holding.member.redirect is not None:
                    return holding.member.redirect  # taken out during the round
                if ended is True:
                    return "leave"
                if isinstance(ended, tuple):
                    next_round = ended
                elif wait_url is not None:
                    next_round = (wait_url, verb.wait_url_method)
            self.touch(holding)
            choice = await self.decide(holding)
            if isinstance(choice, _Bridge | _Redirect):
                return choice
            if choice is QueueChoice.BRIDGED:
                return "bridged"
            if choice is QueueChoice.HANGUP:
                return "hangup"

    async def decide(self, holding: _Holding) -> QueueChoice | _Bridge | _Redirect:
        """Ask the caller what it does after a round, unless it is taken out first.

        An agent's <Dial><Queue> (or the Members API) that dequeued the caller during the
        round wins at once; one that comes while the caller is still deciding cuts it short.
        """
        queue, member = holding.queue, holding.member
        if member.dequeued is not None:
            return member.dequeued
        info = QueueInfo(
            queue=queue.name,
            queue_sid=queue.sid,
            position=queue.position(member),
            size=queue.size(member),
            max_size=queue.max_size,
            queue_time=round(member.waited),
            avg_queue_time=queue.average_wait(),
            loop=holding.loops,
        )
        asking = asyncio.create_task(self.caller.in_queue(info))
        taken = asyncio.create_task(member.taken.wait())
        try:
            await asyncio.wait((asking, taken), return_when=asyncio.FIRST_COMPLETED)
        finally:
            asking.cancel()
            taken.cancel()
        if member.dequeued is not None:
            return member.dequeued
        return asking.result()

    async def answer(self, bridge: _Bridge, holding: _Holding) -> BridgeEnd:
        """Taken by another call's <Dial><Queue>: hear its url document, then talk."""
        holding.left_at = self.clock
        queue_time = round(self.clock - holding.joined_at)
        if bridge.url is not None:
            params = {
                "QueueSid": holding.queue.sid,
                "QueueTime": str(queue_time),
                "DequeingCallSid": bridge.agent_sid,
            }
            target: tuple[str, str] | None = (bridge.url, bridge.method)
            while target is not None:
                document = await self.fetch(*target, params, context="dequeue")
                target = None
                for verb in document.verbs:
                    match verb:
                        case twiml.Say() | twiml.Play() | twiml.Pause():
                            await self.hear(verb)
                        case twiml.Redirect():
                            target = (_resolve(document, verb.url), verb.method)
                            break
        self.record.answered_by = bridge.agent_sid
        _settle(bridge.connected, queue_time)
        return await bridge.ended

    async def run_hold_document(
        self, document: twiml.Document, holding: _Holding
    ) -> bool | tuple[str, str]:
        """Run one round of hold TwiML (and a Gather's answer to it).

        True if it said <Leave>; a (url, method) if it ended in a <Redirect>, which is
        where the next round starts (an agent may answer between rounds); False otherwise.
        """
        current: twiml.Document | None = document
        while current is not None:
            following: twiml.Document | None = None
            for verb in current.verbs:
                match verb:
                    case twiml.Say() | twiml.Play() | twiml.Pause():
                        await self.hear(verb, holding.queue.name)
                    case twiml.Gather():
                        following = await self.gather(verb, current, holding)
                    case twiml.Redirect():
                        return (_resolve(current, verb.url), verb.method)
                    case twiml.Leave():
                        return True
                    case _:  # <Hangup>; parsing in wait context allows nothing else
                        raise _CallEnded("hangup-verb")
                if following is not None:
                    break
            current = following
        return False

    def touch(self, holding: _Holding) -> None:
        # Other members' average wait reads this, so keep it current at every report.
        holding.member.waited = self.clock - holding.joined_at

    def queue_params(self, holding: _Holding) -> dict[str, str]:
        self.touch(holding)
        queue, member = holding.queue, holding.member
        return {
            "QueueSid": queue.sid,
            "QueuePosition": str(queue.position(member)),
            "QueueTime": str(round(member.waited)),
            "AvgQueueTime": str(queue.average_wait()),
            "CurrentQueueSize": str(queue.size(member)),
            "MaxQueueSize": str(queue.max_size),
        }

    async def leave_queue(
        self,
        holding: _Holding,
        action: str | None,
        method: str,
        outcome: QueueOutcome,
        *,
        talk: float = 0.0,
        ignored: bool = False,
        live: bool = False,
    ) -> twiml.Document | None:
        """Report how the stay ended to the action URL. `ignored`: nobody runs the answer
        (the caller hung up, or, `live`, the call goes on elsewhere)."""
        queue = holding.queue
        if holding.reported:
            return None
        holding.reported = True
        left_at = self.clock if holding.left_at is None else holding.left_at
        queue_time = round(left_at - holding.joined_at)
        queue.leave(holding.member)
        self.record.queue_results.append(
            QueueResult(queue.name, outcome, queue.sid, queue_time, holding.loops)
        )
        # The action URL is requested only once the agent conversation is over.
        self.clock += talk
        if ignored:
            if action is not None:
                params = {
                    "QueueResult": outcome,
                    "QueueSid": queue.sid,
                    "QueueTime": str(queue_time),
                }
                await self.ignored(action, method, params, live=live)
            return None
        return await self.dequeued(queue, action, method, outcome, queue_time)

    async def dequeued(
        self,
        queue: _SimulatedQueue,
        action: str | None,
        method: str,
        outcome: QueueOutcome,
        queue_time: int,
    ) -> twiml.Document | None:
        if action is None:
            return None  # without an action Twilio continues after <Enqueue>
        params = {"QueueResult": outcome, "QueueSid": queue.sid, "QueueTime": str(queue_time)}
        return await self.fetch(action, method, params)

    async def dial(self, verb: twiml.Dial, document: twiml.Document) -> twiml.Document | None:
        action = _resolve(document, verb.action) if verb.action else None
        if verb.queue is None:
            self.record.dialed.extend(verb.targets)
            # The first target answers: the simulation has no busy or unanswered numbers.
            far_end = BridgeInfo(call_sid="CA" + secrets.token_hex(16), number=verb.targets[0])
            return await self.talk(far_end, action, verb.method, {}, None)
        queue = self.carrier.queue(verb.queue.name)
        params = {"QueueSid": queue.sid}
        member = await self.wait_for_caller(queue, verb.timeout)
        if member is None:
            status = {"DialCallStatus": "no-answer"}
            return await self.dial_ended(action, verb.method, params | status)
        loop = asyncio.get_running_loop()
        url = _resolve(document, verb.queue.url) if verb.queue.url else None
        bridge = _Bridge(
            self.record.call_sid, url, verb.queue.method, loop.create_future(), loop.create_future()
        )
        member.bridge = bridge
        member.taken.set()
        try:
            queue_time = await bridge.connected
            if queue_time is None:
                # It left the queue, hung up or failed while finishing its round.
                status = {"DialCallStatus": "failed"}
                return await self.dial_ended(action, verb.method, params | status)
            far_end = BridgeInfo(
                member.call_sid, member.from_number, queue.name, queue.sid, queue_time
            )
            return await self.talk(far_end, action, verb.method, params, bridge)
        finally:
            # However this call ends, the caller it took is not left on the line forever.
            _settle(bridge.ended, BridgeEnd("agent", 0.0))

    async def wait_for_caller(self, queue: _SimulatedQueue, ring: float) -> _Member | None:
        """The front member, or the first to join within `ring` simulated seconds.

        The wait is real (scaled by `dial_wait_scale`), so that another call of the
        same carrier can join the queue meanwhile.
        """
        scale = self.carrier.dial_wait_scale
        loop = asyncio.get_running_loop()
        started = loop.time()
        deadline = started + ring * scale
        while (member := queue.take()) is None:
            remaining = deadline - loop.time()
            if remaining <= 0 or not await queue.someone_joins(remaining):
                self.clock += ring
                return None
        if scale > 0:
            self.clock += min(ring, (loop.time() - started) / scale)
        return member

    async def talk(
        self,
        far_end: BridgeInfo,
        action: str | None,
        method: str,
        params: Mapping[str, str],
        bridge: _Bridge | None,
    ) -> twiml.Document | None:
        """This call's <Dial> connected it with `far_end`; its caller says how that ends."""
        self.record.bridged_with.append(far_end.call_sid)
        on_bridged = getattr(self.caller, "on_bridged", None)
        end: BridgeEnd = (
            BridgeEnd("agent", self.carrier.bridged_talk_seconds)
            if on_bridged is None
            else await on_bridged(far_end)
        )
        if bridge is not None:
            _settle(bridge.ended, end)
        self.clock += end.talk_seconds
        params = dict(params) | {
            "DialCallStatus": "completed",
            "DialCallSid": far_end.call_sid,
            "DialCallDuration": str(round(end.talk_seconds)),
        }
        if end.hangs_up == "caller":
            return await self.dial_ended(action, method, params)
        # This side hung up: Twilio still reports the <Dial>, but nobody hears the answer.
        if action is not None:
            await self.ignored(action, method, params)
        raise _CallEnded("caller-hangup")

    async def dial_ended(
        self, action: str | None, method: str, params: Mapping[str, str]
    ) -> twiml.Document | None:
        if action is None:
            return None  # without an action Twilio continues after <Dial>
        return await self.fetch(action, method, params)

    def base_params(self, call_status: str) -> dict[str, str]:
        record = self.record
        return {
            "AccountSid": self.carrier.account_sid,
            "CallSid": record.call_sid,
            "From": record.from_number,
            "To": record.to_number,
            "Caller": record.from_number,
            "Called": record.to_number,
            "CallStatus": call_status,
            "Direction": self.direction,
            "ApiVersion": API_VERSION,
            **self.extra,
        }

    async def fetch(
        self,
        url: str,
        method: str,
        extra: Mapping[str, str],
        *,
        context: twiml.Context = "call",
        call_status: str = "in-progress",
    ) -> twiml.Document:
        """Request TwiML; anything Twilio could not execute ends the call as it would."""
        if self.webhooks >= self.carrier.max_webhooks:
            raise _CallEnded("loop-guard", f"stopped after {self.webhooks} webhooks")
        self.webhooks += 1
        params = self.base_params(call_status) | dict(extra)
        response = await self.exchange(url, method, params, "twiml")
        problem = _twiml_problem(response)
        if problem is None and response is not None:
            try:
                document = twiml.parse_document(response.content, url, context=context)
            except twiml.TwimlError as error:
                problem = str(error)
            else:
                self.record.warnings.extend(f"{url}: {text}" for text in document.warnings)
                return document
        raise _CallEnded("application-error", f"{method} {url}: {problem}")

    async def ignored(
        self, url: str, method: str, extra: Mapping[str, str], *, live: bool = False
    ) -> None:
        """A request whose answer is not run: the call is over, or (`live`) goes on elsewhere."""
        status = "in-progress" if live else "completed"
        await self.exchange(url, method, self.base_params(status) | dict(extra), "ignored")

    async def status_callback(self) -> None:
        if self.status_path is None:
            return
        params = self.base_params(self.record.call_status)
        params["CallDuration"] = str(round(self.record.duration))
        url = self.carrier.url_for(self.status_path)
        await self.exchange(url, "POST", params, "status-callback")

    async def exchange(
        self, url: str, method: str, params: dict[str, str], kind: ExchangeKind
    ) -> WebhookResponse | None:
        try:
            response = await self.carrier.send(url, method, params, via=self.via)
        except (aiohttp.ClientError, TimeoutError) as error:
            detail = f"{type(error).__name__}: {error}"
            self.record.exchanges.append(Exchange(method, url, params, 0, detail, "", kind))
            return None
        self.record.exchanges.append(
            Exchange(
                method, url, params, response.status, response.body, response.content_type, kind
            )
        )
        return response


def _settle(future: asyncio.Future[_T], value: _T) -> None:
    """Resolve a future the other call may already have resolved, or stopped waiting on."""
    if not future.done():
        future.set_result(value)


def _request_url(url: str) -> yarl.URL:
    # Send the URL byte for byte as signed; only let yarl quote what is not yet valid.
    plain = url.isascii() and url.isprintable() and " " not in url
    return yarl.URL(url, encoded=plain)


def _resolve(document: twiml.Document, url: str) -> str:
    return urljoin(document.url, url)


def _twiml_problem(response: WebhookResponse | None) -> str | None:
    # HTTP redirects are not followed: a 3xx here is almost always a routing
    # mistake (a trailing slash, a login page), better seen than papered over.
    if response is None:
        return "no HTTP response"
    if response.status != 200:
        return f"HTTP {response.status}"
    if response.content_type not in _TWIML_TYPES and not response.content_type.endswith("+xml"):
        return f"content type {response.content_type!r} is not TwiML"
    return None


def _heard(prompt: twiml.Prompt, queue: str | None) -> Heard:
    if isinstance(prompt, twiml.Pause):
        return Heard("pause", "", seconds=prompt.length, queue=queue)
    # loop="0" (forever) counts once: see twiml.FOREVER.
    times = max(prompt.loop, 1)
    if isinstance(prompt, twiml.Say):
        seconds = twiml.speech_seconds(prompt.text) * times
        return Heard(
            "say", prompt.text, prompt.language, prompt.voice, seconds, prompt.loop, queue=queue
        )
    seconds = (0.5 * len(prompt.digits) if prompt.digits else 10.0) * times
    return Heard(
        "play", prompt.url, seconds=seconds, loop=prompt.loop, digits=prompt.digits, queue=queue
    )


def _collect_digits(answer: str | None, verb: twiml.Gather) -> tuple[str, str, bool]:
    """Apply numDigits and finishOnKey to what was pressed: (Digits, FinishedOnKey, complete).

    `complete` is False when Twilio had to wait out the timeout to know the
    caller was done.
    """
    if answer is None or "dtmf" not in verb.input:
        return "", "", False
    digits = ""
    for key in answer:
        if key not in twiml.DTMF_KEYS:
            continue
        if verb.finish_on_key and key == verb.finish_on_key:
            return digits, key, True
        digits += key
        if verb.num_digits is not None and len(digits) >= verb.num_digits:
            return digits, "", True
    return digits, "", False


def _recording_end(answer: Recording, verb: twiml.Record) -> str | None:
    """The Digits parameter: the finish key pressed, "hangup", or None (timeout/maxLength)."""
    if answer.end == "hangup":
        return "hangup"
    if answer.duration >= verb.max_length:
        return None
    if answer.end is None:
        key = "#" if "#" in verb.finish_on_key else verb.finish_on_key[:1]
        return key or None
    if answer.end and answer.end in verb.finish_on_key:
        return answer.end
    return None
