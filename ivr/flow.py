"""The call flow: `step(plan, state, event) -> (state, actions)`.

Every webhook of a call is one step. The caller never dead-ends: every branch ends in a
menu that listens, a queue, a recording or a goodbye, and whatever cannot be understood
leads to the general desk.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from casework.tickets import Channel, RecordingKind, TicketStatus
from ivr.actions import (
    Action,
    Enqueue,
    Gather,
    Hangup,
    Hook,
    Leave,
    Pause,
    Play,
    Prompt,
    Record,
    Redirect,
    Say,
    Target,
    TicketChange,
    say,
)
from ivr.events import (
    CallStarted,
    ChoiceAnswered,
    ConfirmAnswered,
    Described,
    Event,
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
from ivr.model import (
    IvrPlan,
    Menu,
    MenuOption,
    RecordSettings,
    Text,
    ToDescribe,
    ToGeneralDesk,
    ToMenu,
    ToSpecialty,
)
from ivr.state import CallState
from routing.queue_router import QueueExit
from routing.tiers import AppealType

CONFIRM_TIMEOUT_S = 3

Step = tuple[CallState, tuple[Action, ...]]

VOICEMAIL_KEY = "1"


def initial_state(plan: IvrPlan) -> CallState:
    return CallState(lang=plan.default_language, node=plan.root)


def step(plan: IvrPlan, state: CallState, event: Event) -> Step:
    state = _sanitised(plan, state)
    match event:
        case CallStarted(at=at):
            return _start(plan, replace(initial_state(plan), config=state.config), at)
        case KeyPressed(digits=digits):
            return _key(plan, state, digits)
        case NoInput():
            return _retry(plan, state, plan.prompts.no_input)
        case Recorded(kind=RecordingKind.VOICEMAIL):
            return _voicemail_left(plan, state, event)
        case Described(recording=recording, understanding=understanding):
            return _understood(plan, state, recording, understanding)
        case ConfirmAnswered(digits=digits):
            return _confirmed(plan, state, digits)
        case ChoiceAnswered(digits=digits):
            return _chosen(plan, state, digits)
        case RecordingMissing(kind=RecordingKind.VOICEMAIL):
            return state, (say(state.lang, plan.prompts.voicemail_empty), Hangup())
        case RecordingMissing(kind=RecordingKind.DESCRIPTION):
            return _retry(plan, state, plan.prompts.no_input)
        case RoutingRequested(waiting=waiting):
            return _join_queue(plan, state, waiting)
        case QueueWaiting():
            return _wait(plan, state, event)
        case QueueKeyPressed(digits=digits):
            return _queue_key(plan, state, digits)
        case QueueLeft(result=result, wants_voicemail=wants):
            return _left_queue(plan, state, result, wants)
    raise AssertionError(f"unhandled event {event!r}")  # pragma: no cover - exhaustive match


def rescue(
    plan: IvrPlan, state: CallState, hook: Hook | None, result: QueueExit | None = None
) -> Step:
    """Where a call goes when handling `hook` broke: never a dead end, never a loop.

    Usually straight into the general desk's queue. A caller holding in a queue stays
    there (hold TwiML may not enqueue); a call whose queue stay is over ends; a caller
    the general desk could not take leaves a message.
    """
    state = _sanitised(plan, state)
    general = plan.specialties[plan.general_desk]
    sorry = say(state.lang, plan.prompts.system_error)
    if hook in (Hook.QUEUE_WAIT, Hook.QUEUE_KEY):
        return state, (Pause(plan.dialogue.queue.hold_pause_s),)
    if hook is Hook.QUEUE_DONE and result in (QueueExit.BRIDGED, QueueExit.HANGUP):
        return state, (Hangup(),)
    if hook is Hook.QUEUE_DONE and result is QueueExit.REDIRECTED:
        return state, ()  # taken for an agent: the call goes on elsewhere
    if hook is Hook.VOICEMAIL:
        return state, (say(state.lang, plan.prompts.voicemail_thanks), Hangup())
    if state.queue == general.queue:
        return state, (sorry, *_record_voicemail(plan, state))
    joined = replace(state, desk=general.id, queue=general.queue, loop=0)
    return joined, (sorry, _enqueue(joined, general.queue))


def refused(plan: IvrPlan) -> tuple[Action, ...]:
    """A new call refused (its number called too often): a short apology in every language
    of the line, then the end of the call."""
    said = tuple(Say(plan.prompts.rate_limited[code], code) for code in plan.language_codes())
    return (*said, Hangup())


def _sanitised(plan: IvrPlan, state: CallState) -> CallState:
    """A state from an older config or a mangled URL still leads somewhere real."""
    if state.lang not in plan.language_codes():
        state = replace(state, lang=plan.default_language)
    if state.desk is not None and state.desk not in plan.specialties:
        state = replace(state, desk=plan.general_desk)
    return state


# -- opening ---------------------------------------------------------------------------------


def _start(plan: IvrPlan, state: CallState, at: datetime) -> Step:
    if not plan.hours.is_open(at):
        return _closed(plan, state, at)
    greeting = say(state.lang, plan.prompts.greeting)
    return state, (
        TicketChange(note="call answered", language=state.lang),
        *_menu(plan, state, (greeting,)),
    )


def _closed(plan: IvrPlan, state: CallState, at: datetime) -> Step:
    window = plan.hours.window_on(at.astimezone(plan.hours.zone).date()) or plan.hours.daily
    hours = window.describe()
    # Nobody has chosen a language yet: the closed message is said in every language.
    notices = tuple(say(code, plan.prompts.closed, hours=hours) for code in plan.language_codes())
    change = TicketChange(
        note="line closed: voicemail",
        status=TicketStatus.VOICEMAIL,
        channel=Channel.VOICEMAIL,
        callback=True,
    )
    return state, (change, *notices, *_record_voicemail(plan, state))


# -- menus -----------------------------------------------------------------------------------


def _menu(plan: IvrPlan, state: CallState, preface: tuple[Prompt, ...] = ()) -> tuple[Action, ...]:
    menu = plan.menus[state.node]
    words = plan.menu_words.get((menu.id, state.lang)) or _menu_words(plan, menu, state.lang)
    return (
        Gather((*preface, *words), Target(Hook.MENU, state), plan.dialogue.gather_timeout_s),
        # Twilio runs the next verb when the caller presses nothing.
        Redirect(Target(Hook.NO_INPUT, state)),
    )


def with_menu_words(plan: IvrPlan) -> IvrPlan:
    """The plan with every menu's words composed, in every language: done once per config,
    since a menu says the same to every caller."""
    words = {
        (menu.id, lang): _menu_words(plan, menu, lang)
        for menu in plan.menus.values()
        for lang in plan.language_codes()
    }
    return replace(plan, menu_words=words)


def _menu_words(plan: IvrPlan, menu: Menu, lang: str) -> tuple[Say, ...]:
    lines = [menu.prompt[lang]]
    for key in sorted(menu.options):
        option = menu.options[key]
        label = _label(plan, option, lang)
        lines.append(
            plan.prompts.option_line[lang].format(label=label, key=_key_name(plan, key, lang))
        )
    lines.append(plan.prompts.general_desk_hint[lang])
    if menu.parent is not None:
        lines.append(plan.prompts.navigation_hint[lang])
    words = [Say(" ".join(lines), lang)]
    if menu.id == plan.root:
        words.extend(
            Say(plan.prompts.switch_offer[other].format(key=plan.dialogue.switch_key), other)
            for other in plan.language_codes()
            if other != lang
        )
    return tuple(words)


def _label(plan: IvrPlan, option: MenuOption, lang: str) -> str:
    if option.label is not None:
        return option.label[lang]
    match option.target:
        case ToMenu(menu=menu_id):
            return plan.menus[menu_id].title[lang]
        case ToSpecialty(specialty=specialty_id):
            return plan.specialties[specialty_id].display_name(lang)
        case ToDescribe():
            return plan.prompts.describe_option[lang]
        case ToGeneralDesk():
            return plan.specialties[plan.general_desk].display_name(lang)


def _key_name(plan: IvrPlan, key: str, lang: str) -> str:
    names = plan.prompts.key_names.get(key)
    return names[lang] if names else key


def _key(plan: IvrPlan, state: CallState, digits: str) -> Step:
    menu = plan.menus.get(state.node)
    if menu is None:
        # The menu was removed by a config change while this call was in it.
        restart = replace(state, node=plan.root, tries=0)
        return restart, _menu(plan, restart, (say(state.lang, plan.prompts.invalid),))
    key = digits.strip()
    if key == "":
        return _retry(plan, state, plan.prompts.no_input)
    if len(key) != 1:
        return _retry(plan, state, plan.prompts.invalid)
    if key == "0":
        return _connect(plan, _moved(state, menu, key), plan.general_desk)
    if key == "*":
        return state, _menu(plan, state)
    if key == "#":
        back = replace(state, node=menu.parent or menu.id, tries=0)
        return back, _menu(plan, back)
    option = menu.options.get(key)
    if option is None and key == plan.dialogue.switch_key and menu.id == plan.root:
        return _switch_language(plan, state)
    if option is None:
        return _retry(plan, state, plan.prompts.invalid)
    moved = _moved(state, menu, key)
    match option.target:
        case ToMenu(menu=menu_id):
            inside = replace(moved, node=menu_id)
            return inside, _menu(plan, inside)
        case ToSpecialty(specialty=specialty_id):
            return _connect(plan, moved, specialty_id)
        case ToGeneralDesk():
            return _connect(plan, moved, plan.general_desk)
        case ToDescribe():
            return _describe(plan, moved)


def _moved(state: CallState, menu: Menu, key: str) -> CallState:
    return replace(state, tries=0, path=(*state.path, f"{menu.id}.{key}"))


def _switch_language(plan: IvrPlan, state: CallState) -> Step:
    codes = plan.language_codes()
    switched = replace(state, lang=codes[(codes.index(state.lang) + 1) % len(codes)], tries=0)
    change = TicketChange(note=f"language {switched.lang}", language=switched.lang)
    return switched, (change, *_menu(plan, switched))


def _retry(plan: IvrPlan, state: CallState, sorry: Text) -> Step:
    if state.node not in plan.menus:
        state = replace(state, node=plan.root, tries=0)
    tries = state.tries + 1
    if tries >= plan.dialogue.max_tries:
        gave_up = replace(state, tries=0)
        _, connect = _connect(plan, gave_up, plan.general_desk)
        return replace(gave_up, desk=plan.general_desk), (
            say(state.lang, sorry),
            say(state.lang, plan.prompts.too_many_tries),
            *connect,
        )
    again = replace(state, tries=tries)
    return again, _menu(plan, again, (say(state.lang, sorry),))


def _describe(plan: IvrPlan, state: CallState, prompt: Text | None = None) -> Step:
    settings = plan.dialogue.describe
    return state, (
        say(state.lang, prompt or plan.prompts.describe),
        _record(Target(Hook.DESCRIBED, state), settings),
        # An empty recording does not call the action: Twilio runs the next verb.
        Redirect(Target(Hook.NO_INPUT, state)),
    )


def _appeal(state: CallState) -> AppealType:
    try:
        return AppealType(state.appeal or AppealType.UNKNOWN)
    except ValueError:
        return AppealType.UNKNOWN


# -- the caller's own words ------------------------------------------------------------------


def _understood(
    plan: IvrPlan, state: CallState, recording: Recording, understanding: Understanding
) -> Step:
    settings = plan.dialogue.understanding
    known = [(d, s) for d, s in understanding.candidates if d in plan.specialties]
    appeal = understanding.appeal if understanding.appeal is not AppealType.UNKNOWN else None
    state = replace(state, appeal=appeal.value if appeal else state.appeal)
    top = known[0] if known else None
    if understanding.problem:
        note = f"description not understood: {understanding.problem}"
    elif top:
        note = f"description points to {top[0]} ({top[1]:.2f})"
    else:
        note = "description not understood"
    change = TicketChange(
        note=note,
        recording=(RecordingKind.DESCRIPTION, recording),
        understanding=understanding,
        appeal=appeal,
    )
    lang = state.lang
    if top is not None and top[1] >= settings.confirm_at:
        desk = plan.specialties[top[0]]
        offered = replace(state, offer=(desk.id,), tries=0)
        announce = say(lang, plan.prompts.understood_confirm, desk=desk.display_name(lang))
        return offered, (
            change,
            Gather((announce,), Target(Hook.CONFIRM, offered), CONFIRM_TIMEOUT_S),
            # No key: the caller agrees.
            Redirect(Target(Hook.CONFIRM, offered)),
        )
    if top is not None and len(known) >= 2 and top[1] >= settings.choose_at:
        first, second = (plan.specialties[d] for d, _ in known[:2])
        offered = replace(state, offer=(first.id, second.id), tries=0)
        question = say(
            lang,
            plan.prompts.understood_choose,
            first=first.display_name(lang),
            second=second.display_name(lang),
        )
        return offered, (
            change,
            Gather((question,), Target(Hook.CHOICE, offered), plan.dialogue.gather_timeout_s),
            Redirect(Target(Hook.CHOICE, offered)),
        )
    if state.tries + 1 < settings.attempts:
        again = replace(state, tries=state.tries + 1)
        _, describe = _describe(plan, again, plan.prompts.not_understood)
        return again, (change, *describe)
    menu = replace(state, node=plan.root, tries=0, offer=())
    return menu, (change, *_menu(plan, menu, (say(lang, plan.prompts.use_keys),)))


def _confirmed(plan: IvrPlan, state: CallState, digits: str) -> Step:
    desk = state.offer[0] if state.offer and state.offer[0] in plan.specialties else None
    if desk is not None and digits.strip() == "":
        chosen = TicketChange(note=f"caller accepted {desk}", choice=desk)
        moved, actions = _connect(plan, replace(state, offer=()), desk)
        return moved, (chosen, *actions)
    rejected = TicketChange(
        note="caller said no to the desk their words pointed to", choice="rejected"
    )
    menu = replace(state, node=plan.root, tries=0, offer=())
    return menu, (rejected, *_menu(plan, menu))


def _chosen(plan: IvrPlan, state: CallState, digits: str) -> Step:
    key = digits.strip()
    index = {"1": 0, "2": 1}.get(key)
    if index is not None and index < len(state.offer) and state.offer[index] in plan.specialties:
        desk = state.offer[index]
        chosen = TicketChange(note=f"caller chose {desk}", choice=desk)
        moved, actions = _connect(plan, replace(state, offer=()), desk)
        return moved, (chosen, *actions)
    to_menu = TicketChange(note="caller chose the key menu", choice="menu")
    menu = replace(state, node=plan.root, tries=0, offer=())
    return menu, (to_menu, *_menu(plan, menu))


def _record(target: Target, settings: RecordSettings) -> Record:
    return Record(target, settings.max_length_s, settings.timeout_s, settings.finish_on_key)


# -- queues ----------------------------------------------------------------------------------


def _connect(plan: IvrPlan, state: CallState, specialty_id: str) -> Step:
    specialty = plan.specialties[specialty_id]
    routed = replace(state, desk=specialty.id, queue=None, loop=0)
    change = TicketChange(
        note=f"routed to {specialty.id}",
        status=TicketStatus.ROUTED,
        menu_path=state.path,
        specialty=specialty.id,
        department=specialty.department,
        tier=plan.tiers.tier_for(_appeal(state), specialty.tier_overrides),
    )
    desk = specialty.display_name(state.lang)
    return routed, (
        change,
        say(state.lang, plan.prompts.connecting, desk=desk),
        Redirect(Target(Hook.ROUTE, routed)),
    )


def _join_queue(plan: IvrPlan, state: CallState, waiting: Mapping[str, int]) -> Step:
    desk = state.desk or plan.general_desk
    placement = plan.router.place(desk, waiting, frozenset(state.full))
    if placement.queue is None:
        return _to_voicemail(plan, state, plan.prompts.queue_busy, note=f"{desk}: all queues full")
    joined = replace(state, queue=placement.queue, loop=0)
    note = f"queued in {placement.queue}"
    if placement.specialty != desk:
        note += f" (overflow from {desk})"
    change = TicketChange(
        note=note,
        status=TicketStatus.IN_QUEUE,
        queue=placement.queue,
        queue_desk=placement.specialty,
    )
    return joined, (change, _enqueue(joined, placement.queue))


def _enqueue(joined: CallState, queue: str) -> Enqueue:
    return Enqueue(
        queue, done=Target(Hook.QUEUE_DONE, joined), wait=Target(Hook.QUEUE_WAIT, joined)
    )


def waited_too_long(plan: IvrPlan, state: CallState, waited_s: int) -> bool:
    """Past the desk's maximum wait: only then does it matter whether an agent is ready
    (the edge asks the database for that count only then)."""
    desk = plan.specialties.get(state.desk or "")
    return desk is not None and waited_s >= desk.max_wait_s


def _wait(plan: IvrPlan, state: CallState, event: QueueWaiting) -> Step:
    lang = state.lang
    settings = plan.dialogue.queue
    position, avg_wait_s = event.position, event.avg_wait_s
    said: list[Action] = [
        say(lang, plan.prompts.queue_next)
        if position <= 1
        else say(lang, plan.prompts.queue_position, ahead=position - 1)
    ]
    if avg_wait_s > 0:
        said.append(
            say(lang, plan.prompts.queue_estimate, minutes=max(1, math.ceil(avg_wait_s / 60)))
        )
    overdue = waited_too_long(plan, state, event.waited_s) and event.agents_ready == 0
    if overdue:
        # Nobody of this desk is free and the caller has waited long enough: agents who
        # serve it as a backup desk may now take them, and a message is offered every round.
        said.insert(
            0, TicketChange(note=f"waited {event.waited_s} s with no agent ready", overdue=True)
        )
    hold: Prompt = (
        Play(settings.hold_music_url) if settings.hold_music_url else Pause(settings.hold_pause_s)
    )
    actions: list[Action] = [*said, hold]
    if overdue or (state.loop + 1) % settings.offer_voicemail_every == 0:
        offer = say(lang, plan.prompts.queue_offer_voicemail, key=VOICEMAIL_KEY)
        actions.append(
            Gather((offer,), Target(Hook.QUEUE_KEY, state), plan.dialogue.gather_timeout_s)
        )
    after = replace(state, loop=state.loop + 1)
    actions.append(Redirect(Target(Hook.QUEUE_WAIT, after)))
    return after, tuple(actions)


def _queue_key(plan: IvrPlan, state: CallState, digits: str) -> Step:
    if digits.strip() == VOICEMAIL_KEY:
        # <Leave> makes Twilio call the Enqueue action; the ticket remembers why.
        return state, (
            TicketChange(note="caller asked for a callback", wants_voicemail=True),
            Leave(),
        )
    after = replace(state, loop=state.loop + 1)
    return after, (Redirect(Target(Hook.QUEUE_WAIT, after)),)


def _left_queue(plan: IvrPlan, state: CallState, result: QueueExit, wants_voicemail: bool) -> Step:
    queue = state.queue or ""
    match result:
        case QueueExit.BRIDGED:
            return state, (
                TicketChange(
                    note=f"answered from {queue}", status=TicketStatus.ANSWERED, queue_result=result
                ),
                Hangup(),
            )
        case QueueExit.HANGUP:
            return state, (
                TicketChange(
                    note=f"hung up in {queue}", status=TicketStatus.ABANDONED, queue_result=result
                ),
                Hangup(),
            )
        case QueueExit.QUEUE_FULL:
            full = replace(state, full=(*state.full, queue) if queue else state.full, queue=None)
            change = TicketChange(
                note=f"{queue} full", status=TicketStatus.ROUTED, queue_result=result
            )
            return full, (change, Redirect(Target(Hook.ROUTE, full)))
        case QueueExit.LEAVE if wants_voicemail:
            return _to_voicemail(
                plan, state, plan.prompts.voicemail, note="left queue for voicemail", result=result
            )
        case QueueExit.REDIRECTED:
            # Taken out of the queue for the agent the service chose (ivr/agent.py): the
            # carrier only tells, runs the agent's connection instead of this answer, and
            # the connection records the rest on the ticket.
            return state, ()
    # Anything else (an error): the general desk, once.
    general = plan.specialties[plan.general_desk]
    if queue != general.queue:
        moved, actions = _connect(plan, state, general.id)
        return moved, (TicketChange(note=f"left {queue}: {result}", queue_result=result), *actions)
    return _to_voicemail(
        plan, state, plan.prompts.voicemail, note=f"left {queue}: {result}", result=result
    )


# -- voicemail -------------------------------------------------------------------------------


def _to_voicemail(
    plan: IvrPlan, state: CallState, prompt: Text, *, note: str, result: QueueExit | None = None
) -> Step:
    change = TicketChange(
        note=note,
        status=TicketStatus.VOICEMAIL,
        channel=Channel.VOICEMAIL,
        callback=True,
        queue_result=result,
    )
    return state, (change, say(state.lang, prompt), *_record_voicemail(plan, state))


def _record_voicemail(plan: IvrPlan, state: CallState) -> tuple[Action, ...]:
    return (
        _record(Target(Hook.VOICEMAIL, state), plan.dialogue.voicemail),
        # Silence: Twilio skips the action and runs on; the callback is booked all the same.
        say(state.lang, plan.prompts.voicemail_empty),
        Hangup(),
    )


def voicemail_understood(plan: IvrPlan, understanding: Understanding) -> TicketChange:
    """What a message left with no desk chosen tells the ticket, once it is recognised.

    Only a desk the caller would have been announced on the call (`confirm_at`) is taken:
    nobody is there to say no.
    """
    known = [(d, s) for d, s in understanding.candidates if d in plan.specialties]
    appeal = understanding.appeal if understanding.appeal is not AppealType.UNKNOWN else None
    if not known or known[0][1] < plan.dialogue.understanding.confirm_at:
        return TicketChange(note="voicemail not clear", understanding=understanding)
    desk = plan.specialties[known[0][0]]
    return TicketChange(
        note=f"voicemail understood: {desk.id}",
        understanding=understanding,
        specialty=desk.id,
        department=desk.department,
        appeal=appeal,
        tier=plan.tiers.tier_for(appeal or AppealType.UNKNOWN, desk.tier_overrides),
    )


def _voicemail_left(plan: IvrPlan, state: CallState, event: Recorded) -> Step:
    change = TicketChange(
        note="voicemail recorded",
        status=TicketStatus.VOICEMAIL,
        channel=Channel.VOICEMAIL,
        callback=True,
        recording=(event.kind, event.recording),
    )
    return state, (change, say(state.lang, plan.prompts.voicemail_thanks), Hangup())
