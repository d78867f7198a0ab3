"""Pure routing domain: specialties, business hours, feedback tiers and queue placement.

Nothing here does I/O or reads a clock: callers pass the time in.
"""
