"""Adapters on their own: the signature check, TwiML, the virtual carrier, audio."""
