"""Agent PINs, stored only as salted PBKDF2 hashes: `pbkdf2_sha256$<rounds>$<salt>$<hash>`."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

ROUNDS = 60_000


def hash_pin(pin: str, *, rounds: int = ROUNDS, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), salt, rounds)
    return "$".join(["pbkdf2_sha256", str(rounds), _b64(salt), _b64(digest)])


def verify_pin(pin: str, stored: str) -> bool:
    """Constant-time; False for any malformed stored value."""
    try:
        scheme, rounds, salt, expected = stored.split("$")
        if scheme != "pbkdf2_sha256":
            return False
        digest = hashlib.pbkdf2_hmac("sha256", pin.encode(), _unb64(salt), int(rounds))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(_b64(digest), expected)


def is_pin_hash(value: str) -> bool:
    parts = value.split("$")
    return len(parts) == 4 and parts[0] == "pbkdf2_sha256" and parts[1].isdigit()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
