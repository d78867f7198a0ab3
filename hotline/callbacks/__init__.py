"""Calls the hotline places: the dispatcher and the carrier's REST API behind it."""
