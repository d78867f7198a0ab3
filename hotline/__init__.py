"""The hotline service: the adapters around the pure core (`ivr`, `routing`, `casework`).

At the top only the command line (cli.py), the settings (settings.py) and the app factory
(app.py); every other concept has a package of its own (see docs/architecture.md).
"""
