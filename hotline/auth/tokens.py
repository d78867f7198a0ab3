"""Who a bearer token belongs to: the centre (HOTLINE_ADMIN_TOKEN) or a department."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping

from casework.actions import Caller

# What a token may be: printable ASCII without spaces, as a header carries it. Other
# bytes of a header reach the server as characters that are not ASCII (lone surrogates
# when they are no UTF-8, which `str.encode()` refuses): no token, so a 401, never an
# exception on the way to the comparison.
_PLAIN = re.compile(r"[!-~]{1,512}")


def new_token() -> str:
    return secrets.token_urlsafe(32)


def plain_token(token: str) -> bool:
    return _PLAIN.fullmatch(token) is not None


def bearer(authorization: str) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None for another scheme,
    or for a token that is not plain."""
    scheme, _, token = authorization.partition(" ")
    return token if scheme.lower() == "bearer" and plain_token(token) else None


def token_digest(token: str) -> str:
    """What access.yaml keeps of a token: its SHA-256, in hex (a token is random and long,
    so a plain hash is enough; a leaked file does not give the token away)."""
    return hashlib.sha256(token.encode()).hexdigest()


def same_token(given: str, expected: str) -> bool:
    """`given` is `expected`, compared in constant time; never when either is not plain
    (a header's odd bytes decode to text that cannot even be encoded)."""
    return (
        plain_token(expected)
        and plain_token(given)
        and hmac.compare_digest(given.encode(), expected.encode())
    )


def is_admin(token: str, admin_token: str) -> bool:
    """The centre's token; none when no plain one is set."""
    return same_token(token, admin_token)


def identify(
    token: str, admin_token: str, departments: Mapping[str, tuple[str, ...]]
) -> Caller | None:
    """The caller a token stands for, or None. Every comparison takes constant time."""
    if not plain_token(token):
        return None
    if is_admin(token, admin_token):
        return Caller.centre()
    digest = token_digest(token).encode()
    found: str | None = None
    for department, digests in departments.items():
        for known in digests:
            if hmac.compare_digest(digest, known.encode()) and found is None:
                found = department
    return Caller.of_department(found) if found is not None else None
