"""Calls the hotline places: the dispatcher that decides when, through the Twilio edge."""
