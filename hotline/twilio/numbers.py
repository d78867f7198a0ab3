"""What Twilio writes where a number goes: a number, a caller it has no number for, a Client.

What a phone number is (parsing, E.164, masking, whether it can be called back) is
`casework.phone`; this module knows only what Twilio puts in its place.
"""

from __future__ import annotations

import functools
import re
from enum import StrEnum

from casework.phone import PhoneNumber, parse

# A withheld caller, as Twilio writes it in From: the word spelt on a keypad (ANONYMOUS,
# RESTRICTED, BLOCKED, UNAVAILABLE, UNKNOWN; +8656696687 was seen as well), or, since
# Twilio stopped translating them (its changelog of 16 November 2022), the word itself.
_WITHHELD_DIGITS = frozenset(
    {"266696687", "7378742833", "2562533", "86282452253", "8656696", "8656696687"}
)
_WITHHELD_WORDS = frozenset(
    {"anonymous", "restricted", "blocked", "unavailable", "unknown", "private"}
)
# A Twilio Client (a softphone in a browser or an app), which an agent may answer on.
_CLIENT = re.compile(r"client:[A-Za-z0-9_.-]{1,64}")


class NoNumber(StrEnum):
    """A party Twilio gave no number for, recorded on the ticket as this word."""

    # The caller withheld it: many callers, not one, and none of them can be called back.
    WITHHELD = "withheld"
    # Missing, or no number at all (a Client, a SIP address, garbage).
    UNKNOWN = "unknown"


# Every webhook of a call carries its two numbers again, and the line's own number is in
# every one: parsing with phonenumbers cost more than the rest of a webhook's form.
@functools.lru_cache(maxsize=8192)
def party(raw: str | None) -> PhoneNumber | NoNumber:
    """Who is calling (From) or called (To). Twilio's placeholders for a withheld number
    are checked first: several of them are of a plausible length, one is even valid."""
    if raw is None:
        return NoNumber.UNKNOWN
    text = raw.strip()
    if text.removeprefix("+") in _WITHHELD_DIGITS or text.lower() in _WITHHELD_WORDS:
        return NoNumber.WITHHELD
    return parse(text) or NoNumber.UNKNOWN


def agent_phone(raw: str) -> str:
    """What an agent answers on: a number that can be called, written in E.164, or
    client:<name>. E.164 only, not a national form: one number, one spelling, in the config
    and through the API alike. Raises ValueError otherwise (both report it with the field).
    """
    if _CLIENT.fullmatch(raw):
        return raw
    number = parse(raw)
    if number is None or number.e164 != raw or not number.can_be_called_back:
        raise ValueError("must be a phone number in E.164 (+8613800000001) or client:<name>")
    return raw
