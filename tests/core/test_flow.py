"""The call flow, step by step over plain data: no HTTP, no database, no clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from casework.tickets import Channel, RecordingKind, TicketStatus
from ivr.actions import (
    Enqueue,
    Gather,
    Hangup,
    Hook,
    Leave,
    Pause,
    Record,
    Redirect,
    Say,
    TicketChange,
)
from ivr.events import (
    CallStarted,
    ChoiceAnswered,
    ConfirmAnswered,
    Described,
    KeyPressed,
    NoInput,
    QueueKeyPressed,
    QueueLeft,
    QueueWaiting,
    Recorded,
    Recording,
    RecordingMissing,
    RoutingRequested,
    Understanding,
)
from ivr.flow import initial_state, refused, rescue, step, voicemail_understood, with_menu_words
from ivr.model import IvrPlan
from ivr.state import AgentCallState, CallState, OutboundState
from routing.hours import BusinessHours
from routing.queue_router import QueueExit
from routing.tiers import AppealType

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOON = datetime(2026, 11, 30, 12, 0, tzinfo=SHANGHAI)
NIGHT = datetime(2026, 11, 30, 2, 0, tzinfo=SHANGHAI)


def spoken(actions: tuple[object, ...]) -> str:
    parts: list[str] = []
    for a in actions:
        if isinstance(a, Say):
            parts.append(a.text)
        elif isinstance(a, Gather):
            parts.extend(p.text for p in a.prompt if isinstance(p, Say))
    return " ".join(parts)


def changes(actions: tuple[object, ...]) -> list[TicketChange]:
    return [a for a in actions if isinstance(a, TicketChange)]


def press(plan: IvrPlan, state: CallState, *keys: str) -> tuple[CallState, tuple[object, ...]]:
    actions: tuple[object, ...] = ()
    for key in keys:
        state, actions = step(plan, state, KeyPressed(key))
    return state, actions


def test_open_line_greets_in_chinese_and_offers_english(plan: IvrPlan) -> None:
    _, actions = step(plan, initial_state(plan), CallStarted(NOON))
    gather = next(a for a in actions if isinstance(a, Gather))
    langs = [p.lang for p in gather.prompt if isinstance(p, Say)]
    assert langs[0] == "zh" and langs[-1] == "en"
    said = spoken(actions)
    assert plan.prompts.greeting["zh"] in said
    assert plan.prompts.switch_offer["en"].format(key="9") in said
    assert gather.target.hook is Hook.MENU and gather.target.state.node == "main"
    # Silence falls through the Gather to a no-input step, never to silence.
    assert isinstance(actions[-1], Redirect) and actions[-1].target.hook is Hook.NO_INPUT


def test_two_keys_reach_a_desk_and_ticket_gets_path_desk_and_tier(plan: IvrPlan) -> None:
    state, _ = step(plan, initial_state(plan), CallStarted(NOON))
    state, actions = press(plan, state, "2", "2")
    routed = changes(actions)[0]
    assert routed.status is TicketStatus.ROUTED
    assert (routed.specialty, routed.department) == ("tax-invoice", "tax-bureau")
    assert routed.menu_path == ("main.2", "tax.2")
    assert routed.tier is not None and routed.tier.value == "3-day"
    invoices = plan.specialties["tax-invoice"].name["zh"]
    assert plan.prompts.connecting["zh"].format(desk=invoices) in spoken(actions)
    assert isinstance(actions[-1], Redirect) and actions[-1].target.hook is Hook.ROUTE
    state, actions = step(plan, state, RoutingRequested({}))
    enqueue = next(a for a in actions if isinstance(a, Enqueue))
    assert enqueue.queue == "desk-tax-invoice"
    assert enqueue.wait.hook is Hook.QUEUE_WAIT and enqueue.done.hook is Hook.QUEUE_DONE
    assert changes(actions)[0].status is TicketStatus.IN_QUEUE


def test_english_switch_changes_the_whole_call(plan: IvrPlan) -> None:
    state, _ = step(plan, initial_state(plan), CallStarted(NOON))
    state, actions = press(plan, state, "9")
    assert state.lang == "en" and changes(actions)[0].language == "en"
    assert plan.menus["main"].prompt["en"] in spoken(actions)
    assert plan.prompts.switch_offer["zh"].format(key="9") in spoken(actions)  # and back
    state, actions = press(plan, state, "2", "4")
    refunds = plan.specialties["tax-refund"].name["en"]
    assert plan.prompts.connecting["en"].format(desk=refunds) in spoken(actions)
    state, actions = press(plan, replace(state, node="main", desk=None), "9")
    assert state.lang == "zh"


def test_star_repeats_and_pound_goes_back(plan: IvrPlan) -> None:
    state, _ = press(plan, initial_state(plan), "2")
    assert state.node == "tax"
    again, actions = press(plan, state, "*")
    assert again == state and plan.menus["tax"].prompt["zh"] in spoken(actions)
    back, actions = press(plan, state, "#")
    assert back.node == "main" and plan.menus["main"].prompt["zh"] in spoken(actions)
    root_back, _ = press(plan, back, "#")
    assert root_back.node == "main"  # nowhere further back: the root again


def test_zero_reaches_general_desk_from_any_depth(plan: IvrPlan) -> None:
    for keys in [("0",), ("2", "0"), ("4", "0")]:
        state, actions = press(plan, initial_state(plan), *keys)
        assert state.desk == "general"
        assert changes(actions)[0].specialty == "general"


def test_invalid_and_no_input_retry_then_general_desk(plan: IvrPlan) -> None:
    state, _ = press(plan, initial_state(plan), "2")
    state, actions = press(plan, state, "9")  # no option 9 in the tax menu
    assert state.tries == 1 and plan.prompts.invalid["zh"] in spoken(actions)
    assert isinstance(actions[0], Gather)
    state, actions = step(plan, state, NoInput())
    assert state.tries == 2 and plan.prompts.no_input["zh"] in spoken(actions)
    state, actions = step(plan, state, NoInput())
    assert state.desk == "general"
    assert plan.prompts.too_many_tries["zh"] in spoken(actions)
    assert isinstance(actions[-1], Redirect) and actions[-1].target.hook is Hook.ROUTE


def test_garbage_keys_are_invalid_not_errors(plan: IvrPlan) -> None:
    state = initial_state(plan)
    for digits in ["12", "abc", "##", "\x00"]:
        nxt, actions = step(plan, state, KeyPressed(digits))
        assert nxt.tries == 1 and isinstance(actions[0], Gather)


def test_a_menu_removed_by_a_config_change_restarts_at_root(plan: IvrPlan) -> None:
    state = CallState(lang="zh", node="gone-menu")
    nxt, actions = step(plan, state, KeyPressed("1"))
    assert nxt.node == "main" and isinstance(actions[0], Gather)
    nxt, actions = step(plan, state, NoInput())
    assert nxt.node == "main"


def test_unknown_language_or_desk_in_state_falls_back(plan: IvrPlan) -> None:
    state = CallState(lang="fr", node="main", desk="no-such-desk")
    nxt, actions = step(plan, state, RoutingRequested({}))
    assert nxt.lang == "zh" and next(a for a in actions if isinstance(a, Enqueue)).queue == (
        "desk-general"
    )


def test_closed_line_says_hours_in_both_languages_and_takes_voicemail(plan: IvrPlan) -> None:
    _, actions = step(plan, initial_state(plan), CallStarted(NIGHT))
    change = changes(actions)[0]
    assert change.status is TicketStatus.VOICEMAIL and change.callback is True
    assert change.channel is Channel.VOICEMAIL
    assert "06:00-24:00" in spoken(actions)
    says = [a for a in actions if isinstance(a, Say)]
    assert {s.lang for s in says} == {"zh", "en"}
    record = next(a for a in actions if isinstance(a, Record))
    assert record.target.hook is Hook.VOICEMAIL and record.max_length_s == 120
    assert isinstance(actions[-1], Hangup)


def test_override_and_emergency_switch_close_the_line(plan: IvrPlan) -> None:
    new_year_morning = datetime(2027, 1, 1, 7, 0, tzinfo=SHANGHAI)
    _, actions = step(plan, initial_state(plan), CallStarted(new_year_morning))
    assert "08:00-20:00" in spoken(actions)
    hours: BusinessHours = replace(plan.hours, emergency_closed=True)
    _, actions = step(replace(plan, hours=hours), initial_state(plan), CallStarted(NOON))
    assert any(isinstance(a, Record) for a in actions)


def test_voicemail_recorded_and_empty(plan: IvrPlan) -> None:
    rec = Recording("https://api.twilio.com/rec/RE1", "RE" + "1" * 32, 12)
    _, actions = step(plan, initial_state(plan), Recorded(RecordingKind.VOICEMAIL, rec))
    assert changes(actions)[0].recording == (RecordingKind.VOICEMAIL, rec)
    assert isinstance(actions[-1], Hangup)
    _, actions = step(plan, initial_state(plan), RecordingMissing(RecordingKind.VOICEMAIL))
    assert isinstance(actions[-1], Hangup) and not changes(actions)


def test_describe_records_with_a_finish_key_and_silence_goes_back(plan: IvrPlan) -> None:
    state, actions = press(plan, initial_state(plan), "8")
    record = next(a for a in actions if isinstance(a, Record))
    assert record.target.hook is Hook.DESCRIBED and record.finish_on_key == "#"
    assert isinstance(actions[-1], Redirect) and actions[-1].target.hook is Hook.NO_INPUT
    again, actions = step(plan, state, RecordingMissing(RecordingKind.DESCRIPTION))
    assert again.tries == 1 and plan.prompts.no_input["zh"] in spoken(actions)


def test_queue_wait_says_position_and_offers_voicemail_every_third_loop(plan: IvrPlan) -> None:
    state = CallState(lang="zh", node="tax", desk="tax-invoice", queue="desk-tax-invoice")
    prompts = plan.prompts
    state, actions = step(plan, state, QueueWaiting(position=4, avg_wait_s=130))
    said = spoken(actions)
    assert prompts.queue_position["zh"].format(ahead=3) in said
    assert prompts.queue_estimate["zh"].format(minutes=3) in said
    assert any(isinstance(a, Pause) for a in actions)
    assert not any(isinstance(a, Gather) for a in actions)
    assert state.loop == 1
    state, actions = step(plan, state, QueueWaiting(position=1, avg_wait_s=0))
    said = spoken(actions)
    estimate, _, _ = prompts.queue_estimate["zh"].partition("{minutes}")  # no estimate at all
    assert prompts.queue_next["zh"] in said and estimate and estimate not in said
    state, actions = step(plan, state, QueueWaiting(position=1, avg_wait_s=0))
    gather = next(a for a in actions if isinstance(a, Gather))
    offer = prompts.queue_offer_voicemail["zh"].format(key="1")
    assert gather.target.hook is Hook.QUEUE_KEY and offer in spoken(actions)


def test_press_one_in_queue_leaves_for_voicemail(plan: IvrPlan) -> None:
    state = CallState(lang="en", node="tax", desk="tax-invoice", queue="desk-tax-invoice")
    _, actions = step(plan, state, QueueKeyPressed("1"))
    assert changes(actions)[0].wants_voicemail is True and isinstance(actions[-1], Leave)
    _, actions = step(plan, state, QueueLeft(QueueExit.LEAVE, wants_voicemail=True))
    change = changes(actions)[0]
    assert change.status is TicketStatus.VOICEMAIL and change.callback
    assert any(isinstance(a, Record) for a in actions)
    _, actions = step(plan, state, QueueKeyPressed("5"))
    assert isinstance(actions[-1], Redirect) and actions[-1].target.hook is Hook.QUEUE_WAIT


def test_queue_results(plan: IvrPlan) -> None:
    state = CallState(lang="zh", node="tax", desk="tax-invoice", queue="desk-tax-invoice")
    _, actions = step(plan, state, QueueLeft(QueueExit.BRIDGED))
    assert changes(actions)[0].status is TicketStatus.ANSWERED
    _, actions = step(plan, state, QueueLeft(QueueExit.HANGUP))
    assert changes(actions)[0].status is TicketStatus.ABANDONED
    full, actions = step(plan, state, QueueLeft(QueueExit.QUEUE_FULL))
    assert full.full == ("desk-tax-invoice",)
    _, actions = step(plan, full, RoutingRequested({}))
    assert next(a for a in actions if isinstance(a, Enqueue)).queue == "desk-general"
    moved, actions = step(plan, state, QueueLeft(QueueExit.SYSTEM_ERROR))
    assert moved.desk == "general"
    general = CallState(lang="zh", node="main", desk="general", queue="desk-general")
    _, actions = step(plan, general, QueueLeft(QueueExit.ERROR))
    assert any(isinstance(a, Record) for a in actions)  # no loop: voicemail


def test_every_queue_full_means_voicemail(plan: IvrPlan) -> None:
    state = CallState(lang="zh", node="tax", desk="tax-invoice")
    waiting = {"desk-tax-invoice": 20, "desk-general": 60}
    _, actions = step(plan, state, RoutingRequested(waiting))
    assert changes(actions)[0].status is TicketStatus.VOICEMAIL
    assert any(isinstance(a, Record) for a in actions)


def test_rescue_sends_the_call_to_the_general_queue(plan: IvrPlan) -> None:
    state = CallState(lang="en", node="whatever")
    joined, actions = rescue(plan, state, Hook.MENU)
    assert joined.desk == "general"
    assert plan.prompts.system_error["en"] in spoken(actions)
    assert next(a for a in actions if isinstance(a, Enqueue)).queue == "desk-general"


def test_rescue_never_loops_and_respects_the_hold_loop(plan: IvrPlan) -> None:
    state = CallState(lang="zh", node="main", desk="general", queue="desk-general")
    _, actions = rescue(plan, state, Hook.QUEUE_WAIT)
    assert [type(a) for a in actions] == [Pause]  # hold TwiML may not enqueue
    _, actions = rescue(plan, state, Hook.QUEUE_DONE, QueueExit.BRIDGED)
    assert [type(a) for a in actions] == [Hangup]
    _, actions = rescue(plan, state, Hook.QUEUE_DONE, QueueExit.ERROR)
    assert any(isinstance(a, Record) for a in actions)  # general desk failed: a message
    _, actions = rescue(plan, state, Hook.VOICEMAIL)
    assert isinstance(actions[-1], Hangup) and not any(isinstance(a, Record) for a in actions)


def test_state_round_trips_through_url_params(plan: IvrPlan) -> None:
    state = CallState(
        lang="en",
        node="tax",
        tries=2,
        path=("main.2", "tax.3"),
        desk="tax-filing",
        queue="desk-tax-filing",
        full=("desk-a",),
        loop=4,
    )
    assert CallState.from_params(state.to_params(), lang="zh", node="main") == state
    junk = CallState.from_params(
        {"lang": "<x>", "tries": "-1", "loop": "9" * 20, "path": "a~<b>~c"}, lang="zh", node="main"
    )
    assert junk == CallState(lang="zh", node="main", path=("a", "c"))


# Characters for which str.isdigit() is True: '²' and '①' int() refuses, '٣' and '３' it
# reads as 3. None is a count of the call's URLs, which carry ASCII digits only.
UNICODE_DIGITS = ["²", "①", "٣", "３", "1²", "²" * 3]


@pytest.mark.parametrize("digits", UNICODE_DIGITS)
def test_a_state_with_unicode_digits_reads_back_without_them(digits: str) -> None:
    """Reading a state is total: the rescue reads the same query, and must not raise."""
    call = CallState.from_params(
        {"tries": digits, "loop": digits, "lang": "en"}, lang="zh", node="main"
    )
    assert (call.tries, call.loop, call.lang) == (0, 0, "en")
    agent = AgentCallState.from_params({"tries": digits, "waits": digits}, lang="zh")
    assert (agent.tries, agent.waits) == (0, 0)
    assert OutboundState.from_params({"job": digits}, lang="zh") is None
    placed = OutboundState.from_params({"job": "7", "tries": digits}, lang="zh")
    assert placed == OutboundState(job=7, lang="zh")


def test_a_word_of_the_state_is_ascii() -> None:
    """'\u212a' (the Kelvin sign) lowers to 'k': it passed as a safe word, yet URL encoding
    changes it, so the URL sent would not be the URL signed."""
    state = CallState.from_params(
        {"lang": "\u212a", "node": "ta\u212a", "desk": "\u212a"}, lang="zh", node="main"
    )
    assert (state.lang, state.node, state.desk) == ("zh", "main", None)


REC = Recording("https://api.twilio.com/rec/RE3", "RE" + "3" * 32, 5)


def understood(*candidates: tuple[str, float], appeal: str = "complaint") -> Described:
    return Described(REC, Understanding("我们 开 的 专 票", candidates, AppealType(appeal)))


def test_sure_words_are_confirmed_and_silence_accepts(plan: IvrPlan) -> None:
    state, _ = press(plan, initial_state(plan), "8")
    state, actions = step(plan, state, understood(("tax-invoice", 0.8), ("tax-filing", 0.1)))
    change = changes(actions)[0]
    assert change.understanding is not None and change.appeal is AppealType.COMPLAINT
    invoices = plan.specialties["tax-invoice"].name["zh"]
    assert plan.prompts.understood_confirm["zh"].format(desk=invoices) in spoken(actions)
    gather = next(a for a in actions if isinstance(a, Gather))
    assert gather.target.hook is Hook.CONFIRM and isinstance(actions[-1], Redirect)
    state, actions = step(plan, state, ConfirmAnswered(""))
    assert changes(actions)[0].choice == "tax-invoice"
    routed = changes(actions)[1]
    assert routed.specialty == "tax-invoice"
    assert routed.tier is not None and routed.tier.value == "7-day"  # a complaint
    assert isinstance(actions[-1], Redirect) and actions[-1].target.hook is Hook.ROUTE


def test_a_key_says_no_and_leads_to_the_menu(plan: IvrPlan) -> None:
    state, _ = step(plan, initial_state(plan), understood(("tax-invoice", 0.8)))
    state, actions = step(plan, state, ConfirmAnswered("1"))
    assert changes(actions)[0].choice == "rejected"
    assert state.node == "main" and isinstance(actions[1], Gather)


def test_middling_words_offer_two_desks(plan: IvrPlan) -> None:
    state, actions = step(
        plan, initial_state(plan), understood(("housing-fund", 0.4), ("social-insurance", 0.35))
    )
    first = plan.specialties["housing-fund"].name["zh"]
    second = plan.specialties["social-insurance"].name["zh"]
    offer = plan.prompts.understood_choose["zh"].format(first=first, second=second)
    assert offer in spoken(actions)
    assert state.offer == ("housing-fund", "social-insurance")
    chosen, actions = step(plan, state, ChoiceAnswered("2"))
    assert chosen.desk == "social-insurance" and changes(actions)[0].choice == "social-insurance"
    menu, actions = step(plan, state, ChoiceAnswered("3"))
    assert menu.node == "main" and changes(actions)[0].choice == "menu"
    menu, actions = step(plan, state, ChoiceAnswered(""))
    assert menu.node == "main"


def test_unclear_words_are_asked_again_then_the_keys(plan: IvrPlan) -> None:
    state, _ = press(plan, initial_state(plan), "8")
    unclear = Described(REC, Understanding("", (), AppealType.UNKNOWN, "silence"))
    state, actions = step(plan, state, unclear)
    assert plan.prompts.not_understood["zh"] in spoken(actions)
    assert any(isinstance(a, Record) for a in actions) and state.tries == 1
    low = understood(("pollution", 0.1), ("water-supply", 0.05))
    state, actions = step(plan, state, low)
    said = spoken(actions)
    assert plan.prompts.use_keys["zh"] in said and state.node == "main" and state.tries == 0


def test_waiting_past_the_desks_maximum_with_nobody_ready_is_overdue(plan: IvrPlan) -> None:
    state = CallState(lang="zh", node="tax", desk="tax-invoice", queue="desk-tax-invoice")
    _, actions = step(plan, state, QueueWaiting(1, 0, waited_s=299, agents_ready=0))
    assert not any(c.overdue for c in changes(actions))
    _, actions = step(plan, state, QueueWaiting(1, 0, waited_s=300, agents_ready=0))
    assert [c.overdue for c in changes(actions)] == [True]
    assert any(isinstance(a, Gather) and a.target.hook is Hook.QUEUE_KEY for a in actions)
    _, actions = step(plan, state, QueueWaiting(1, 0, waited_s=900, agents_ready=1))
    assert not changes(actions)  # someone of the desk is free: no overflow


def test_a_clear_message_gives_its_ticket_the_desk_and_a_vague_one_does_not(
    plan: IvrPlan,
) -> None:
    clear = Understanding(
        "开出去的专票抵扣不了", (("tax-invoice", 0.93), ("tax-filing", 0.04)), AppealType.REQUEST
    )
    change = voicemail_understood(plan, clear)
    assert (change.specialty, change.department) == ("tax-invoice", "tax-bureau")
    assert change.appeal is AppealType.REQUEST
    assert change.tier == plan.tiers.tier_for(AppealType.REQUEST)
    vague = Understanding("你好", (("tax-invoice", 0.41), ("tax-filing", 0.38)), AppealType.UNKNOWN)
    change = voicemail_understood(plan, vague)
    assert change.specialty is None and change.tier is None
    assert change.understanding == vague and change.note == "voicemail not clear"


def test_a_menu_says_what_its_own_config_says(plan: IvrPlan) -> None:
    """The menus' words are composed once per config, when it is loaded: a reloaded config
    with other words is heard as soon as a call steps on it, and the old one keeps its own."""
    state = initial_state(plan)
    before = spoken(step(plan, state, NoInput())[1])
    reworded = with_menu_words(
        replace(
            plan,
            prompts=replace(
                plan.prompts,
                option_line={code: "按{key}键：{label}（新）" for code in plan.language_codes()},
            ),
        )
    )
    after = spoken(step(reworded, state, NoInput())[1])
    assert "（新）" in after and "（新）" not in before
    assert spoken(step(plan, state, NoInput())[1]) == before


def test_a_refused_call_hears_the_configured_apology_in_every_language(plan: IvrPlan) -> None:
    reworded = replace(
        plan, prompts=replace(plan.prompts, rate_limited={"zh": "请稍后再拨。", "en": "Later."})
    )
    assert refused(reworded) == (Say("请稍后再拨。", "zh"), Say("Later.", "en"), Hangup())
