"""A phone number: parsed once, written in E.164, masked in one format, and called back
only when it is a number some network assigns."""

from __future__ import annotations

import pytest

from casework.phone import PhoneNumber, mask, parse


@pytest.mark.parametrize(
    ("raw", "e164"),
    [
        ("+8613812348000", "+8613812348000"),  # E.164, as Twilio sends From
        (" +8613812348000 ", "+8613812348000"),
        ("+86 138-1234-8000", "+8613812348000"),
        ("13812348000", "+8613812348000"),  # a mainland mobile, without +86
        ("010 6234 5678", "+861062345678"),  # a Beijing landline with its trunk 0
        ("(010) 6234-5678", "+861062345678"),
        ("0086 138 1234 8000", "+8613812348000"),  # dialled from China with 00
        ("+14155552671", "+14155552671"),  # a caller from abroad keeps their country
    ],
)
def test_numbers_are_read_in_e164_and_national_chinese_forms(raw: str, e164: str) -> None:
    assert parse(raw) == PhoneNumber(e164)
    assert str(parse(raw)) == e164


def test_a_national_form_is_read_in_the_region_asked_for() -> None:
    assert parse("(415) 555-2671", region="US") == PhoneNumber("+14155552671")


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "+",
        "anonymous",
        "client:alice",
        "client:alice1234567",  # not the digits picked out of a name
        "1-800-FLOWERS",  # not letters read off a keypad
        "sip:+8613812348000@pbx.example",
        "+8613812348000;ext=12",
        "+266696687",  # too short for Lesotho: Twilio's ANONYMOUS spelt on a keypad
        "+8612345",  # a local number's length, without its area code
        "+86138123480001234567",
        "１３８１２３４８０００",  # full-width digits
        "+86138" + "0" * 40,
    ],
)
def test_what_is_no_number_is_none(raw: str) -> None:
    assert parse(raw) is None


@pytest.mark.parametrize(
    ("e164", "masked"),
    [
        ("+8613812348000", "+86138****8000"),  # the format the logs have always used
        ("+861062345678", "+86106****5678"),
        ("+2562533", "+25****33"),  # short: too few digits to keep five and four
    ],
)
def test_masked_keeps_enough_to_tell_calls_apart(e164: str, masked: str) -> None:
    assert PhoneNumber(e164).masked == masked == mask(e164)


def test_mask_takes_digits_without_their_plus() -> None:
    assert mask("13812348000") == "13812****8000"
    assert mask("62345678") == "62****78"


def test_only_an_assigned_number_can_be_called_back() -> None:
    mobile, landline = parse("+8613812348000"), parse("010 6234 5678")
    assert mobile is not None and mobile.can_be_called_back
    assert landline is not None and landline.can_be_called_back
    # The right length for China, but no Beijing number has nine digits.
    unassigned = parse("+8610123450000")
    assert unassigned is not None and not unassigned.can_be_called_back
    # Twilio's UNAVAILABLE spelt on a keypad looks like a Chengdu number, and is none.
    placeholder = parse("+86282452253")
    assert placeholder is not None and not placeholder.can_be_called_back
