"""Whole calls and requests through the real app, driven by the virtual carrier."""
