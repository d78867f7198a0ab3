"""Who a bearer token belongs to: the centre (HOTLINE_ADMIN_TOKEN) or a department."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping

from casework.actions import Caller


def new_token() -> str:
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What access.yaml keeps of a token: its SHA-256, in hex (a token is random and long,
    so a plain hash is enough; a leaked file does not give the token away)."""
    return hashlib.sha256(token.encode()).hexdigest()


def identify(
    token: str, admin_token: str, departments: Mapping[str, tuple[str, ...]]
) -> Caller | None:
    """The caller a token stands for, or None. Every comparison takes constant time."""
    if not token:
        return None
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Caller.centre()
    digest = token_digest(token).encode()
    found: str | None = None
    for department, digests in departments.items():
        for known in digests:
            if hmac.compare_digest(digest, known.encode()) and found is None:
                found = department
    return Caller.of_department(found) if found is not None else None
