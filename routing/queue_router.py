"""Which queue a caller joins: the specialty's own, or its overflow chain when that is full."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from enum import StrEnum

from routing.specialty import VOICEMAIL, Specialty


@dataclass(frozen=True)
class Placement:
    """Join `queue` (the queue of `specialty`), or take a voicemail when `queue` is None."""

    specialty: str
    queue: str | None

    @property
    def voicemail(self) -> bool:
        return self.queue is None


class QueueRouter:
    def __init__(self, specialties: Mapping[str, Specialty]) -> None:
        self._specialties = specialties

    def place(
        self,
        specialty_id: str,
        waiting: Mapping[str, int],
        known_full: Set[str] = frozenset(),
    ) -> Placement:
        """Follow the overflow chain from `specialty_id` to the first queue with room.

        `waiting` counts callers per queue name as the ticket store sees them; `known_full`
        names queues the carrier itself reported full. A chain that loops or ends in
        voicemail gives a voicemail placement.
        """
        seen: set[str] = set()
        current = specialty_id
        while current != VOICEMAIL and current not in seen:
            seen.add(current)
            spec = self._specialties.get(current)
            if spec is None:
                break
            has_room = waiting.get(spec.queue, 0) < spec.queue_size
            if has_room and spec.queue not in known_full:
                return Placement(specialty=spec.id, queue=spec.queue)
            current = spec.overflow
        return Placement(specialty=specialty_id, queue=None)

    def chain(self, specialty_id: str) -> list[str]:
        """Queue names on the overflow chain, for counting who waits where."""
        names: list[str] = []
        current = specialty_id
        while current != VOICEMAIL:
            spec = self._specialties.get(current)
            if spec is None or spec.queue in names:
                break
            names.append(spec.queue)
            current = spec.overflow
        return names


class QueueExit(StrEnum):
    """How a caller's stay in a desk's queue ended; anything else the carrier says is an error."""

    BRIDGED = "bridged"
    BRIDGING = "bridging-in-process"
    HANGUP = "hangup"
    LEAVE = "leave"
    QUEUE_FULL = "queue-full"
    REDIRECTED = "redirected"
    ERROR = "error"
    SYSTEM_ERROR = "system-error"

    @classmethod
    def parse(cls, raw: str) -> QueueExit:
        try:
            return cls(raw)
        except ValueError:
            return cls.ERROR
