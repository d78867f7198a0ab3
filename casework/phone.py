"""A phone number: the one definition the hotline reads, stores, masks and calls back.

Built on phonenumbers (libphonenumber's numbering plans), which does no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers
from phonenumbers import PhoneNumberFormat, ValidationResult

# What a written number may hold. phonenumbers also picks a number out of any text and reads
# letters as keypad digits ("1-800-FLOWERS"); a caller id is neither.
_WRITTEN = re.compile(r"\+?[0-9 ().-]{1,32}")


@dataclass(frozen=True)
class PhoneNumber:
    """A number in E.164 (`+8613812348000`); made by `parse`."""

    e164: str

    def __str__(self) -> str:
        return self.e164

    @property
    def masked(self) -> str:
        return mask(self.e164)

    @property
    def can_be_called_back(self) -> bool:
        """A number the plan of its country assigns, not only one of the right length: the
        placeholders a carrier puts in for a withheld caller are often of the right length."""
        return bool(phonenumbers.is_valid_number(phonenumbers.parse(self.e164)))


def parse(raw: str, region: str = "CN") -> PhoneNumber | None:
    """E.164, or a national form of `region` (`13812348000`, `010 6234 5678`, `0086 138…`);
    None for anything that cannot be a number there."""
    text = raw.strip()
    if not _WRITTEN.fullmatch(text):
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    # Possible everywhere, not only locally: `6234 5678` without its area code would get
    # a wrong E.164.
    if phonenumbers.is_possible_number_with_reason(number) != ValidationResult.IS_POSSIBLE:
        return None
    return PhoneNumber(phonenumbers.format_number(number, PhoneNumberFormat.E164))


def mask(digits: str) -> str:
    """`+8613812348000` → `+86138****8000`: enough to tell calls apart, not to dial.

    Any run of digits, with or without its +: the logs mask what only looks like a number
    the same way.
    """
    body = digits.removeprefix("+")
    plus = "+" if digits.startswith("+") else ""
    if len(body) <= 8:
        return plus + body[:2] + "****" + body[-2:]
    return plus + body[:5] + "****" + body[-4:]
