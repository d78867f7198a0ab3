"""Where a call is, carried in the signed URLs of its next webhook.

No call state lives in a server process: every action URL carries the state that the next
request needs, and Twilio's signature covers the URL, so any process can serve any webhook
of a call and nobody can forge a state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MAX_PATH = 16
# Only characters that URL encoding leaves alone, so the signed URL is the URL sent.
_SAFE = frozenset("abcdefghijklmnopqrstuvwxyz0123456789-_.")
SEPARATOR = "~"


@dataclass(frozen=True)
class CallState:
    lang: str
    node: str
    tries: int = 0
    path: tuple[str, ...] = ()  # "menu.key" for every key that moved the call on
    desk: str | None = None  # the specialty being connected
    queue: str | None = None  # the queue joined
    full: tuple[str, ...] = ()  # queues the carrier reported full during this call
    loop: int = 0  # wait-music loops in the queue
    offer: tuple[str, ...] = ()  # desks the caller's words pointed to, to confirm or choose
    appeal: str | None = None  # the appeal type understood from the caller's words
    # The digest of the config the call started on: a reload mid-call does not move it.
    config: str | None = None

    def to_params(self) -> dict[str, str]:
        params = {"lang": self.lang, "node": self.node}
        if self.tries:
            params["tries"] = str(self.tries)
        if self.path:
            params["path"] = SEPARATOR.join(self.path)
        if self.desk:
            params["desk"] = self.desk
        if self.queue:
            params["queue"] = self.queue
        if self.full:
            params["full"] = SEPARATOR.join(self.full)
        if self.loop:
            params["loop"] = str(self.loop)
        if self.offer:
            params["offer"] = SEPARATOR.join(self.offer)
        if self.appeal:
            params["appeal"] = self.appeal
        if self.config:
            params["cfg"] = self.config
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, lang: str, node: str) -> CallState:
        """Read a state back; anything missing or malformed falls back to the defaults given.
        Total: no query, however mangled, makes it raise (the rescue reads it too)."""
        return cls(
            lang=_word(params.get("lang")) or lang,
            node=_word(params.get("node")) or node,
            tries=_count(params.get("tries")),
            path=_words(params.get("path"))[-MAX_PATH:],
            desk=_word(params.get("desk")),
            queue=_word(params.get("queue")),
            full=_words(params.get("full")),
            loop=_count(params.get("loop")),
            offer=_words(params.get("offer")),
            appeal=_word(params.get("appeal")),
            config=_word(params.get("cfg")),
        )


@dataclass(frozen=True)
class AgentCallState:
    """Where an agent's call is, carried in its signed URLs like a caller's."""

    lang: str
    agent: str | None = None
    tries: int = 0
    caller: str | None = None  # the caller's call id while connected / wrapping up
    waits: int = 0  # idle rounds with nobody waiting (on the caller's leg: hold rounds)
    desk: str | None = None  # the caller's desk while connecting: where the caller goes back

    def to_params(self) -> dict[str, str]:
        params = {"lang": self.lang}
        if self.agent:
            params["agent"] = self.agent
        if self.caller:
            params["caller"] = self.caller
        if self.desk:
            params["desk"] = self.desk
        if self.tries:
            params["tries"] = str(self.tries)
        if self.waits:
            params["waits"] = str(self.waits)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, lang: str) -> AgentCallState:
        return cls(
            lang=_word(params.get("lang")) or lang,
            agent=_word(params.get("agent")),
            tries=_count(params.get("tries")),
            caller=_word(params.get("caller")),
            waits=_count(params.get("waits")),
            desk=_word(params.get("desk")),
        )


def _word(raw: str | None) -> str | None:
    # ASCII first: 'K' (the Kelvin sign) lowers to 'k', a safe letter it is not.
    if not raw or len(raw) > 64 or not raw.isascii() or not set(raw.lower()) <= _SAFE:
        return None
    return raw


def _words(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    return tuple(w for w in (_word(part) for part in raw.split(SEPARATOR)[:MAX_PATH]) if w)


def _count(raw: str | None) -> int:
    return int(raw) if raw is not None and _digits(raw, 4) else 0


def _digits(raw: str, max_len: int) -> bool:
    """1 to `max_len` ASCII digits. Not `str.isdigit()` alone: it takes '²' and '①' too,
    which int() refuses, so a state read back could raise, even in the rescue's own read."""
    return 0 < len(raw) <= max_len and raw.isascii() and raw.isdigit()


@dataclass(frozen=True)
class OutboundState:
    """Where a call the hotline placed is: its job, and how often the intro went unanswered."""

    job: int
    lang: str
    tries: int = 0

    def to_params(self) -> dict[str, str]:
        params = {"job": str(self.job), "lang": self.lang}
        if self.tries:
            params["tries"] = str(self.tries)
        return params

    @classmethod
    def from_params(cls, params: Mapping[str, str], *, lang: str) -> OutboundState | None:
        """None without a valid job id: such a request was not made by this service."""
        job = params.get("job")
        if job is None or not _digits(job, 12):
            return None
        return cls(
            job=int(job), lang=_word(params.get("lang")) or lang, tries=_count(params.get("tries"))
        )
