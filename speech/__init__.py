"""Offline speech recognition and the specialty classifier (see the speech issue)."""
