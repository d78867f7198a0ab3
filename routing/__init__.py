"""Routing, pure: business hours, the desks, their queues and overflow, feedback tiers, and
which waiting caller an agent gets next (the ACD).

Nothing here does I/O or reads a clock: callers pass the time in.
"""
