"""Twilio's request signatures, checked with the twilio library, for either signing scheme."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)


class SignatureCheck:
    """Validates X-Twilio-Signature with the twilio library, for either signing scheme."""

    def __init__(self, auth_token: str, shared_key: str = "") -> None:
        self._account = RequestValidator(auth_token)
        # A Webhook Rule signs with its shared key; without that key nothing validates.
        self._rule = RequestValidator(shared_key) if shared_key else None

    def valid(self, url: str, form: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        try:
            return self._valid(url, form, headers)
        except UnicodeError:
            # A body declared in an odd charset can decode to lone surrogates, which no
            # signature covers (Twilio signs UTF-8): not Twilio's, so refused, not a 500.
            return False
        except ValueError:
            return False  # an algorithm this version of the library does not know

    def _valid(self, url: str, form: Mapping[str, str], headers: Mapping[str, str]) -> bool:
        signature = headers.get(SIGNATURE_HEADER)
        if not signature:
            return False
        settings = headers.get(SIGNATURE_SETTINGS_HEADER)
        validator, algorithm = self._account, None
        if settings:
            if self._rule is None:
                return False
            validator, algorithm = self._rule, get_signature_algorithm(settings)
        # The URL as it reached us is what Twilio signed in nearly every request: one HMAC.
        # `validate` computes two (the URL with and without its port) and is asked only
        # when this one does not match.
        expected = validator.compute_signature(url, form, algorithm)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return True
        return bool(validator.validate(url, form, signature, algorithm))
