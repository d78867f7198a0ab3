"""Casework, pure: a ticket's statuses and number, what a department or the centre may do
with it, when its answer is due in working days, the calls the hotline owes, and the KPIs.

Nothing here does I/O or reads a clock: callers pass the time in.
"""
