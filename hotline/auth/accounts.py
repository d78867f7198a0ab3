"""People's accounts: who they are, what a name and a password must be, when an account is
locked, and where each role lands after logging in.

Pure: no I/O and no clock. The time of each failed login and the time now come in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit


class AccountRole(StrEnum):
    AGENT = "agent"  # answers calls at the agents' desk
    DEPARTMENT = "department"  # staff of one department, working its tickets
    CENTRE = "centre"  # the 12345 centre: dispatches, supervises
    ADMIN = "admin"  # the centre's administrators


@dataclass(frozen=True)
class Account:
    """A person who may log in. The password hash stays in the store."""

    id: int
    username: str
    role: AccountRole
    department: str | None  # a department of specialties.yaml, for department staff
    agent_id: str | None  # the agent they are on the phone, for agents
    disabled: bool
    created_at: datetime


# Lower-case letters, digits and . _ -, starting with a letter. Usernames are written to
# the logs, so one that could be a phone number (seven digits in a row or more) is refused.
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,31}")
_DIGIT_RUN = re.compile(r"\d{7,}")
MIN_PASSWORD = 10
# Argon2 takes a password of any length; the bound keeps a login form's body small.
MAX_PASSWORD = 128


def normalise_username(raw: str) -> str:
    """The form in which a name is stored and looked up: `Zhang.Wei ` is `zhang.wei`."""
    return raw.strip().lower()


def username_problem(username: str) -> str | None:
    """Why a (normalised) name cannot be an account's, or None."""
    if not _USERNAME.fullmatch(username):
        return (
            "a username is 2 to 32 lower-case letters, digits, '.', '_' or '-', "
            "starting with a letter"
        )
    if _DIGIT_RUN.search(username):
        return "a username must not hold seven digits in a row (it could be a phone number)"
    return None


def password_problem(password: str, username: str) -> str | None:
    """Why a new password is refused, or None."""
    if not password:
        return "the password is empty"
    if len(password) < MIN_PASSWORD:
        return f"a password has at least {MIN_PASSWORD} characters"
    if len(password) > MAX_PASSWORD:
        return f"a password has at most {MAX_PASSWORD} characters"
    if password.strip().lower() == username:
        return "the password must not be the username"
    return None


def role_problem(
    role: AccountRole, department: str | None, agent_id: str | None, departments: Iterable[str]
) -> str | None:
    """Why an account of `role` cannot have this department and agent id, or None.

    Department staff belong to exactly one department the config knows; an agent is one
    agent id; the centre's people have neither (they see every department)."""
    if role is AccountRole.DEPARTMENT:
        if not department:
            return "a department user needs --department"
        if department not in set(departments):
            return f"unknown department {department!r} (see specialties.yaml departments)"
    elif department:
        return f"--department is only for department users, not {role.value}"
    if role is AccountRole.AGENT:
        if not agent_id:
            return "an agent user needs --agent (the agent id)"
    elif agent_id:
        return f"--agent is only for agent users, not {role.value}"
    return None


# The page each role lands on after logging in.
HOMES = {
    AccountRole.AGENT: "/desk",
    AccountRole.DEPARTMENT: "/cases",
    AccountRole.CENTRE: "/centre",
    AccountRole.ADMIN: "/centre",
}


def safe_next(raw: str | None) -> str | None:
    """`next` as a path of this site, or None for anything that could lead elsewhere.

    Only an absolute path: no scheme, no host, not `//host` or `/\\host` (browsers read
    both as another site), no control characters (a header could be split with them).
    """
    if not raw or not raw.startswith("/") or raw.startswith(("//", "/\\")):
        return None
    if any(ord(c) < 0x20 or c == "\x7f" or c == "\\" for c in raw):
        return None
    parts = urlsplit(raw)
    if parts.scheme or parts.netloc:
        return None
    return raw
