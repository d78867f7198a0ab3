"""TwiML voice documents, read the way Twilio's voice engine reads them.

The whole document is checked before any verb runs: Twilio rejects a malformed
or invalid document up front (the caller hears the application-error message
and nothing of the document), so a server bug must not half-play here either.
Bad attribute *values* only produce warnings, because Twilio logs those as
warnings and carries on with the default.
"""

from __future__ import annotations

import unicodedata
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Literal

Context = Literal["call", "wait", "dequeue"]
"""Where a document runs: a normal call leg, the waitUrl of an <Enqueue>, or the url of a
<Dial><Queue> (played to the dequeued caller just before it is connected)."""

DTMF_KEYS = frozenset("0123456789*#")

# Twilio says loop="0" means "repeat until the call moves on". The simulation
# cannot know when that is, so it plays such an item once and lets the queue
# loop (or the next verb) take over; see Say.loop / Play.loop.
FOREVER = 0


class TwimlError(ValueError):
    """The document is not TwiML Twilio would execute (an application error)."""


@dataclass(frozen=True)
class Say:
    text: str
    language: str | None = None
    voice: str | None = None
    loop: int = 1


@dataclass(frozen=True)
class Play:
    url: str
    digits: str | None = None
    loop: int = 1


@dataclass(frozen=True)
class Pause:
    length: float = 1.0


Prompt = Say | Play | Pause


@dataclass(frozen=True)
class Gather:
    action: str | None = None
    method: str = "POST"
    num_digits: int | None = None
    timeout: float = 5.0
    finish_on_key: str = "#"
    input: tuple[str, ...] = ("dtmf",)
    action_on_empty_result: bool = False
    prompts: tuple[Prompt, ...] = ()


@dataclass(frozen=True)
class Redirect:
    url: str
    method: str = "POST"


@dataclass(frozen=True)
class Record:
    action: str | None = None
    method: str = "POST"
    max_length: float = 3600.0
    timeout: float = 5.0
    finish_on_key: str = "1234567890*#"
    play_beep: bool = True


@dataclass(frozen=True)
class Enqueue:
    queue: str
    action: str | None = None
    method: str = "POST"
    wait_url: str | None = None
    wait_url_method: str = "POST"


@dataclass(frozen=True)
class Leave:
    pass


@dataclass(frozen=True)
class Hangup:
    pass


@dataclass(frozen=True)
class Reject:
    reason: str = "rejected"


@dataclass(frozen=True)
class DialQueue:
    """The <Queue> noun of a <Dial>: connect with the caller at the front of `name`."""

    name: str
    url: str | None = None  # TwiML run on the dequeued caller's end before the two talk
    method: str = "POST"


@dataclass(frozen=True)
class Dial:
    action: str | None = None
    method: str = "POST"
    timeout: float = 30.0  # seconds to ring, or to wait for someone to join an empty queue
    queue: DialQueue | None = None
    # <Number> children (or a number as the text of <Dial>) and <Client>s as "client:name".
    targets: tuple[str, ...] = ()


Verb = Say | Play | Pause | Gather | Redirect | Record | Enqueue | Leave | Hangup | Reject | Dial


@dataclass(frozen=True)
class Document:
    """A parsed TwiML document; `url` is where it came from (relative URLs resolve against it)."""

    url: str
    verbs: tuple[Verb, ...]
    warnings: tuple[str, ...] = ()


# Twilio's list for an <Enqueue> waitUrl document; anything else there is an error.
_WAIT_VERBS = frozenset({"Play", "Say", "Pause", "Gather", "Redirect", "Leave", "Hangup"})
_CALL_VERBS = _WAIT_VERBS | {"Record", "Enqueue", "Reject", "Dial"}
# Twilio's list for the url document of a <Dial><Queue>.
_DEQUEUE_VERBS = frozenset({"Play", "Say", "Pause", "Redirect"})
_ALLOWED: dict[Context, tuple[frozenset[str], str]] = {
    "call": (_CALL_VERBS, "<Response>"),
    "wait": (_WAIT_VERBS, "a waitUrl document"),
    "dequeue": (_DEQUEUE_VERBS, "a <Queue url> document"),
}
_GATHER_CHILDREN = frozenset({"Say", "Play", "Pause"})
# Real TwiML verbs the simulation cannot play; named separately so the error
# says "not simulated" instead of suggesting the server wrote nonsense.
_UNSIMULATED = frozenset(
    {"Connect", "Pay", "Prompt", "Refer", "Start", "Stop", "Echo", "Sms", "Message", "Stream"}
)
_UNSIMULATED_NOUNS = frozenset({"Conference", "Sip", "Sim", "Application", "WhatsApp"})


def parse_document(content: bytes | str, url: str, *, context: Context = "call") -> Document:
    """Parse and validate a TwiML response body; raise TwimlError like Twilio would fail."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as error:
        raise TwimlError(f"document parse failure: {error}") from None
    if root.tag != "Response":
        raise TwimlError(f"root element is <{root.tag}>, not <Response>")
    reader = _Reader(context)
    verbs = tuple(reader.verb(element) for element in root)
    return Document(url=url, verbs=verbs, warnings=tuple(reader.warnings))


def speech_seconds(text: str) -> float:
    """Rough text-to-speech time: CJK characters are read one syllable each, so slower."""
    total = 0.0
    for char in text:
        wide = unicodedata.east_asian_width(char) in ("W", "F")
        total += 0.15 if wide else 0.06
    return total


class _Reader:
    """Turns elements into verbs, collecting the warnings Twilio would log."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.warnings: list[str] = []

    def verb(self, element: ET.Element) -> Verb:
        name = element.tag
        allowed, where = _ALLOWED[self.context]
        if name not in allowed:
            if name in _UNSIMULATED:
                raise TwimlError(f"<{name}> is not simulated by the virtual carrier")
            raise TwimlError(f"<{name}> is not allowed in {where}")
        if name in _GATHER_CHILDREN:
            return self.prompt(element)
        if name == "Gather":
            return self.gather(element)
        if name == "Redirect":
            target = _text(element)
            if not target:
                raise TwimlError("<Redirect> without a URL")
            return Redirect(url=target, method=self.method(element, "method"))
        if name == "Record":
            return self.record(element)
        if name == "Enqueue":
            return self.enqueue(element)
        if name == "Reject":
            return Reject(reason=element.get("reason", "rejected"))
        if name == "Dial":
            return self.dial(element)
        self.no_children(element)
        return Leave() if name == "Leave" else Hangup()

    def prompt(self, element: ET.Element) -> Prompt:
        name = element.tag
        if name == "Say":
            # itertext keeps the words inside SSML tags such as <prosody>.
            text = " ".join("".join(element.itertext()).split())
            return Say(
                text=text,
                language=element.get("language"),
                voice=element.get("voice"),
                loop=self.integer(element, "loop", 1, minimum=0),
            )
        if name == "Play":
            self.no_children(element)
            digits = element.get("digits")
            url = _text(element)
            if not url and not digits:
                raise TwimlError("<Play> without a URL or digits")
            return Play(url=url, digits=digits, loop=self.integer(element, "loop", 1, minimum=0))
        self.no_children(element)
        return Pause(length=float(self.integer(element, "length", 1, minimum=0)))

    def gather(self, element: ET.Element) -> Gather:
        prompts: list[Prompt] = []
        for child in element:
            if child.tag not in _GATHER_CHILDREN:
                raise TwimlError(f"<{child.tag}> cannot be nested in <Gather>")
            prompts.append(self.prompt(child))
        modes = tuple(element.get("input", "dtmf").split())
        if not modes or any(mode not in ("dtmf", "speech") for mode in modes):
            self.warnings.append(f"<Gather input={element.get('input')!r}>: using dtmf")
            modes = ("dtmf",)
        finish = element.get("finishOnKey", "#")
        if len(finish) > 1 or (finish and finish not in DTMF_KEYS):
            self.warnings.append(f"<Gather finishOnKey={finish!r}>: using #")
            finish = "#"
        num_digits = self.integer(element, "numDigits", 0, minimum=1)
        return Gather(
            action=element.get("action"),
            method=self.method(element, "method"),
            num_digits=num_digits or None,
            timeout=float(self.integer(element, "timeout", 5, minimum=1)),
            finish_on_key=finish,
            input=modes,
            action_on_empty_result=self.boolean(element, "actionOnEmptyResult", False),
            prompts=tuple(prompts),
        )

    def record(self, element: ET.Element) -> Record:
        self.no_children(element)
        finish = element.get("finishOnKey", "1234567890*#")
        if any(key not in DTMF_KEYS for key in finish):
            self.warnings.append(f"<Record finishOnKey={finish!r}>: using the default")
            finish = "1234567890*#"
        max_length = self.integer(element, "maxLength", 3600, minimum=0)
        return Record(
            action=element.get("action"),
            method=self.method(element, "method"),
            # Twilio reads maxLength="0" as its one-hour ceiling.
            max_length=float(max_length or 3600),
            timeout=float(self.integer(element, "timeout", 5, minimum=0)),
            finish_on_key=finish,
            play_beep=self.boolean(element, "playBeep", True),
        )

    def enqueue(self, element: ET.Element) -> Enqueue:
        self.no_children(element)
        name = _text(element)
        if element.get("workflowSid"):
            raise TwimlError("<Enqueue workflowSid> (TaskRouter) is not simulated")
        if not name:
            raise TwimlError("<Enqueue> without a queue name")
        if len(name) > 64:
            raise TwimlError("<Enqueue> queue name longer than 64 characters")
        return Enqueue(
            queue=name,
            action=element.get("action"),
            method=self.method(element, "method"),
            wait_url=element.get("waitUrl"),
            wait_url_method=self.method(element, "waitUrlMethod"),
        )

    def dial(self, element: ET.Element) -> Dial:
        queue: DialQueue | None = None
        targets: list[str] = []
        for child in element:
            if child.tag in _UNSIMULATED_NOUNS:
                raise TwimlError(f"<Dial><{child.tag}> is not simulated by the virtual carrier")
            if child.tag not in ("Queue", "Number", "Client"):
                raise TwimlError(f"<{child.tag}> cannot be nested in <Dial>")
            if child.tag == "Queue":
                queue = self.dial_queue(child)
                continue
            self.no_children(child)  # <Client><Identity> is not simulated either
            target = _text(child)
            if not target:
                raise TwimlError(f"<{child.tag}> without a {child.tag.lower()} to dial")
            targets.append(f"client:{target}" if child.tag == "Client" else target)
        if not len(element) and _text(element):
            targets.append(_text(element))
        if queue is not None and (targets or len(element) > 1):
            raise TwimlError("<Queue> must be the only noun in its <Dial>")
        if queue is None and not targets:
            raise TwimlError("<Dial> with nothing to dial")
        return Dial(
            action=element.get("action"),
            method=self.method(element, "method"),
            timeout=float(self.integer(element, "timeout", 30, minimum=1)),
            queue=queue,
            targets=tuple(targets),
        )

    def dial_queue(self, element: ET.Element) -> DialQueue:
        self.no_children(element)
        name = _text(element)
        if element.get("reservationSid") or element.get("postWorkActivitySid"):
            raise TwimlError("<Queue reservationSid> (TaskRouter) is not simulated")
        if not name:
            raise TwimlError("<Queue> without a queue name")
        return DialQueue(name=name, url=element.get("url"), method=self.method(element, "method"))

    def no_children(self, element: ET.Element) -> None:
        if len(element):
            raise TwimlError(f"<{element[0].tag}> cannot be nested in <{element.tag}>")

    def method(self, element: ET.Element, attribute: str) -> str:
        value = element.get(attribute, "POST").upper()
        if value not in ("GET", "POST"):
            self.warnings.append(f"<{element.tag} {attribute}={value!r}>: using POST")
            return "POST"
        return value

    def integer(self, element: ET.Element, attribute: str, default: int, *, minimum: int) -> int:
        raw = element.get(attribute)
        if raw is None:
            return default
        try:
            value = int(raw.strip())
        except ValueError:
            value = minimum - 1
        if value < minimum:
            self.warnings.append(f"<{element.tag} {attribute}={raw!r}>: using {default}")
            return default
        return value

    def boolean(self, element: ET.Element, attribute: str, default: bool) -> bool:
        raw = element.get(attribute)
        if raw is None:
            return default
        if raw.strip().lower() in ("true", "false"):
            return raw.strip().lower() == "true"
        self.warnings.append(f"<{element.tag} {attribute}={raw!r}>: using {default}")
        return default


def _text(element: ET.Element) -> str:
    return (element.text or "").strip()
