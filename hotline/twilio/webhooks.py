"""Twilio's webhook wire format, turned into one typed value, and its signature checked.

This is the only module that knows Twilio's parameter names. Every field is optional and
untrusted: a missing or garbled one becomes None (a number: `NoNumber.UNKNOWN`), never an
exception.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass

from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)

from casework.phone import PhoneNumber
from hotline.twilio.numbers import NoNumber, party
from ivr.events import Recording
from routing.queue_router import QueueExit

_CALL_SID = re.compile(r"^CA[0-9a-fA-F]{32}$")
_RECORDING_SID = re.compile(r"^RE[0-9a-fA-F]{32}$")
_DIGITS = re.compile(r"^[0-9*#]{0,32}$")
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
    queue_result: QueueExit | None
    queue_position: int | None
    avg_queue_time_s: int | None
    queue_time_s: int | None
    call_duration_s: int | None


def parse_webhook(form: Mapping[str, str]) -> Webhook:
    return Webhook(
        call_sid=_match(_CALL_SID, form.get("CallSid")),
        caller=party(form.get("From")),
        called=party(form.get("To")),
        call_status=_word(form.get("CallStatus")),
        digits=_match(_DIGITS, form.get("Digits")),
        recording=_recording(form),
        queue_result=QueueExit.parse(raw) if (raw := _word(form.get("QueueResult"))) else None,
        queue_position=_int(form.get("QueuePosition")),
        avg_queue_time_s=_int(form.get("AvgQueueTime")),
        queue_time_s=_int(form.get("QueueTime")),
        call_duration_s=_int(form.get("CallDuration")),
    )


def _match(pattern: re.Pattern[str], raw: str | None) -> str | None:
    if raw is None:
        return None
    raw = raw.strip()
    return raw if pattern.match(raw) else None


def _word(raw: str | None) -> str | None:
    if raw is None:
        return None
    raw = raw.strip().lower()
    return raw if re.fullmatch(r"[a-z-]{1,32}", raw) else None


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


class SignatureCheck:
    """Validates X-Twilio-Signature with the twilio library, for either signing scheme."""

    def __init__(self, auth_token: str, shared_key: str = "") -> None:
        self._account = RequestValidator(auth_token)
        # A Webhook Rule signs with its shared key; without that key nothing validates.
        self._rule = RequestValidator(shared_key) if shared_key else None

    def valid(self, url: str, form: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        try:
            return self._valid(url, form, headers)
        except UnicodeError:
            # A body declared in an odd charset can decode to lone surrogates, which no
            # signature covers (Twilio signs UTF-8): not Twilio's, so refused, not a 500.
            return False
        except ValueError:
            return False  # an algorithm this version of the library does not know

    def _valid(self, url: str, form: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            return False
        settings = headers.get(SIGNATURE_SETTINGS_HEADER)
        validator, algorithm = self._account, None
        if settings:
            if self._rule is None:
                return False
            validator, algorithm = self._rule, get_signature_algorithm(settings)
        # The URL as it reached us is what Twilio signed in nearly every request: one HMAC.
        # `validate` computes two (the URL with and without its port) and is asked only
        # when this one does not match.
        expected = validator.compute_signature(url, form, algorithm)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
        return bool(validator.validate(url, form, signature, algorithm))
