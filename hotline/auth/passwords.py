"""People's passwords: Argon2id hashes (argon2-cffi's defaults), checked off the event loop.

One check costs tens of milliseconds of a core and 64 MiB. It runs on a worker thread (the
binding lets go of the GIL), so a login never stalls the webhooks of the same process, and
only a few run at once, so a flood of logins cannot take every core from the calls.
"""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

CHECKS_AT_ONCE = 2


class Passwords:
    def __init__(self, *, at_once: int = CHECKS_AT_ONCE) -> None:
        self._hasher = PasswordHasher()  # Argon2id, the library's current parameters
        self._gate = asyncio.Semaphore(at_once)
        self._stand_in: str | None = None

    async def prepare(self) -> None:
        """Make the stand-in hash of `check` before the first login, not during it."""
        if self._stand_in is None:
            self._stand_in = await asyncio.to_thread(self.hash, secrets.token_urlsafe(16))

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def matches(self, stored: str, password: str) -> bool:
        """Whether `password` is the one `stored` was made from; False for a malformed hash."""
        try:
            return self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return False

    async def check(self, stored: str | None, password: str) -> bool:
        """`matches` on a worker thread. With no stored hash (no such user) a hash of a
        random password is checked instead and the answer is False: the answer takes as
        long as for a user who exists, so its timing does not tell who does."""
        async with self._gate:
            return await asyncio.to_thread(self._check, stored, password)

    def _check(self, stored: str | None, password: str) -> bool:
        if stored is not None:
            return self.matches(stored, password)
        if self._stand_in is None:
            self._stand_in = self.hash(secrets.token_urlsafe(16))
        self.matches(self._stand_in, password)
        return False
