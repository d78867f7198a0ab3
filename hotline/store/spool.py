"""The local spool: ticket writes the database could not take, kept on this machine's disk
until it can.

A SQLite file (one per server process), one row per webhook's ticket operation, committed
with `synchronous=FULL` before the webhook answers, so a write survives a crash of the
process or the machine. The replayer (store/durable.py) applies the rows in order and deletes
each once the database has it. An operation the database refuses for good (a bug, not an
outage) is set aside: kept in the file with its error, no longer replayed.
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from hotline.store.change_codec import decode_change, encode_change
from hotline.store.tickets import CallRef
from ivr.actions import TicketChange

_SCHEMA = """
CREATE TABLE IF NOT EXISTS operations (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    call_sid TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    spooled_at TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending',
    error TEXT
)
"""
PENDING = "pending"
SET_ASIDE = "set-aside"


class SpoolBusy(Exception):
    """Another live process holds this spool file."""


class OpKind(StrEnum):
    RECORD = "record"  # a webhook's ticket changes (opening the ticket first on a new call)
    END = "end"  # the status callback: the call is over


@dataclass(frozen=True)
class SpooledOp:
    """One webhook's ticket operation, as it would have been written."""

    key: str  # idempotency key: the call's id and the webhook's retry token
    kind: OpKind
    call: CallRef
    at: datetime
    changes: tuple[TicketChange, ...] = ()
    opening: bool = False  # the first webhook of the call: open the ticket first
    call_status: str | None = None
    duration_s: int | None = None
    seq: int = 0  # the spool's order; 0 until spooled

    def body(self) -> str:
        return json.dumps(
            {
                "call": {
                    "call_sid": self.call.call_sid,
                    "caller": self.call.caller,
                    "called": self.call.called,
                },
                "at": self.at.isoformat(),
                "changes": [encode_change(c) for c in self.changes],
                "opening": self.opening,
                "call_status": self.call_status,
                "duration_s": self.duration_s,
            },
            ensure_ascii=False,
        )

    @classmethod
    def from_row(cls, seq: int, key: str, kind: str, body: str) -> SpooledOp:
        data: dict[str, Any] = json.loads(body)
        return cls(
            key=key,
            kind=OpKind(kind),
            call=CallRef(**data["call"]),
            at=datetime.fromisoformat(data["at"]),
            changes=tuple(decode_change(c) for c in data["changes"]),
            opening=bool(data["opening"]),
            call_status=data["call_status"],
            duration_s=data["duration_s"],
            seq=seq,
        )


class Spool:
    """The spool file of this process. Calls are synchronous: one small fsynced write per
    operation, and only while the database is away (or a call still has spooled writes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        # Two processes sharing a spool would replay each other's calls out of order.
        self._lock = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise SpoolBusy(
                f"spool {path} is in use by another process; give each process its own "
                "(HOTLINE_SPOOL_PATH)"
            ) from None
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        rows = self._db.execute(
            "SELECT call_sid, COUNT(*) FROM operations WHERE state = ? GROUP BY call_sid",
            (PENDING,),
        )
        # Calls with writes still spooled: their later writes are spooled too, in order.
        self._held: Counter[str] = Counter({sid: int(n) for sid, n in rows})

    def close(self) -> None:
        self._db.close()
        os.close(self._lock)

    def holds(self, call_sid: str) -> bool:
        return self._held[call_sid] > 0

    def depth(self) -> int:
        """Operations waiting to be replayed into the database."""
        return sum(self._held.values())

    def set_aside_count(self) -> int:
        found = self._db.execute(
            "SELECT COUNT(*) FROM operations WHERE state = ?", (SET_ASIDE,)
        ).fetchone()
        return int(found[0])

    def append(self, op: SpooledOp, spooled_at: datetime) -> bool:
        """Keep `op` on disk (committed and synced on return); False if it already is."""
        added = self._db.execute(
            "INSERT OR IGNORE INTO operations (key, call_sid, kind, body, spooled_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (op.key, op.call.call_sid, op.kind.value, op.body(), spooled_at.isoformat()),
        )
        if added.rowcount:
            self._held[op.call.call_sid] += 1
        return bool(added.rowcount)

    def pending(self, limit: int = 100) -> list[SpooledOp]:
        """The oldest operations still to replay, in the order they were spooled."""
        rows = self._db.execute(
            "SELECT seq, key, kind, body FROM operations WHERE state = ? ORDER BY seq LIMIT ?",
            (PENDING, limit),
        ).fetchall()
        return [SpooledOp.from_row(int(s), str(k), str(kind), str(b)) for s, k, kind, b in rows]

    def done(self, op: SpooledOp) -> None:
        """The database has `op`: forget it."""
        gone = self._db.execute(
            "DELETE FROM operations WHERE seq = ? AND state = ?", (op.seq, PENDING)
        )
        if gone.rowcount:
            self._release(op.call.call_sid)

    def set_aside(self, op: SpooledOp, error: str) -> None:
        """The database refuses `op` for good: keep it for a person, replay the rest."""
        moved = self._db.execute(
            "UPDATE operations SET state = ?, error = ? WHERE seq = ? AND state = ?",
            (SET_ASIDE, error[:2000], op.seq, PENDING),
        )
        if moved.rowcount:
            self._release(op.call.call_sid)

    def _release(self, call_sid: str) -> None:
        self._held[call_sid] -= 1
        if self._held[call_sid] <= 0:
            del self._held[call_sid]
