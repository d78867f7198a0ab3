"""A ticket after the call: what a department, the centre and the system may do, and when.

Pure: the store locks the row, asks `next_status`, and writes what it says.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from casework.tickets import TicketStatus

S = TicketStatus

MAX_EXTENSION_DAYS = 60
MAX_TEXT = 4000
DUE_SOON = timedelta(hours=24)

DueState = Literal["overdue", "24h"]


class CaseAction(StrEnum):
    ACCEPT = "accept"
    RESPOND = "respond"  # an answer to the enterprise; the first one counts for the response rate
    RESOLVE = "resolve"
    RETURN = "return"  # back to the centre, for another department
    REASSIGN = "reassign"
    EXTEND = "extend"  # the department asks, once, for more days
    APPROVE_EXTENSION = "approve-extension"
    CLOSE = "close"
    REOPEN = "reopen"
    SET_DISTRICT = "set-district"


class Role(StrEnum):
    DEPARTMENT = "department"
    CENTRE = "centre"
    SYSTEM = "system"  # the survey and the dispatcher


@dataclass(frozen=True)
class Caller:
    """Who acts: the centre, one department, or a part of the system (e.g. the survey)."""

    role: Role
    department: str | None = None
    name: str | None = None

    @classmethod
    def centre(cls) -> Caller:
        return cls(Role.CENTRE)

    @classmethod
    def of_department(cls, department: str) -> Caller:
        return cls(Role.DEPARTMENT, department=department)

    @classmethod
    def system(cls, name: str) -> Caller:
        return cls(Role.SYSTEM, name=name)

    @property
    def actor(self) -> str:
        """How the ticket's history names it."""
        if self.role is Role.DEPARTMENT:
            return f"department:{self.department}"
        if self.role is Role.SYSTEM:
            return f"system:{self.name}"
        return "centre"

    def may_see(self, ticket_department: str | None) -> bool:
        """A department sees only its own tickets; the centre and the system see all."""
        return self.role is not Role.DEPARTMENT or ticket_department == self.department


class IllegalAction(Exception):
    """The action is not allowed on a ticket in this status (or in this state of its deadline)."""

    def __init__(self, status: TicketStatus, action: CaseAction, sentence: str) -> None:
        super().__init__(sentence)
        self.status = status
        self.action = action
        self.sentence = sentence

    def message(self, number: str) -> str:
        return f"ticket {number} is {self.status.value}; {self.sentence}"


class ActionForbidden(IllegalAction):
    """The action is not this role's to take, whatever the ticket's status."""


class InvalidInput(ValueError):
    """The action lacks what it needs (a text, a department, a number of days)."""


# Waiting for the department: what the call left, or what the centre sent (back) to it.
PENDING = frozenset(
    {
        S.ANSWERED,
        S.VOICEMAIL,
        S.ABANDONED,
        S.CALLBACK_FAILED,
        S.REASSIGNED,
        S.REOPENED,
    }
)
IN_HAND = frozenset({S.ACCEPTED, S.RESPONDED})
DEPARTMENT_OPEN = PENDING | IN_HAND
# The department's part is over: open, but only the centre moves it on.
CENTRE_OPEN = DEPARTMENT_OPEN | {S.RETURNED}
DONE = frozenset({S.RESOLVED, S.CLOSED})

_ROLES: Mapping[CaseAction, frozenset[Role]] = {
    CaseAction.ACCEPT: frozenset({Role.DEPARTMENT, Role.CENTRE}),
    CaseAction.RESPOND: frozenset({Role.DEPARTMENT, Role.CENTRE}),
    CaseAction.RESOLVE: frozenset({Role.DEPARTMENT, Role.CENTRE}),
    CaseAction.RETURN: frozenset({Role.DEPARTMENT}),
    CaseAction.REASSIGN: frozenset({Role.CENTRE}),
    CaseAction.EXTEND: frozenset({Role.DEPARTMENT}),
    CaseAction.APPROVE_EXTENSION: frozenset({Role.CENTRE}),
    CaseAction.CLOSE: frozenset({Role.DEPARTMENT, Role.CENTRE}),
    CaseAction.REOPEN: frozenset({Role.CENTRE, Role.SYSTEM}),
    CaseAction.SET_DISTRICT: frozenset({Role.DEPARTMENT, Role.CENTRE}),
}

# From which statuses each action may be taken (by a role that may take it at all).
_FROM: Mapping[CaseAction, frozenset[TicketStatus]] = {
    CaseAction.ACCEPT: PENDING,
    CaseAction.RESPOND: IN_HAND,
    CaseAction.RESOLVE: IN_HAND,
    CaseAction.RETURN: DEPARTMENT_OPEN,
    CaseAction.REASSIGN: CENTRE_OPEN,
    CaseAction.EXTEND: DEPARTMENT_OPEN,
    CaseAction.APPROVE_EXTENSION: DEPARTMENT_OPEN,
    CaseAction.CLOSE: frozenset({S.RESOLVED}),
    CaseAction.REOPEN: DONE,
    CaseAction.SET_DISTRICT: DEPARTMENT_OPEN | {S.RESOLVED},
}
# The centre alone may close a returned ticket (a matter no department owns).
_CENTRE_ALSO: Mapping[CaseAction, frozenset[TicketStatus]] = {
    CaseAction.CLOSE: frozenset({S.RETURNED}),
}

_TO: Mapping[CaseAction, TicketStatus] = {
    CaseAction.ACCEPT: S.ACCEPTED,
    CaseAction.RESPOND: S.RESPONDED,
    CaseAction.RESOLVE: S.RESOLVED,
    CaseAction.RETURN: S.RETURNED,
    CaseAction.REASSIGN: S.REASSIGNED,
    CaseAction.CLOSE: S.CLOSED,
    CaseAction.REOPEN: S.REOPENED,
}


def allowed_from(action: CaseAction, role: Role) -> frozenset[TicketStatus]:
    extra = _CENTRE_ALSO.get(action, frozenset()) if role is Role.CENTRE else frozenset()
    return _FROM[action] | extra


def next_status(
    current: TicketStatus,
    action: CaseAction,
    role: Role,
    *,
    extension: Mapping[str, Any] | None = None,
) -> TicketStatus:
    """The ticket's status after `action` by `role`, or IllegalAction saying why not.

    `extension` is the ticket's extension record: a deadline is extended once only, and an
    extension is approved only after it was asked for.
    """
    if role not in _ROLES[action]:
        who = " or ".join(sorted(r.value for r in _ROLES[action]))
        raise ActionForbidden(current, action, f"{action.value} is for the {who} only")
    if current not in allowed_from(action, role):
        if current is S.CLOSED:
            sentence = f"a closed ticket can only be reopened, not {_verb(action)}"
        elif action is CaseAction.RESOLVE and current in PENDING:
            sentence = "a ticket must be accepted before it is resolved"
        else:
            sentence = f"{action.value} is allowed only from {_listed(allowed_from(action, role))}"
        raise IllegalAction(current, action, sentence)
    if action is CaseAction.EXTEND and extension:
        raise IllegalAction(current, action, "its deadline was already extended once")
    if action is CaseAction.APPROVE_EXTENSION:
        if not extension:
            raise IllegalAction(current, action, "no extension was asked for")
        if extension.get("approved_at"):
            raise IllegalAction(current, action, "its extension is already approved")
    return _TO.get(action, current)


def check_input(
    action: CaseAction,
    *,
    text: str | None,
    department: str | None,
    days: int | None,
    district: str | None,
) -> None:
    """What each action needs from the caller; InvalidInput names what is missing."""
    for name, given, used_by in (
        ("department", department, CaseAction.REASSIGN),
        ("days", days, CaseAction.EXTEND),
        ("district", district, CaseAction.SET_DISTRICT),
    ):
        if given is not None and action is not used_by:
            raise InvalidInput(f"{name} is only for {used_by.value}")
    if text is not None and len(text) > MAX_TEXT:
        raise InvalidInput(f"the text is longer than {MAX_TEXT} characters")
    needs_text = {
        CaseAction.RESPOND: "respond needs the response text",
        CaseAction.RESOLVE: "resolve needs the resolution text",
        CaseAction.RETURN: "return needs a reason",
        CaseAction.EXTEND: "extend needs a reason",
    }
    if action in needs_text and not (text and text.strip()):
        raise InvalidInput(needs_text[action])
    if action is CaseAction.REASSIGN and not department:
        raise InvalidInput("reassign needs the department to send the ticket to")
    if action is CaseAction.EXTEND and (
        days is None or isinstance(days, bool) or not 1 <= days <= MAX_EXTENSION_DAYS
    ):
        raise InvalidInput(f"extend needs days, a whole number from 1 to {MAX_EXTENSION_DAYS}")
    if action is CaseAction.SET_DISTRICT and not district:
        raise InvalidInput("set-district needs the district")


def due_state(
    due_at: datetime | None,
    now: datetime,
    responded_at: datetime | None,
    status: TicketStatus,
) -> DueState | None:
    """'overdue' past the deadline, '24h' within a day of it, else None.

    The deadline is the enterprise's to hear back by: a ticket answered (responded_at),
    resolved or closed owes nothing more.
    """
    if due_at is None or responded_at is not None or status in DONE:
        return None
    if due_at <= now:
        return "overdue"
    if due_at <= now + DUE_SOON:
        return "24h"
    return None


def _listed(statuses: frozenset[TicketStatus]) -> str:
    return ", ".join(s.value for s in TicketStatus if s in statuses)


def _verb(action: CaseAction) -> str:
    return {
        CaseAction.ACCEPT: "accepted",
        CaseAction.RESPOND: "responded to",
        CaseAction.RESOLVE: "resolved",
        CaseAction.RETURN: "returned",
        CaseAction.REASSIGN: "reassigned",
        CaseAction.EXTEND: "extended",
        CaseAction.APPROVE_EXTENSION: "given an extension",
        CaseAction.CLOSE: "closed again",
        CaseAction.REOPEN: "reopened",
        CaseAction.SET_DISTRICT: "given a district",
    }[action]
