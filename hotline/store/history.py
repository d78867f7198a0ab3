"""A ticket's history: every change, who made it, when, and what it changed."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from hotline.store.tables import ticket_history

_ADD = ticket_history.insert()  # built once: the call path adds a row to almost every write


def add_history(
    conn: Connection,
    ticket_id: int,
    at: datetime,
    note: str,
    detail: Mapping[str, Any],
    *,
    actor: str,
    from_status: str | None = None,
    to_status: str | None = None,
) -> None:
    conn.execute(
        _ADD,
        {
            "ticket_id": ticket_id,
            "at": at,
            "actor": actor,
            "from_status": from_status,
            "to_status": to_status,
            "note": note,
            "detail": dict(detail),
        },
    )
