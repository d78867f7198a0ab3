"""The 50 specialist desks ("specialties") and the departments that handle their matters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from routing.tiers import AppealType, FeedbackTier

VOICEMAIL = "voicemail"
"""Overflow target meaning: take a message and call back."""


@dataclass(frozen=True)
class Department:
    id: str
    name: Mapping[str, str]


@dataclass(frozen=True)
class Specialty:
    id: str
    name: Mapping[str, str]
    department: str
    queue: str
    queue_size: int
    # Another specialty's id whose queue takes the overflow, or VOICEMAIL.
    overflow: str
    tier_overrides: Mapping[AppealType, FeedbackTier]
    # Past this wait with no agent of the desk ready, backup agents may take the caller.
    max_wait_s: int = 300

    def display_name(self, lang: str) -> str:
        return self.name.get(lang) or next(iter(self.name.values()))
