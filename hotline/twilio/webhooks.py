"""Twilio's webhook wire format, turned into one typed value.

Every field is optional and untrusted: a missing or garbled one becomes None (a number:
`NoNumber.UNKNOWN`), never an exception. `verified` is the one door of a webhook: its form
read, its signature checked, its fields parsed; the handlers see only the `Webhook`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from aiohttp import web
from multidict import MultiDict

from casework.phone import PhoneNumber
from hotline.twilio.numbers import NoNumber, party
from hotline.twilio.signature import SignatureCheck
from ivr.events import Recording
from routing.queue_router import QueueExit

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_QUEUE_SID = re.compile(r"^QU[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
_DIGITS = re.compile(r"^[0-9*#]{0,32}$")
_TOKEN = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
_IDEMPOTENCY_HEADER = "I-Twilio-Idempotency-Token"
TERMINAL_CALL_STATUSES = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


@dataclass(frozen=True)
class Webhook:
    call_sid: str | None
    # A number, or what stands in for none: a withheld caller is never taken for a number.
    caller: PhoneNumber | NoNumber
    called: PhoneNumber | NoNumber
    call_status: str | None
    digits: str | None  # None: the field was absent or not keys at all
    recording: Recording | None
    queue_exit: QueueExit | None
    queue_sid: str | None  # the carrier's id of the queue the call waits in (or left)
    queue_position: int | None
    avg_queue_time_s: int | None
    queue_time_s: int | None
    call_duration_s: int | None
    dial_status: str | None  # how an agent's <Dial> to a caller ended
    by_machine: bool  # a call the hotline placed was taken by a machine or a fax, not a person
    # Twilio sends a retried webhook with the same token. Not covered by the signature, so
    # only a plain short token is taken: anything else must never cost a ticket write.
    retry_token: str | None


def parse_webhook(form: Mapping[str, str], headers: Mapping[str, str] | None = None) -> Webhook:
    return Webhook(
        call_sid=_match(_CALL_SID, form.get("CallSid")),
        caller=party(form.get("From")),
        called=party(form.get("To")),
        call_status=_word(form.get("CallStatus")),
        digits=_match(_DIGITS, form.get("Digits")),
        recording=_recording(form),
        queue_exit=QueueExit.parse(raw) if (raw := _word(form.get("QueueResult"))) else None,
        queue_sid=_match(_QUEUE_SID, form.get("QueueSid")),
        queue_position=_int(form.get("QueuePosition")),
        avg_queue_time_s=_int(form.get("AvgQueueTime")),
        queue_time_s=_int(form.get("QueueTime")),
        call_duration_s=_int(form.get("CallDuration")),
        dial_status=_word(form.get("DialCallStatus")),
        by_machine=_by_machine(_word(form.get("AnsweredBy"), "_") or ""),
        retry_token=_match(_TOKEN, (headers or {}).get(_IDEMPOTENCY_HEADER)),
    )


def signed_url(request: web.Request, public_url: str) -> str:
    """The URL Twilio signed: the one it called, which a proxy may have rewritten."""
    return public_url + request.raw_path if public_url else str(request.url)


def public_base(request: web.Request, public_url: str) -> str:
    """Where Twilio reaches this service (scheme and host), for an absolute URL."""
    return public_url.rstrip("/") if public_url else str(request.url.origin())


async def verified(request: web.Request, check: SignatureCheck, public_url: str) -> Webhook:
    """The request's webhook, when Twilio signed it; 400 for a body that is no form, 403
    for a signature that does not match the URL Twilio called (`public_url` + the path, as
    Twilio saw it through any proxy)."""
    try:
        posted = await request.post()
    except web.HTTPException:
        raise
    except Exception:
        raise web.HTTPBadRequest(text="unreadable form body") from None
    form: MultiDict[str] = MultiDict((k, v) for k, v in posted.items() if isinstance(v, str))
    if not check.valid(signed_url(request, public_url), form, request.headers):
        raise web.HTTPForbidden(text="invalid Twilio signature")
    return parse_webhook(form, request.headers)


def _match(pattern: re.Pattern[str], raw: str | None) -> str | None:
    if raw is None:
        return None
    raw = raw.strip()
    return raw if pattern.match(raw) else None


def _word(raw: str | None, also: str = "") -> str | None:
    if raw is None:
        return None
    raw = raw.strip().lower()
    return raw if re.fullmatch(rf"[a-z{also}-]{{1,32}}", raw) else None


def _by_machine(answered_by: str) -> bool:
    """AnsweredBy: human, unknown, machine_start, machine_end_beep (and the others), fax."""
    return answered_by.startswith("machine") or answered_by == "fax"


def _int(raw: str | None) -> int | None:
    if raw is None:
        return None
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit() or len(raw) > 7:
        return None
    return int(raw)


def _recording(form: Mapping[str, str]) -> Recording | None:
    url = (form.get("RecordingUrl") or "").strip()
    sid = _match(_RECORDING_SID, form.get("RecordingSid"))
    if not url.startswith(("https://", "http://")) or len(url) > 500 or sid is None:
        return None
    return Recording(url=url, sid=sid, duration_s=_int(form.get("RecordingDuration")) or 0)
