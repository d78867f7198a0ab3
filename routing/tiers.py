"""Feedback tiers: how soon an enterprise must hear back, by appeal type and specialty."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class AppealType(StrEnum):
    CONSULTATION = "consultation"
    REQUEST = "request"
    COMPLAINT = "complaint"
    REPORT = "report"
    SUGGESTION = "suggestion"
    UNKNOWN = "unknown"


class FeedbackTier(StrEnum):
    INSTANT = "instant"
    DAYS_3 = "3-day"
    DAYS_7 = "7-day"
    DAYS_15 = "15-day"

    @property
    def days(self) -> int:
        return {"instant": 0, "3-day": 3, "7-day": 7, "15-day": 15}[self.value]


@dataclass(frozen=True)
class TierRules:
    """Default tier per appeal type (a specialty may override some)."""

    defaults: Mapping[AppealType, FeedbackTier]

    def tier_for(
        self, appeal: AppealType, overrides: Mapping[AppealType, FeedbackTier] | None = None
    ) -> FeedbackTier:
        if overrides and appeal in overrides:
            return overrides[appeal]
        return self.defaults[appeal]
