"""What Twilio writes where a number goes, read into a number or an explicit "no number";
the numbers an agent answers on and the hotline calls from; numbers in the logs."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from casework.phone import PhoneNumber
from hotline.config.schema import AgentSpec
from hotline.observability.logs import mask_processor
from hotline.settings import Settings, SettingsError
from hotline.twilio.numbers import NoNumber, agent_phone, party
from hotline.twilio.webhooks import parse_webhook

PIN_HASH = "pbkdf2_sha256$1$c2FsdA$aGFzaA"


@pytest.mark.parametrize(
    "raw",
    [
        "+266696687",  # ANONYMOUS on a keypad
        "+7378742833",  # RESTRICTED
        "+2562533",  # BLOCKED
        "+86282452253",  # UNAVAILABLE
        "+8656696",  # UNKNOWN
        "+8656696687",  # valid for Anhui, yet one of them
        "266696687",
        "Anonymous",  # the word itself, as Twilio now passes it on
        "RESTRICTED",
        "unknown",
    ],
)
def test_twilios_placeholders_for_a_withheld_number_are_no_number(raw: str) -> None:
    assert party(raw) is NoNumber.WITHHELD


@pytest.mark.parametrize("raw", [None, "", "client:alice", "sip:alice@pbx.example", "+86"])
def test_what_cannot_be_read_as_a_number_is_unknown(raw: str | None) -> None:
    assert party(raw) is NoNumber.UNKNOWN


def test_a_number_is_read_into_e164() -> None:
    assert party(" +8613812348000") == PhoneNumber("+8613812348000")
    assert party("13812348000") == PhoneNumber("+8613812348000")


def test_the_webhook_carries_a_withheld_caller_as_such() -> None:
    hook = parse_webhook({"CallSid": "CA" + "0" * 32, "From": "+266696687", "To": "+861012345000"})
    assert hook.caller is NoNumber.WITHHELD and str(hook.caller) == "withheld"
    assert hook.called == PhoneNumber("+861012345000")
    assert parse_webhook({}).caller is NoNumber.UNKNOWN


def test_an_agent_answers_on_a_number_in_e164_or_a_client() -> None:
    assert agent_phone("+8613800000001") == "+8613800000001"
    assert agent_phone("client:liwei") == "client:liwei"
    for wrong in ("13800000001", "+86 138 0000 0001", "+8610123450000", "+266696687", "alice"):
        with pytest.raises(ValueError, match=r"E\.164"):
            agent_phone(wrong)
    spec = {"id": "1001", "name": "王芳", "pin_hash": PIN_HASH, "desks": {"tax": "primary"}}
    with pytest.raises(ValidationError, match="answers_on"):
        AgentSpec.model_validate({**spec, "answers_on": "13800000001"})
    assert AgentSpec.model_validate({**spec, "answers_on": "+8613800000001"}).answers_on


def test_the_hotline_calls_from_a_number_in_e164() -> None:
    Settings(caller_id="+861012345000").check_caller_id()
    Settings(caller_id="").check_caller_id()  # no calls placed at all
    with pytest.raises(SettingsError, match=r"E\.164 \(\+861012345000\?\)"):
        Settings(caller_id="010 1234 5000").check_caller_id()
    with pytest.raises(SettingsError, match="HOTLINE_CALLER_ID"):
        Settings(caller_id="hotline").check_caller_id()


def test_a_number_logged_as_itself_is_masked_like_one_in_text() -> None:
    event = {
        "caller": PhoneNumber("+8613812348000"),
        "note": "call +8613812348000 or 13812348000",
        "withheld": NoNumber.WITHHELD,
    }
    assert mask_processor(None, "info", event) == {
        "caller": "+86138****8000",
        "note": "call +86138****8000 or 13812****8000",
        "withheld": "withheld",
    }
