"""What a supervisor reads off a desk for the day, from each caller's stay in its queue."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from statistics import fmean


@dataclass(frozen=True)
class QueueStay:
    desk: str
    joined_at: datetime
    left_at: datetime | None
    result: str | None  # Twilio's QueueExit, or the ticket status it left for
    answered_at: datetime | None  # an agent took the call
    wrapped_at: datetime | None  # the agent's wrap-up ended


@dataclass(frozen=True)
class DeskMetrics:
    offered: int
    answered: int
    abandoned: int
    abandoned_after_s: float | None  # how long abandoning callers had waited, on average
    service_level: float | None  # answered within the threshold / offered
    average_speed_of_answer_s: float | None
    average_handle_time_s: float | None  # from answer to the end of wrap-up


def desk_metrics(stays: Iterable[QueueStay], service_level_s: int) -> dict[str, DeskMetrics]:
    by_desk: dict[str, list[QueueStay]] = {}
    for stay in stays:
        by_desk.setdefault(stay.desk, []).append(stay)
    return {desk: _metrics(desk_stays, service_level_s) for desk, desk_stays in by_desk.items()}


def _metrics(stays: list[QueueStay], service_level_s: int) -> DeskMetrics:
    answered = [s for s in stays if s.answered_at is not None]
    abandoned = [s for s in stays if s.answered_at is None and s.result == "hangup"]
    waits = [_seconds(s.joined_at, s.answered_at) for s in answered if s.answered_at]
    handled = [
        _seconds(s.answered_at, s.wrapped_at) for s in answered if s.answered_at and s.wrapped_at
    ]
    gave_up = [_seconds(s.joined_at, s.left_at) for s in abandoned if s.left_at]
    in_time = sum(1 for w in waits if w <= service_level_s)
    return DeskMetrics(
        offered=len(stays),
        answered=len(answered),
        abandoned=len(abandoned),
        abandoned_after_s=_mean(gave_up),
        service_level=in_time / len(stays) if stays else None,
        average_speed_of_answer_s=_mean(waits),
        average_handle_time_s=_mean(handled),
    )


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())


def _mean(values: list[float]) -> float | None:
    return round(fmean(values), 1) if values else None
