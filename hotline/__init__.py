"""The hotline service: configuration, webhooks, tickets, command line.

These are the adapters around the pure call flow in `ivr` and the routing rules in `routing`.
"""
