"""One module per ``discover`` subcommand.

Contract: each module defines ``register(subparsers)``, which adds its subparser with
``set_defaults(func=...)``; ``func(args) -> int`` is the exit status.  ``discover.cli`` finds
the modules here by name, so a new command needs no edit elsewhere.
"""
